/*
 * fuzz_response.c — the backend's response head (http_parse_response) and
 * the body framing the relay derives from it.
 *
 * Properties as for requests: a complete head reparses to the same length,
 * its prefixes need more, fields point inside it, the status is 100..999,
 * and framing is decided or refused (never both Content-Length and chunked).
 * The first byte chooses whether the request was HEAD.
 */
#include <string.h>

#include "fuzz.h"
#include "http.h"

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_response resp, again;
	struct http_framing f;
	const char *buf;
	int head, r, fr;
	size_t i;

	if (size < 1)
		return 0;
	head = data[0] & 1;
	buf = (const char *)data + 1;
	size--;

	r = http_parse_response(buf, size, &resp);
	FUZZ_CHECK(r == 0 || r == -502 || (r > 0 && (size_t)r <= size));
	if (r > 0) {
		FUZZ_CHECK(resp.status >= 100 && resp.status <= 999);
		FUZZ_CHECK(resp.minor_version >= 0);
		FUZZ_CHECK(resp.num_headers <= CAP_HEADERS);
		FUZZ_CHECK(inside(resp.reason, resp.reason_len, buf, (size_t)r));
		for (i = 0; i < resp.num_headers; i++) {
			const struct http_header *h = &resp.headers[i];

			FUZZ_CHECK(h->name_len > 0);
			FUZZ_CHECK(inside(h->name, h->name_len, buf, (size_t)r));
			FUZZ_CHECK(inside(h->value, h->value_len, buf, (size_t)r));
			(void)http_is_hop_by_hop(h, resp.headers, resp.num_headers);
		}
		fr = http_response_framing(&resp, head, &f);
		FUZZ_CHECK(fr == 0 || fr == -1);
		if (fr == 0 && f.kind == HTTP_BODY_CHUNKED)
			FUZZ_CHECK(http_header_find(resp.headers,
			    resp.num_headers, "content-length", NULL) == NULL);
		if (fr == 0 && head)
			FUZZ_CHECK(f.kind == HTTP_BODY_NONE);
		(void)http_keep_alive(resp.minor_version, resp.headers,
		    resp.num_headers);
		FUZZ_CHECK(http_reason(resp.status) != NULL);

		FUZZ_CHECK(http_parse_response(buf, (size_t)r, &again) == r);
	}
	if (r >= 0 && size > 0) {
		size_t end = r > 0 ? (size_t)r : size;

		FUZZ_CHECK(http_parse_response(buf, (size * 2654435761u) % end,
		    &again) == 0);
		FUZZ_CHECK(http_parse_response(buf, end - 1, &again) == 0);
	}
	if (r < 0 && size > 0)
		FUZZ_CHECK(http_parse_response(buf, size - 1, &again) <= 0);
	return 0;
}
