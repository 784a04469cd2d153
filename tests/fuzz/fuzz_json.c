/*
 * fuzz_json.c — JSON body inspection and rewrite (src/json.c): request bodies
 * (json_inspect_request, json_inject_usage), events and response bodies
 * (json_inspect_usage and its member span), GET /v1/models answers
 * (json_model_ids), and json_escape.
 *
 * Properties: a rewritten body is itself a valid JSON object that asks for
 * usage (and continuous usage when told) and still says the same stream,
 * model and prompt; deleting the usage member leaves valid JSON; model ids
 * point inside the buffer; escaped text between quotes is a valid JSON string
 * and never longer than the room given.
 */
#include <string.h>

#include "caps.h"
#include "fuzz.h"
#include "json.h"

struct ids {
	const char *buf;
	size_t len;
	int n;
};

static void
on_id(void *arg, const char *id, size_t id_len)
{
	struct ids *ids = arg;

	FUZZ_CHECK(id >= ids->buf && id_len <= ids->len &&
	    (size_t)(id - ids->buf) <= ids->len - id_len);
	FUZZ_CHECK(id_len > 0 && id_len < CAP_MODEL_NAME);
	ids->n++;
}

static void
check_inject(const char *body, size_t len, const struct json_request *jr,
    int continuous, void **scratch, size_t *scratch_bytes)
{
	struct json_request again;
	char *out = malloc(len + JSON_INJECT_EXTRA);
	size_t n;

	FUZZ_CHECK(out != NULL);
	n = json_inject_usage(body, len, jr, continuous, out);
	FUZZ_CHECK(n <= len + JSON_INJECT_EXTRA);
	FUZZ_CHECK(json_inspect_request(out, n, &again, scratch,
	    scratch_bytes) == JSON_OK);
	FUZZ_CHECK(again.include_usage);
	if (continuous)
		FUZZ_CHECK(again.continuous_usage);
	else
		FUZZ_CHECK(again.continuous_usage == jr->continuous_usage);
	FUZZ_CHECK(again.stream == jr->stream);
	FUZZ_CHECK(again.prompt_bytes == jr->prompt_bytes);
	FUZZ_CHECK((again.model == NULL) == (jr->model == NULL));
	if (jr->model != NULL)
		FUZZ_CHECK(again.model_len == jr->model_len &&
		    memcmp(again.model, jr->model, jr->model_len) == 0);
	/* Asking again changes nothing: the rewrite is minimal. */
	if (!continuous || again.continuous_usage) {
		char *twice = malloc(n + JSON_INJECT_EXTRA);

		FUZZ_CHECK(twice != NULL);
		FUZZ_CHECK(json_inject_usage(out, n, &again, continuous, twice) ==
		    n);
		FUZZ_CHECK(memcmp(out, twice, n) == 0);
		free(twice);
	}
	free(out);
}

static void
check_usage(const char *buf, size_t len, void **scratch,
    size_t *scratch_bytes)
{
	struct json_usage u, again;
	char *cut;
	int r;

	r = json_inspect_usage(buf, len, &u, scratch, scratch_bytes);
	FUZZ_CHECK(r == JSON_OK || r == JSON_INVALID || r == JSON_TOO_BIG);
	if (r != JSON_OK)
		return;
	FUZZ_CHECK(u.prompt_tokens >= -1 && u.completion_tokens >= -1 &&
	    u.total_tokens >= -1);
	FUZZ_CHECK(memchr(u.finish_reason, '\0', sizeof u.finish_reason) != NULL);
	if (!u.has_usage && !u.usage_null)
		return;
	FUZZ_CHECK(u.usage_member_len > 0 && u.usage_member_at <= len &&
	    u.usage_member_len <= len - u.usage_member_at);
	cut = malloc(len);
	FUZZ_CHECK(cut != NULL);
	memcpy(cut, buf, u.usage_member_at);
	memcpy(cut + u.usage_member_at, buf + u.usage_member_at +
	    u.usage_member_len, len - u.usage_member_at - u.usage_member_len);
	FUZZ_CHECK(json_inspect_usage(cut, len - u.usage_member_len, &again,
	    scratch, scratch_bytes) == JSON_OK);
	free(cut);
}

static void
check_escape(const char *s, size_t n, size_t cap, void **scratch,
    size_t *scratch_bytes)
{
	static const char pre[] = "{\"s\":\"";
	struct json_request jr;
	char *obj = malloc(sizeof pre + cap + 2);
	size_t k;

	FUZZ_CHECK(obj != NULL);
	memcpy(obj, pre, sizeof pre - 1);
	k = json_escape(obj + sizeof pre - 1, cap, s, n);
	FUZZ_CHECK(k <= cap);
	memcpy(obj + sizeof pre - 1 + k, "\"}", 2);
	FUZZ_CHECK(json_inspect_request(obj, sizeof pre - 1 + k + 2, &jr,
	    scratch, scratch_bytes) == JSON_OK);
	free(obj);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	void *scratch = NULL;
	size_t scratch_bytes = 0;
	struct json_request jr;
	struct ids ids = { buf, size, 0 };
	int r;

	r = json_inspect_request(buf, size, &jr, &scratch, &scratch_bytes);
	FUZZ_CHECK(r == JSON_OK || r == JSON_INVALID || r == JSON_TOO_BIG);
	if (r == JSON_OK) {
		FUZZ_CHECK(jr.root_close < size && buf[jr.root_close] == '}');
		FUZZ_CHECK(jr.prompt_bytes <= size);
		if (jr.model != NULL)
			FUZZ_CHECK(jr.model >= buf && jr.model_len <= size &&
			    (size_t)(jr.model - buf) <= size - jr.model_len);
		check_inject(buf, size, &jr, 0, &scratch, &scratch_bytes);
		check_inject(buf, size, &jr, 1, &scratch, &scratch_bytes);
	}

	check_usage(buf, size, &scratch, &scratch_bytes);

	r = json_model_ids(buf, size, on_id, &ids, &scratch, &scratch_bytes);
	FUZZ_CHECK(r == ids.n || (r < 0 && ids.n == 0));

	check_escape(buf, size, size * 6, &scratch, &scratch_bytes);
	check_escape(buf, size, size / 2, &scratch, &scratch_bytes);
	free(scratch);
	return 0;
}
