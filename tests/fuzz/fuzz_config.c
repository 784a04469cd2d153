/*
 * fuzz_config.c — the configuration file (config_load_string: inih, then
 * every key's parser and the validation), and the duration and size parsers
 * on the input's first line.
 *
 * Properties: a text either loads (and frees cleanly) or is refused with one
 * message naming the file, never a crash or a leak.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	char err[512], line[64];
	char *text = malloc(size + 1);
	size_t n;
	uint64_t bytes;
	int ms;

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	err[0] = '\0';
	cfg = config_load_string(text, "fuzz.ini", err, sizeof err);
	if (cfg != NULL) {
		config_free(cfg);
	} else {
		FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
		FUZZ_CHECK(strncmp(err, "fuzz.ini", 8) == 0);
	}

	n = strcspn(text, "\n");
	if (n >= sizeof line)
		n = sizeof line - 1;
	memcpy(line, text, n);
	line[n] = '\0';
	if (config_parse_duration(line, &ms) == 0)
		FUZZ_CHECK(ms >= 0);
	(void)config_parse_size(line, &bytes);
	free(text);
	return 0;
}
