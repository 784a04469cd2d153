/*
 * check_tls.c — src/tls.c: error texts, PEM loading of trust anchors and
 * server credentials, the IP address check, and handshakes between our
 * client and our server over a socketpair (the certificates' verdicts:
 * trusted, untrusted, wrong name, expired, IP literals).
 *
 * The certificates are made at test time by tests/tls/mkcerts.sh into
 * $TLS_CERTS (the Makefile runs it); nothing secret lives in the tree.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bearssl.h>

#include "io.h"
#include "tls.h"

static const char *certs;
static char tmpdir[256];

static const char *
cert(const char *name)
{
	static char path[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/%s", certs, name);
	return path[k];
}

/* A file under tmpdir with the given text. */
static const char *
write_tmp(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* ---- error texts --------------------------------------------------------------- */

START_TEST(test_error_texts)
{
	ck_assert_str_eq(tls_error_text(0), "no error");
	ck_assert_ptr_nonnull(strstr(tls_error_text(BR_ERR_X509_NOT_TRUSTED),
	    "not trusted"));
	ck_assert_ptr_nonnull(strstr(tls_error_text(BR_ERR_X509_EXPIRED),
	    "expired"));
	ck_assert_ptr_nonnull(strstr(tls_error_text(BR_ERR_X509_BAD_SERVER_NAME),
	    "host name"));
	ck_assert_str_eq(tls_error_text(BR_ERR_RECV_FATAL_ALERT +
	    BR_ALERT_HANDSHAKE_FAILURE), "peer sent alert: handshake failure "
	    "(no cipher suite, version or curve in common)");
	ck_assert_str_eq(tls_error_text(BR_ERR_SEND_FATAL_ALERT +
	    BR_ALERT_BAD_CERTIFICATE), "alert sent to peer: bad certificate");
	/* Alerts without a name of their own still say which way. */
	ck_assert_str_eq(tls_error_text(BR_ERR_RECV_FATAL_ALERT + 200),
	    "peer sent a fatal alert");
	ck_assert_str_eq(tls_error_text(BR_ERR_SEND_FATAL_ALERT + 200),
	    "fatal alert sent to peer");
	ck_assert_str_eq(tls_error_text(-1), "unknown TLS error");
	ck_assert_str_eq(tls_error_text(99999), "unknown TLS error");
	ck_assert_ptr_nonnull(strstr(tls_error_text(TLS_ERR_HANDSHAKE_EOF),
	    "handshake"));
	/* Every code BearSSL defines (engine 0..31, X.509 32..63) has a text
	 * of its own. */
	static const int defined[] = {
		BR_ERR_BAD_PARAM, BR_ERR_BAD_STATE, BR_ERR_UNSUPPORTED_VERSION,
		BR_ERR_BAD_VERSION, BR_ERR_BAD_LENGTH, BR_ERR_TOO_LARGE,
		BR_ERR_BAD_MAC, BR_ERR_NO_RANDOM, BR_ERR_UNKNOWN_TYPE,
		BR_ERR_UNEXPECTED, BR_ERR_BAD_CCS, BR_ERR_BAD_ALERT,
		BR_ERR_BAD_HANDSHAKE, BR_ERR_OVERSIZED_ID, BR_ERR_BAD_CIPHER_SUITE,
		BR_ERR_BAD_COMPRESSION, BR_ERR_BAD_FRAGLEN, BR_ERR_BAD_SECRENEG,
		BR_ERR_EXTRA_EXTENSION, BR_ERR_BAD_SNI, BR_ERR_BAD_HELLO_DONE,
		BR_ERR_LIMIT_EXCEEDED, BR_ERR_BAD_FINISHED, BR_ERR_RESUME_MISMATCH,
		BR_ERR_INVALID_ALGORITHM, BR_ERR_BAD_SIGNATURE,
		BR_ERR_WRONG_KEY_USAGE, BR_ERR_NO_CLIENT_AUTH, BR_ERR_IO,
	};
	for (size_t i = 0; i < sizeof(defined) / sizeof(defined[0]); i++)
		ck_assert_msg(strcmp(tls_error_text(defined[i]),
		    "unknown TLS error") != 0, "code %d has no text", defined[i]);
	for (int e = BR_ERR_X509_OK + 1; e <= BR_ERR_X509_NOT_TRUSTED; e++) {
		if (e == 61)
			continue;       /* not defined by BearSSL */
		ck_assert_msg(strcmp(tls_error_text(e), "unknown TLS error") != 0,
		    "code %d has no text", e);
	}
}
END_TEST

/* ---- trust anchors --------------------------------------------------------------- */

START_TEST(test_trust_one_ca)
{
	char err[512] = "";
	size_t skipped = 9;
	struct tls_trust *ta = tls_trust_load(cert("ca.pem"), err, sizeof(err));

	ck_assert_msg(ta != NULL, "%s", err);
	ck_assert_uint_eq(tls_trust_count(ta, &skipped), 1);
	ck_assert_uint_eq(skipped, 0);
	tls_trust_free(ta);
}
END_TEST

START_TEST(test_trust_bundle_ignores_keys)
{
	char err[512] = "", *a, *b, *k, *text;
	size_t la, lb, lk;
	struct tls_trust *ta;

	a = slurp(cert("ca.pem"), &la);
	b = slurp(cert("other-ca.pem"), &lb);
	k = slurp(cert("rsa.key"), &lk);
	text = malloc(la + lb + lk + 32);
	/* Comments between blocks, a key block, no final newline. */
	sprintf(text, "# bundle\n%s\nsome text\n%s%s", a, k, b);
	text[strlen(text) - 1] = '\0';
	ta = tls_trust_load(write_tmp("bundle.pem", text), err, sizeof(err));
	ck_assert_msg(ta != NULL, "%s", err);
	ck_assert_uint_eq(tls_trust_count(ta, NULL), 2);
	tls_trust_free(ta);
	free(a), free(b), free(k), free(text);
}
END_TEST

START_TEST(test_trust_system_bundle)
{
	const char *sys = "/etc/ssl/certs/ca-certificates.crt";
	char err[512] = "";
	struct tls_trust *ta;

	if (access(sys, R_OK) != 0)
		return;         /* no system bundle on this machine */
	ta = tls_trust_load(sys, err, sizeof(err));
	ck_assert_msg(ta != NULL, "%s", err);
	ck_assert_uint_gt(tls_trust_count(ta, NULL), 50);
	tls_trust_free(ta);
}
END_TEST

START_TEST(test_trust_errors)
{
	char err[512];
	const char *p;

	ck_assert_ptr_null(tls_trust_load("/nonexistent/ca.pem", err, sizeof(err)));
	ck_assert_str_eq(err, "/nonexistent/ca.pem: cannot open: No such file or directory");

	p = write_tmp("empty.pem", "");
	ck_assert_ptr_null(tls_trust_load(p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no certificate") != NULL && strncmp(err, p,
	    strlen(p)) == 0, "%s", err);

	p = write_tmp("keyonly.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n");
	ck_assert_ptr_null(tls_trust_load(p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no certificate") != NULL, "%s", err);

	/* Bad base64 on line 3: the message has the line. */
	p = write_tmp("bad.pem", "\n-----BEGIN CERTIFICATE-----\nMII*!!\n"
	    "-----END CERTIFICATE-----\n");
	ck_assert_ptr_null(tls_trust_load(p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "malformed PEM") != NULL && strstr(err,
	    "bad.pem:3:") != NULL, "%s", err);

	p = write_tmp("noend.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
	ck_assert_ptr_null(tls_trust_load(p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no END line") != NULL, "%s", err);

	/* Valid base64, not a certificate. */
	p = write_tmp("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n"
	    "-----END CERTIFICATE-----\n");
	ck_assert_ptr_null(tls_trust_load(p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "certificate 1: malformed certificate") != NULL,
	    "%s", err);
}
END_TEST

/* ---- server credentials -------------------------------------------------------------- */

START_TEST(test_server_creds_ok)
{
	static const char *const pairs[][2] = {
		{ "rsa.pem", "rsa.key" },       /* RSA, PKCS#8 (openssl 3) */
		{ "ec.pem", "ec.key" },         /* EC PRIVATE KEY */
		{ "chain.pem", "chain.key" },   /* leaf + intermediate, PKCS#8 EC */
		{ "both.pem", "both.pem" },     /* certificate and key in one */
	};
	char err[512];

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct tls_server_creds *cr = tls_server_load(cert(pairs[i][0]),
		    cert(pairs[i][1]), err, sizeof(err));
		ck_assert_msg(cr != NULL, "%s: %s", pairs[i][0], err);
		tls_server_free(cr);
	}
}
END_TEST

START_TEST(test_server_creds_errors)
{
	char err[512];

	ck_assert_ptr_null(tls_server_load(cert("rsa.pem"), cert("ec.key"), err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "does not match") != NULL &&
	    strstr(err, "ec.key") == err + strlen(certs) + 1, "%s", err);

	ck_assert_ptr_null(tls_server_load(cert("rsa.pem"), cert("ca.pem"), err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "no private key") != NULL, "%s", err);

	ck_assert_ptr_null(tls_server_load(cert("rsa.key"), cert("rsa.key"), err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "no certificate") != NULL, "%s", err);

	ck_assert_ptr_null(tls_server_load(cert("rsa.pem"),
	    cert("encrypted.key"), err, sizeof(err)));
	ck_assert_msg(strstr(err, "encrypted") != NULL, "%s", err);

	ck_assert_ptr_null(tls_server_load(cert("rsa.pem"), "/nonexistent.key",
	    err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent.key: cannot open") == err, "%s",
	    err);
}
END_TEST

/* ---- the IP address check -------------------------------------------------------------- */

static const unsigned char ip4_lo[4] = { 127, 0, 0, 1 };
static const unsigned char ip4_other[4] = { 10, 0, 0, 1 };
static const unsigned char ip6_lo[16] = { [15] = 1 };

/* Feeds der whole, then split at every point, then byte by byte: the
 * verdict must be the same each time. */
static int
ipsan_verdict(const char *der, size_t len, const unsigned char *ip,
    size_t iplen)
{
	struct tls_ipsan s;
	int whole;

	tls_ipsan_init(&s, ip, iplen);
	tls_ipsan_push(&s, der, len);
	whole = tls_ipsan_matched(&s);
	for (size_t cut = 0; cut <= len; cut++) {
		tls_ipsan_init(&s, ip, iplen);
		tls_ipsan_push(&s, der, cut);
		tls_ipsan_push(&s, der + cut, len - cut);
		ck_assert_int_eq(tls_ipsan_matched(&s), whole);
	}
	tls_ipsan_init(&s, ip, iplen);
	for (size_t i = 0; i < len; i++)
		tls_ipsan_push(&s, der + i, 1);
	ck_assert_int_eq(tls_ipsan_matched(&s), whole);
	return whole;
}

START_TEST(test_ipsan)
{
	size_t len, wlen;
	char *der = slurp(cert("rsa.der"), &len);
	char *wrong = slurp(cert("wrongname.der"), &wlen);

	ck_assert_int_eq(ipsan_verdict(der, len, ip4_lo, 4), 1);
	ck_assert_int_eq(ipsan_verdict(der, len, ip6_lo, 16), 1);
	ck_assert_int_eq(ipsan_verdict(der, len, ip4_other, 4), 0);
	/* 127.0.0.1 as the first 4 bytes of an IPv6 address is not it. */
	ck_assert_int_eq(ipsan_verdict(wrong, wlen, ip4_lo, 4), 0);
	/* Truncated and corrupted certificates never match. */
	ck_assert_int_eq(ipsan_verdict(der, 40, ip4_lo, 4), 0);
	der[1] = (char)0x80;    /* indefinite length: not DER */
	ck_assert_int_eq(ipsan_verdict(der, len, ip4_lo, 4), 0);
	free(der);
	free(wrong);
}
END_TEST

/* ---- handshakes: our client against our server ------------------------------------------- */

struct server_side {
	int fd;
	const char *cert, *key;
	int rc;                 /* 0: handshake done and echoed */
	int err;                /* tls_last_error on failure */
};

/* Handshake, then echo one message back in two writes (so two records). */
static void *
server_main(void *arg)
{
	struct server_side *s = arg;
	char err[512], buf[256];
	struct tls_server_creds *cr = tls_server_load(s->cert, s->key, err,
	    sizeof(err));
	struct io io;

	s->rc = -1;
	if (cr == NULL || tls_server_init(&io, s->fd, cr) < 0)
		goto out;
	if (tls_handshake(&io, io_now_ms() + 5000) < 0) {
		s->err = tls_last_error(&io);
		tls_close(&io);
		goto out;
	}
	ssize_t n = io_read(&io, buf, sizeof(buf), io_now_ms() + 5000);
	if (n > 0 && io_write_all(&io, buf, 1, 5000) == 0 &&
	    io_write_all(&io, buf + 1, (size_t)n - 1, 5000) == 0)
		s->rc = 0;
	/* The client's close_notify, then ours. */
	(void)io_read(&io, buf, sizeof(buf), io_now_ms() + 5000);
	tls_close(&io);
out:
	shutdown(s->fd, SHUT_RDWR);
	tls_server_free(cr);
	return NULL;
}

/*
 * Connects our client (name, anchors from ca, verify) to our server with
 * cert/key.  Returns 0 when the client got its echo, else the client's
 * tls_last_error().
 */
static int
handshake(const char *srv_cert, const char *srv_key, const char *name,
    const char *ca, int verify)
{
	int sv[2];
	pthread_t t;
	struct server_side s = { .cert = cert(srv_cert), .key = cert(srv_key) };
	struct tls_trust *ta = NULL;
	char err[512], buf[64];
	struct io io;
	int rc = -1;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(io_socket_setup(sv[0]), 0);
	ck_assert_int_eq(io_socket_setup(sv[1]), 0);
	s.fd = sv[1];
	if (ca != NULL) {
		ta = tls_trust_load(cert(ca), err, sizeof(err));
		ck_assert_msg(ta != NULL, "%s", err);
	}
	ck_assert_int_eq(pthread_create(&t, NULL, server_main, &s), 0);
	/* (server_main shuts its end on any failure, so nothing hangs.) */
	ck_assert_int_eq(tls_client_init(&io, sv[0], name, ta, verify), 0);
	if (tls_handshake(&io, io_now_ms() + 5000) < 0) {
		ck_assert_int_eq(errno, EPROTO);
		rc = tls_last_error(&io);
		ck_assert_int_ne(rc, 0);
	} else {
		size_t got = 0;

		ck_assert_int_eq(io_write_all(&io, "hello, tls", 10, 5000), 0);
		while (got < 10) {
			ssize_t n = io_read(&io, buf + got, sizeof(buf) - got,
			    io_now_ms() + 5000);
			ck_assert_int_gt(n, 0);
			got += (size_t)n;
			/* Each of the server's writes is a record of its own:
			 * the first read has its 1 byte, and nothing is pending. */
			if (got == 1)
				ck_assert_uint_eq(io_pending(&io), 0);
		}
		ck_assert_int_eq(memcmp(buf, "hello, tls", 10), 0);
		rc = 0;
	}
	tls_close(&io);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	tls_trust_free(ta);
	if (rc == 0)
		ck_assert_int_eq(s.rc, 0);
	return rc;
}

START_TEST(test_handshake_trusted)
{
	ck_assert_int_eq(handshake("rsa.pem", "rsa.key", "localhost", "ca.pem", 1), 0);
	ck_assert_int_eq(handshake("ec.pem", "ec.key", "localhost", "ca.pem", 1), 0);
	ck_assert_int_eq(handshake("chain.pem", "chain.key", "LOCALHOST.", "ca.pem", 1), 0);
	/* IP literals: the iPAddress SAN entries. */
	ck_assert_int_eq(handshake("rsa.pem", "rsa.key", "127.0.0.1", "ca.pem", 1), 0);
	ck_assert_int_eq(handshake("ec.pem", "ec.key", "[::1]", "ca.pem", 1), 0);
	/* A non-CA certificate in the bundle pins exactly that server. */
	ck_assert_int_eq(handshake("rsa.pem", "rsa.key", "localhost", "rsa.pem", 1), 0);
}
END_TEST

START_TEST(test_handshake_refused)
{
	ck_assert_int_eq(handshake("untrusted.pem", "untrusted.key", "localhost",
	    "ca.pem", 1), BR_ERR_X509_NOT_TRUSTED);
	ck_assert_int_eq(handshake("wrongname.pem", "wrongname.key", "localhost",
	    "ca.pem", 1), BR_ERR_X509_BAD_SERVER_NAME);
	ck_assert_int_eq(handshake("wrongname.pem", "wrongname.key", "127.0.0.1",
	    "ca.pem", 1), BR_ERR_X509_BAD_SERVER_NAME);
	ck_assert_int_eq(handshake("rsa.pem", "rsa.key", "10.0.0.1",
	    "ca.pem", 1), BR_ERR_X509_BAD_SERVER_NAME);
	ck_assert_int_eq(handshake("rsa.pem", "rsa.key", "other.example",
	    "ca.pem", 1), BR_ERR_X509_BAD_SERVER_NAME);
	ck_assert_int_eq(handshake("expired.pem", "expired.key", "localhost",
	    "ca.pem", 1), BR_ERR_X509_EXPIRED);
	/* The untrusted chain is named as that even for a wrong IP. */
	ck_assert_int_eq(handshake("untrusted.pem", "untrusted.key", "10.0.0.1",
	    "ca.pem", 1), BR_ERR_X509_NOT_TRUSTED);
}
END_TEST

START_TEST(test_handshake_no_verify)
{
	ck_assert_int_eq(handshake("untrusted.pem", "untrusted.key", "localhost",
	    NULL, 0), 0);
	ck_assert_int_eq(handshake("expired.pem", "expired.key", "10.0.0.1",
	    NULL, 0), 0);
}
END_TEST

START_TEST(test_client_init_args)
{
	struct io io;

	errno = 0;
	ck_assert_int_eq(tls_client_init(&io, 0, "localhost", NULL, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_gt(tls_conn_bytes(0), BR_SSL_BUFSIZE_MONO);
	ck_assert_uint_gt(tls_conn_bytes(1), BR_SSL_BUFSIZE_BIDI);
	/* A plain io: nothing to do, no error. */
	io_init_plain(&io, -1);
	ck_assert_int_eq(tls_handshake(&io, 0), 0);
	ck_assert_int_eq(tls_last_error(&io), 0);
}
END_TEST

/* A peer that closes during the handshake is an error, never an EOF. */
START_TEST(test_handshake_eof)
{
	int sv[2];
	struct io io;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(io_socket_setup(sv[0]), 0);
	ck_assert_int_eq(tls_client_init(&io, sv[0], "localhost", NULL, 0), 0);
	close(sv[1]);
	ck_assert_int_eq(tls_handshake(&io, io_now_ms() + 2000), -1);
	ck_assert_int_ne(tls_last_error(&io), 0);
	tls_close(&io);
	close(sv[0]);
}
END_TEST

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/check_tls.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
}

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_error_texts);
	tcase_add_test(tc, test_trust_one_ca);
	tcase_add_test(tc, test_trust_bundle_ignores_keys);
	tcase_add_test(tc, test_trust_system_bundle);
	tcase_add_test(tc, test_trust_errors);
	tcase_add_test(tc, test_server_creds_ok);
	tcase_add_test(tc, test_server_creds_errors);
	tcase_add_test(tc, test_ipsan);
	tcase_add_test(tc, test_client_init_args);
	tcase_add_test(tc, test_handshake_trusted);
	tcase_add_test(tc, test_handshake_refused);
	tcase_add_test(tc, test_handshake_no_verify);
	tcase_add_test(tc, test_handshake_eof);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	certs = getenv("TLS_CERTS");
	if (certs == NULL) {
		fprintf(stderr, "TLS_CERTS: the directory tests/tls/mkcerts.sh made\n");
		return 2;
	}
	SRunner *sr = srunner_create(tls_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
