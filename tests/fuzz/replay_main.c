/*
 * replay_main.c — runs a fuzz target over files without libFuzzer, so the
 * corpora are replayed under any compiler (gcc in make check).
 *
 *   replay_TARGET FILE|DIR ...
 *
 * Each file is one input; a directory stands for the files in it.  Exits 0
 * when every input ran (a failed check aborts), 1 when one could not be read
 * or no input was given at all (an empty corpus would prove nothing).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static size_t runs;

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (cap - len < 4096) {
			uint8_t *nb = realloc(buf, cap * 2 + 4096);

			if (nb == NULL) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				fclose(fp);
				free(buf);
				return -1;
			}
			buf = nb;
			cap = cap * 2 + 4096;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	/* An exact-size copy, so that a read past the input's end is caught by
	 * a sanitizer here as it would be under libFuzzer. */
	{
		uint8_t *exact = malloc(len > 0 ? len : 1);

		if (exact == NULL) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, len);
		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	runs++;
	return 0;
}

static int
run_path(const char *path)
{
	struct stat st;
	struct dirent **names;
	int n, i, rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	/* Sorted, so that a failure names the same file every time. */
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char sub[4096];

		if (names[i]->d_name[0] != '.' && rc == 0) {
			snprintf(sub, sizeof sub, "%s/%s", path, names[i]->d_name);
			if (run_path(sub) != 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (run_path(argv[i]) != 0)
			return 1;
	if (runs == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	printf("%s: %zu inputs replayed\n", argv[0], runs);
	return 0;
}
