/*
 * fuzz_usage.c — usage extraction (src/usage.c): SSE events through
 * usage_event, a body tail through usage_body_tail, the numbers from
 * usage_result and the record from usage_record_json.
 *
 * Input: byte 0 flags (bit 0 we injected include_usage, bit 1 continuous
 * usage, bit 2 something was generated, bit 3 a stream), byte 1 the length
 * of the model name and byte 2 of the endpoint, both taken from the start of
 * the rest, which is also the response: a stream of events and a body.
 *
 * Properties: a verdict's cut lies inside its event and leaves the event's
 * data valid JSON; the numbers are never negative and say where they came
 * from; the record is one valid JSON object whatever the model and endpoint
 * bytes were.
 */
#include <string.h>

#include "caps.h"
#include "fuzz.h"
#include "json.h"
#include "sse.h"
#include "usage.h"

static void
check_verdict(const char *ev, size_t len, const struct usage_verdict *v,
    void **scratch, size_t *scratch_bytes)
{
	struct json_usage u;
	const char *d;
	size_t dl;
	char *cut;

	if (v->action != USAGE_CUT) {
		FUZZ_CHECK(v->action == USAGE_FORWARD || v->action == USAGE_DROP);
		return;
	}
	FUZZ_CHECK(v->cut_len > 0);
	FUZZ_CHECK(v->cut_at <= len && v->cut_len <= len - v->cut_at);
	cut = malloc(len);
	FUZZ_CHECK(cut != NULL);
	memcpy(cut, ev, v->cut_at);
	memcpy(cut + v->cut_at, ev + v->cut_at + v->cut_len,
	    len - v->cut_at - v->cut_len);
	/* What the client gets is still one event with one JSON object. */
	FUZZ_CHECK(sse_event_data(cut, len - v->cut_len, &d, &dl) == 1);
	FUZZ_CHECK(json_inspect_usage(d, dl, &u, scratch, scratch_bytes) ==
	    JSON_OK);
	free(cut);
}

static void
check_record(const char *model, size_t model_len, const char *endpoint,
    size_t endpoint_len, const struct usage_result *res, int is_stream,
    void **scratch, size_t *scratch_bytes)
{
	static char out[CAP_RECORD_BYTES + 1024];
	struct usage_record r;
	struct json_request jr;
	char key[64];
	size_t n, kl = model_len < sizeof key - 1 ? model_len : sizeof key - 1;

	/* A NUL-terminated field from the same bytes (cut at a NUL). */
	memcpy(key, model, kl);
	key[kl] = '\0';
	memset(&r, 0, sizeof r);
	r.request_id = "0123456789abcdef";
	r.timestamp_ms = (int64_t)(model_len * 86400000ull * 365) -
	    (int64_t)endpoint_len * 1000;
	r.model = model_len > 0 || is_stream ? model : NULL;
	r.model_len = model_len;
	r.usage = *res;
	r.is_stream = is_stream;
	r.endpoint = endpoint;
	r.endpoint_len = endpoint_len;
	r.backend_url = "http://127.0.0.1:1/";
	r.backend = key;
	r.status_code = 200;
	r.latency_ms = (int64_t)endpoint_len;
	r.ttft_ms = is_stream ? -1 : 5;
	r.finish = "stop";
	r.key_name = key;

	n = usage_record_json(&r, out, CAP_RECORD_BYTES);
	FUZZ_CHECK(n <= CAP_RECORD_BYTES);
	if (n == 0)
		return;		/* refused as too long: the caller's business */
	FUZZ_CHECK(json_inspect_request(out, n, &jr, scratch, scratch_bytes) ==
	    JSON_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage_meter m;
	struct usage_verdict v;
	struct usage_result res;
	struct sse_scanner s;
	const char *p, *model, *endpoint;
	size_t model_len, endpoint_len, pos = 0, r, tail;
	int flags;

	if (size < 3)
		return 0;
	flags = data[0];
	p = (const char *)data + 3;
	size -= 3;
	model = p;
	model_len = data[1] < size ? data[1] : size;
	endpoint = p;
	endpoint_len = data[2] < size ? data[2] : size;

	usage_meter_init(&m, flags & 1, (flags >> 1) & 1);
	memset(&s, 0, sizeof s);
	while (pos < size && (r = sse_scan(&s, p + pos, size - pos)) > 0) {
		usage_event(&m, p + pos, r, &v);
		check_verdict(p + pos, r, &v, &m.scratch, &m.scratch_bytes);
		pos += r;
	}
	tail = size < CAP_USAGE_TAIL ? size : CAP_USAGE_TAIL;
	usage_body_tail(&m, p + size - tail, tail);

	usage_result(&m, size, size, (flags >> 2) & 1, &res);
	FUZZ_CHECK(res.prompt_tokens >= 0 && res.completion_tokens >= 0 &&
	    res.total_tokens >= 0);
	FUZZ_CHECK(res.source != NULL);
	if (m.reported)
		FUZZ_CHECK(strcmp(res.source, "backend") == 0);
	else
		FUZZ_CHECK(strcmp(res.source, "estimated") == 0 ||
		    strcmp(res.source, "none") == 0);

	check_record(model, model_len, endpoint, endpoint_len, &res,
	    (flags >> 3) & 1, &m.scratch, &m.scratch_bytes);
	usage_meter_free(&m);
	return 0;
}
