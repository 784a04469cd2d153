/*
 * e2e_yaml.c — a user's LLMProxy config.yaml, converted by yaml2ini.sh and
 * run: the INI it gives starts the real binary, a chat completion streams
 * through it to the mock backend, and its usage record reaches the webhook
 * the YAML names.  Once in LLMProxy v0.1's form (top-level listen, backends[],
 * usage_hook) and once in today's (server.listen, usage.reporters[]).
 *
 * The converter is $YAML2INI (default ./yaml2ini.sh: run from the repository
 * root), run with /bin/sh, the YAML on its stdin.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct mock mock;
static struct receiver rv;

static void
setup(void)
{
	mock_start(&mock);
	receiver_start(&rv, 0, NULL);
}

static void
teardown(void)
{
	receiver_stop(&rv);
	mock_stop(&mock);
}

/* yaml -> ini through yaml2ini.sh; it must succeed without a word on
 * stderr (run_program merges stderr into ini). */
static void
yaml2ini(const char *yaml, char *ini, size_t cap)
{
	static char script[1024];
	const char *env = getenv("YAML2INI");

	snprintf(script, sizeof(script), "%s",
	    env != NULL && *env != '\0' ? env : "yaml2ini.sh");
	ck_assert_msg(access(script, R_OK) == 0, "%s: %s (run from the repository "
	    "root, or set YAML2INI)", script, strerror(errno));
	char *argv[] = { "/bin/sh", script, NULL };
	int rc = run_program(argv, yaml, strlen(yaml), ini, cap, 10000);
	ck_assert_msg(rc == 0, "yaml2ini.sh exited %d:\n%s\n--- on:\n%s", rc, ini, yaml);
	ck_assert_msg(strncmp(ini, "yaml2ini.sh: ", 13) != 0 &&
	    strstr(ini, "\nyaml2ini.sh: ") == NULL, "yaml2ini.sh said:\n%s", ini);
}

static void
assert_has(const char *text, const char *needle)
{
	ck_assert_msg(strstr(text, needle) != NULL, "no \"%s\" in:\n%s", needle, text);
}

static const char stream_body[] =
    "{\"model\":\"mock-model\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

/* A streamed chat completion through the proxy, which must arrive whole. */
static void
stream_through(int port, const char *id)
{
	char headers[256], req[4096], ct[128];
	struct response r;

	snprintf(headers, sizeof(headers), "X-Request-Id: %s\r\nX-Mock-Tokens: 5\r\n", id);
	chat_request(req, sizeof(req), headers, stream_body);
	ck_assert_int_eq(http_exchange(port, req, &r, 10000), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert(response_header(&r, "Content-Type", ct, sizeof(ct)));
	ck_assert_msg(strncmp(ct, "text/event-stream", 17) == 0, "Content-Type: %s", ct);
	ck_assert(r.complete);
	ck_assert_uint_ge(r.nevents, 6);  /* 5 tokens and [DONE] at least */
	ck_assert(memmem(r.body, r.body_len, " tok5", 5) != NULL);
	ck_assert(memmem(r.body, r.body_len, "data: [DONE]", 12) != NULL);
	response_free(&r);
}

static void
assert_str(const char *rec, const char *key, const char *want)
{
	char got[256];

	ck_assert_msg(json_str(rec, key, got, sizeof(got)), "no %s in %s", key, rec);
	ck_assert_msg(strcmp(got, want) == 0, "%s is \"%s\", want \"%s\" in %s",
	    key, got, want, rec);
}

/* The record of a 5-token stream from backend `backend`. */
static void
assert_stream_record(const char *id, const char *backend)
{
	char rec[4096];

	receiver_wait_record(&rv, id, rec, sizeof(rec));
	assert_str(rec, "usage_source", "backend");
	assert_str(rec, "model", "mock-model");
	assert_str(rec, "endpoint", "/v1/chat/completions");
	assert_str(rec, "backend", backend);
	assert_str(rec, "finish", "stop");
	ck_assert(strstr(rec, "\"is_stream\":true") != NULL);
	ck_assert_int_eq(json_int(rec, "status_code"), 200);
	ck_assert_int_eq(json_int(rec, "completion_tokens"), 5);
	long prompt = json_int(rec, "prompt_tokens");
	ck_assert_int_gt(prompt, 0);
	ck_assert_int_eq(json_int(rec, "total_tokens"), prompt + 5);
}

/* LLMProxy v0.1: the five-line era, as its config-v0.1.0.yaml has it
 * (comments after values included), pointed at the mock and the receiver. */
START_TEST(v01_yaml_streams_and_reports_usage)
{
	char yaml[2048], ini[4096], name[64];
	struct proxy px;

	snprintf(yaml, sizeof(yaml),
	    "# LLMProxy 配置文件示例\n"
	    "\n"
	    "# 监听地址\n"
	    "listen: \"127.0.0.1:0\"\n"
	    "\n"
	    "# 后端服务器列表\n"
	    "backends:\n"
	    "  - url: \"http://127.0.0.1:%d\"  # vLLM 服务地址\n"
	    "    weight: 5                       # 权重（用于负载均衡）\n"
	    "\n"
	    "# 用量上报 Webhook 配置\n"
	    "usage_hook:\n"
	    "  enabled: true                                    # 是否启用\n"
	    "  url: \"http://127.0.0.1:%d/llm-usage\"      # Webhook URL\n"
	    "  timeout: 1s                                      # 超时时间\n"
	    "  retry: 2                                         # 重试次数\n"
	    "\n"
	    "# 健康检查配置\n"
	    "health_check:\n"
	    "  interval: 10s      # 检查间隔\n"
	    "  path: /health      # 健康检查路径\n",
	    mock.port, rv.port);
	yaml2ini(yaml, ini, sizeof(ini));

	/* listen before any section, as LLMProxy v0.1 had it at the top. */
	ck_assert_msg(strstr(ini, "\nlisten = 127.0.0.1:0\n") != NULL &&
	    strstr(ini, "\nlisten = 127.0.0.1:0\n") < strchr(ini, '['), "%s", ini);
	assert_has(ini, "\n[backends.0]\n");
	assert_has(ini, "\n[usage_hook]\nenabled = true\n");

	proxy_start_ok(&px, ini);
	stream_through(px.port, "yaml-v01");
	/* [backends.0] has no name: it is HOST:PORT of its url. */
	snprintf(name, sizeof(name), "127.0.0.1:%d", mock.port);
	assert_stream_record("yaml-v01", name);
	proxy_stop(&px);
}
END_TEST

/* Today's LLMProxy: server.listen, named backends, usage.reporters[] with a
 * webhook, as config-demo.yaml has it. */
START_TEST(current_yaml_streams_and_reports_usage)
{
	char yaml[2048], ini[4096];
	struct proxy px;

	snprintf(yaml, sizeof(yaml),
	    "# Demo 配置\n"
	    "server:\n"
	    "  listen: \"127.0.0.1:0\"\n"
	    "\n"
	    "backends:\n"
	    "  - name: ollama\n"
	    "    url: \"http://127.0.0.1:%d\"\n"
	    "    weight: 5\n"
	    "\n"
	    "usage:\n"
	    "  enabled: true\n"
	    "  reporters:\n"
	    "    - name: webhook\n"
	    "      type: webhook\n"
	    "      enabled: true\n"
	    "      webhook:\n"
	    "        url: \"http://127.0.0.1:%d/llm-usage\"\n"
	    "        timeout: 1s\n"
	    "        retry: 2\n"
	    "\n"
	    "health_check:\n"
	    "  enabled: true\n"
	    "  interval: 10s\n"
	    "  path: /health\n",
	    mock.port, rv.port);
	yaml2ini(yaml, ini, sizeof(ini));
	assert_has(ini, "\n[server]\nlisten = 127.0.0.1:0\n");
	assert_has(ini, "\n[usage.reporters.0.webhook]\n");

	proxy_start_ok(&px, ini);
	stream_through(px.port, "yaml-current");
	assert_stream_record("yaml-current", "ollama");
	proxy_stop(&px);
}
END_TEST

static Suite *
yaml_suite(void)
{
	Suite *s = suite_create("e2e_yaml");
	TCase *tc = tcase_create("yaml");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, v01_yaml_streams_and_reports_usage);
	tcase_add_test(tc, current_yaml_streams_and_reports_usage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(yaml_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
