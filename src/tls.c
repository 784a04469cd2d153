/*
 * tls.c — TLS 1.2 over BearSSL behind struct io; credentials; error texts.
 *
 * BearSSL does no I/O and no allocation: its engine exposes four buffers
 * (records to send, records received, application data to send and
 * received) and this file moves bytes between them and a non-blocking
 * socket, the way BearSSL's own br_sslio does, except that it never blocks:
 * where br_sslio would wait, the operation returns EAGAIN with io->want set
 * and the caller polls with its deadline (io.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bearssl.h>

#include "caps.h"
#include "tls.h"

/* A PEM file larger than this is refused (the system bundle is ~220 KB). */
#ifndef CAP_TLS_PEM_FILE_BYTES
#define CAP_TLS_PEM_FILE_BYTES (8 * 1024 * 1024)
#endif
/* One PEM block, decoded (a certificate is rarely over 8 KB). */
#ifndef CAP_TLS_PEM_OBJECT_BYTES
#define CAP_TLS_PEM_OBJECT_BYTES (64 * 1024)
#endif

/* Certificates in a server's chain at most. */
#ifndef CAP_TLS_CHAIN
#define CAP_TLS_CHAIN 10
#endif

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Trust anchors: BearSSL's array, the DNs and keys in one block. */
struct tls_trust {
	br_x509_trust_anchor *anchors;
	size_t n, skipped;
	unsigned char *bytes;
};

/* A server's chain and key; the pointers lead into bytes. */
struct tls_server_creds {
	br_x509_certificate *chain;
	size_t chain_len;
	int key_type;                   /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
	unsigned issuer_key_type;       /* of the leaf's signer */
	br_rsa_private_key rsa;
	br_ec_private_key ec;
	unsigned char *bytes;           /* certificates and key material */
	size_t nbytes;
};

/* ---- error texts ---------------------------------------------------------------- */

struct err_text {
	int code;
	const char *text;
};

/* Alerts (RFC 5246 section 7.2) by their number, both directions. */
#define ALERT(a, t) \
	{ BR_ERR_RECV_FATAL_ALERT + (a), "peer sent alert: " t }, \
	{ BR_ERR_SEND_FATAL_ALERT + (a), "alert sent to peer: " t }

static const struct err_text err_texts[] = {
	{ BR_ERR_OK, "no error" },
	{ BR_ERR_BAD_PARAM, "invalid TLS parameter (internal error)" },
	{ BR_ERR_BAD_STATE, "invalid TLS state (internal error)" },
	{ BR_ERR_UNSUPPORTED_VERSION,
	  "peer does not speak TLS 1.2 (or not TLS at all)" },
	{ BR_ERR_BAD_VERSION, "record version changed within the connection" },
	{ BR_ERR_BAD_LENGTH, "invalid record length" },
	{ BR_ERR_TOO_LARGE, "record too large" },
	{ BR_ERR_BAD_MAC, "record authentication failed (data corrupted or tampered with)" },
	{ BR_ERR_NO_RANDOM, "no source of randomness" },
	{ BR_ERR_UNKNOWN_TYPE, "unknown record type" },
	{ BR_ERR_UNEXPECTED, "unexpected message" },
	{ BR_ERR_BAD_CCS, "invalid ChangeCipherSpec" },
	{ BR_ERR_BAD_ALERT, "invalid alert" },
	{ BR_ERR_BAD_HANDSHAKE, "invalid handshake message" },
	{ BR_ERR_OVERSIZED_ID, "oversized session ID" },
	{ BR_ERR_BAD_CIPHER_SUITE, "no cipher suite in common" },
	{ BR_ERR_BAD_COMPRESSION, "peer chose compression" },
	{ BR_ERR_BAD_FRAGLEN, "invalid maximum fragment length" },
	{ BR_ERR_BAD_SECRENEG, "secure renegotiation failed" },
	{ BR_ERR_EXTRA_EXTENSION, "unexpected extension from peer" },
	{ BR_ERR_BAD_SNI, "invalid server name indication" },
	{ BR_ERR_BAD_HELLO_DONE, "invalid ServerHelloDone" },
	{ BR_ERR_LIMIT_EXCEEDED, "peer's key or message exceeds limits" },
	{ BR_ERR_BAD_FINISHED, "handshake integrity check failed (Finished)" },
	{ BR_ERR_RESUME_MISMATCH, "session resumption mismatch" },
	{ BR_ERR_INVALID_ALGORITHM, "no algorithm in common (curve, signature or hash)" },
	{ BR_ERR_BAD_SIGNATURE, "invalid handshake signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "certificate key not usable for the cipher suite" },
	{ BR_ERR_NO_CLIENT_AUTH, "client certificate missing or invalid" },
	{ BR_ERR_IO, "socket error" },

	{ BR_ERR_X509_INVALID_VALUE, "malformed certificate (invalid value)" },
	{ BR_ERR_X509_TRUNCATED, "malformed certificate (truncated)" },
	{ BR_ERR_X509_EMPTY_CHAIN, "no certificate presented" },
	{ BR_ERR_X509_INNER_TRUNC, "malformed certificate (inner element too long)" },
	{ BR_ERR_X509_BAD_TAG_CLASS, "malformed certificate (tag class)" },
	{ BR_ERR_X509_BAD_TAG_VALUE, "malformed certificate (tag value)" },
	{ BR_ERR_X509_INDEFINITE_LENGTH, "malformed certificate (indefinite length)" },
	{ BR_ERR_X509_EXTRA_ELEMENT, "malformed certificate (extra element)" },
	{ BR_ERR_X509_UNEXPECTED, "malformed certificate (unexpected element)" },
	{ BR_ERR_X509_NOT_CONSTRUCTED, "malformed certificate (not constructed)" },
	{ BR_ERR_X509_NOT_PRIMITIVE, "malformed certificate (not primitive)" },
	{ BR_ERR_X509_PARTIAL_BYTE, "malformed certificate (partial byte)" },
	{ BR_ERR_X509_BAD_BOOLEAN, "malformed certificate (boolean)" },
	{ BR_ERR_X509_OVERFLOW, "malformed certificate (value out of range)" },
	{ BR_ERR_X509_BAD_DN, "malformed certificate (distinguished name)" },
	{ BR_ERR_X509_BAD_TIME, "malformed certificate (date)" },
	{ BR_ERR_X509_UNSUPPORTED, "certificate uses an unsupported algorithm or feature" },
	{ BR_ERR_X509_LIMIT_EXCEEDED, "certificate key or signature too large" },
	{ BR_ERR_X509_WRONG_KEY_TYPE, "certificate key type not the expected one" },
	{ BR_ERR_X509_BAD_SIGNATURE, "certificate signature invalid" },
	{ BR_ERR_X509_TIME_UNKNOWN, "time unknown: certificate validity cannot be checked" },
	{ BR_ERR_X509_EXPIRED, "certificate expired or not yet valid" },
	{ BR_ERR_X509_DN_MISMATCH, "certificate chain broken (issuer and subject differ)" },
	{ BR_ERR_X509_BAD_SERVER_NAME, "certificate does not match the host name" },
	{ BR_ERR_X509_CRITICAL_EXTENSION, "certificate has an unknown critical extension" },
	{ BR_ERR_X509_NOT_CA, "certificate issued by a certificate that is not a CA" },
	{ BR_ERR_X509_FORBIDDEN_KEY_USAGE, "certificate key usage forbids TLS" },
	{ BR_ERR_X509_WEAK_PUBLIC_KEY, "certificate key too weak" },
	{ BR_ERR_X509_NOT_TRUSTED, "certificate not trusted (unknown issuer)" },

	{ TLS_ERR_HANDSHAKE_EOF, "connection closed during the TLS handshake" },
	{ TLS_ERR_NO_CLOSE_NOTIFY, "connection closed without close_notify" },

	ALERT(BR_ALERT_CLOSE_NOTIFY, "close notify"),
	ALERT(BR_ALERT_UNEXPECTED_MESSAGE, "unexpected message"),
	ALERT(BR_ALERT_BAD_RECORD_MAC, "bad record MAC"),
	ALERT(BR_ALERT_RECORD_OVERFLOW, "record overflow"),
	ALERT(BR_ALERT_DECOMPRESSION_FAILURE, "decompression failure"),
	ALERT(BR_ALERT_HANDSHAKE_FAILURE,
	    "handshake failure (no cipher suite, version or curve in common)"),
	ALERT(BR_ALERT_BAD_CERTIFICATE, "bad certificate"),
	ALERT(BR_ALERT_UNSUPPORTED_CERTIFICATE, "unsupported certificate"),
	ALERT(BR_ALERT_CERTIFICATE_REVOKED, "certificate revoked"),
	ALERT(BR_ALERT_CERTIFICATE_EXPIRED, "certificate expired"),
	ALERT(BR_ALERT_CERTIFICATE_UNKNOWN, "certificate unknown"),
	ALERT(BR_ALERT_ILLEGAL_PARAMETER, "illegal parameter"),
	ALERT(BR_ALERT_UNKNOWN_CA, "unknown CA"),
	ALERT(BR_ALERT_ACCESS_DENIED, "access denied"),
	ALERT(BR_ALERT_DECODE_ERROR, "decode error"),
	ALERT(BR_ALERT_DECRYPT_ERROR, "decrypt error"),
	ALERT(BR_ALERT_PROTOCOL_VERSION, "protocol version (TLS 1.2 refused)"),
	ALERT(BR_ALERT_INSUFFICIENT_SECURITY, "insufficient security"),
	ALERT(BR_ALERT_INTERNAL_ERROR, "internal error"),
	ALERT(86, "inappropriate fallback"),
	ALERT(BR_ALERT_USER_CANCELED, "user canceled"),
	ALERT(BR_ALERT_NO_RENEGOTIATION, "no renegotiation"),
	ALERT(BR_ALERT_UNSUPPORTED_EXTENSION, "unsupported extension"),
	ALERT(112, "unrecognized name (SNI)"),
	ALERT(BR_ALERT_NO_APPLICATION_PROTOCOL, "no application protocol"),
};

const char *
tls_error_text(int code)
{
	size_t i;

	for (i = 0; i < N(err_texts); i++)
		if (err_texts[i].code == code)
			return err_texts[i].text;
	if (code >= BR_ERR_RECV_FATAL_ALERT && code < BR_ERR_SEND_FATAL_ALERT)
		return "peer sent a fatal alert";
	if (code >= BR_ERR_SEND_FATAL_ALERT && code < BR_ERR_SEND_FATAL_ALERT + 256)
		return "fatal alert sent to peer";
	return "unknown TLS error";
}

/* ---- cipher suites and algorithms ------------------------------------------------ */

/*
 * TLS 1.2, ECDHE only, AEAD only: what every maintained server offers, and
 * a third less code than BearSSL's "full" profiles (no CBC, CCM, 3DES,
 * static RSA or ECDH, no TLS 1.0/1.1 PRF or MD5).  Two orders of the same
 * set: with AES instructions (x86 AES-NI) AES-GCM is the fastest; without
 * (most routers) BearSSL's constant-time AES is slow and ChaCha20 wins.
 */
static const uint16_t suites_aes_first[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};
static const uint16_t suites_chacha_first[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

/* Signature hashes: SHA-1 only for old intermediate certificates and
 * servers; MD5 never (TLS 1.2 does not need it). */
static const struct {
	int id;
	const br_hash_class *impl;
} hashes[] = {
	{ br_sha1_ID, &br_sha1_vtable },
	{ br_sha224_ID, &br_sha224_vtable },
	{ br_sha256_ID, &br_sha256_vtable },
	{ br_sha384_ID, &br_sha384_vtable },
	{ br_sha512_ID, &br_sha512_vtable },
};

/* What client and server engines share. */
static void
engine_setup(br_ssl_engine_context *eng)
{
	size_t i;

	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	if (br_aes_x86ni_ctr_get_vtable() != NULL)
		br_ssl_engine_set_suites(eng, suites_aes_first, N(suites_aes_first));
	else
		br_ssl_engine_set_suites(eng, suites_chacha_first,
		    N(suites_chacha_first));
	for (i = 0; i < N(hashes); i++)
		br_ssl_engine_set_hash(eng, hashes[i].id, hashes[i].impl);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
#if defined(__x86_64__) || defined(__i386__)
	/* x86 has AES-NI (AES-GCM goes first): ChaCha20-Poly1305 is the rare
	 * fallback, so its portable code alone, not BearSSL's SSE2 and 64-bit
	 * multiply variants beside it (3.6 KiB of the static build). */
	br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable,
	    &br_sslrec_out_chapol_vtable);
	br_ssl_engine_set_chacha20(eng, &br_chacha20_ct_run);
	br_ssl_engine_set_poly1305(eng, &br_poly1305_ctmul_run);
#else
	br_ssl_engine_set_default_chapol(eng);
#endif
	/* Renegotiation only ever served attacks (CVE-2009-3555, CPU DoS). */
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
}

/* Seeds the engine's generator from getentropy(): a system call, so no
 * /dev is needed (chroot, scratch container, static musl).  BearSSL's own
 * seeder runs as well at reset. */
static void
engine_seed(br_ssl_engine_context *eng)
{
	unsigned char seed[32];

	if (getentropy(seed, sizeof(seed)) == 0)
		br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
	explicit_bzero(seed, sizeof(seed));
}

/* ---- the IP address check ------------------------------------------------------ */

enum { S_TAG, S_LEN, S_LENN, S_SKIP, S_CAPTURE };
enum { A_ENTER, A_SKIP, A_CAPTURE, A_BAD };

/* subjectAltName, 2.5.29.17 (RFC 5280 section 4.2.1.6), as DER content. */
static const unsigned char oid_san[] = { 0x55, 0x1d, 0x11 };

void
tls_ipsan_init(struct tls_ipsan *s, const unsigned char *ip, size_t iplen)
{
	memset(s, 0, sizeof(*s));
	if (iplen != 4 && iplen != 16) {
		s->bad = 1;
		return;
	}
	memcpy(s->ip, ip, iplen);
	s->iplen = (unsigned char)iplen;
}

int
tls_ipsan_matched(const struct tls_ipsan *s)
{
	return s->matched;
}

/* What to do with an element of tag `tag` inside the s->depth open ones:
 * the path Certificate / tbsCertificate / [3] / Extensions / Extension /
 * extnValue / GeneralNames / iPAddress [7]. */
static int
ipsan_action(struct tls_ipsan *s, unsigned tag)
{
	switch (s->depth) {
	case 0:         /* Certificate */
		return tag == 0x30 ? A_ENTER : A_BAD;
	case 1:         /* tbsCertificate first, then the signature: skipped */
		if (s->tbs_seen)
			return A_SKIP;
		s->tbs_seen = 1;
		return tag == 0x30 ? A_ENTER : A_BAD;
	case 2:         /* tbsCertificate fields: only [3] extensions */
		return tag == 0xa3 ? A_ENTER : A_SKIP;
	case 3:         /* Extensions ::= SEQUENCE OF Extension */
		return tag == 0x30 ? A_ENTER : A_SKIP;
	case 4:         /* Extension ::= SEQUENCE { extnID, critical, extnValue } */
		s->is_san = 0;
		return tag == 0x30 ? A_ENTER : A_SKIP;
	case 5:
		if (tag == 0x06)
			return A_CAPTURE;
		return tag == 0x04 && s->is_san ? A_ENTER : A_SKIP;
	case 6:         /* the OCTET STRING holds GeneralNames */
		return tag == 0x30 ? A_ENTER : A_SKIP;
	case 7:         /* GeneralName: iPAddress [7] IMPLICIT OCTET STRING */
		return tag == 0x87 ? A_CAPTURE : A_SKIP;
	default:
		return A_SKIP;
	}
}

static void
ipsan_captured(struct tls_ipsan *s)
{
	if (s->depth == 5)
		s->is_san = s->caplen == sizeof(oid_san) &&
		    memcmp(s->cap, oid_san, sizeof(oid_san)) == 0;
	else if (s->caplen == s->iplen && memcmp(s->cap, s->ip, s->iplen) == 0)
		s->matched = 1;
}

/* A header is complete: check it fits its parent and act on it. */
static void
ipsan_header(struct tls_ipsan *s)
{
	if (s->depth > 0 && (uint64_t)s->off + s->len > s->end[s->depth - 1]) {
		s->bad = 1;
		return;
	}
	switch (ipsan_action(s, s->tag)) {
	case A_ENTER:
		if (s->depth == TLS_IPSAN_DEPTH) {
			s->bad = 1;
			return;
		}
		s->end[s->depth++] = s->off + s->len;
		s->state = S_TAG;
		break;
	case A_SKIP:
		s->left = s->len;
		s->state = S_SKIP;
		break;
	case A_CAPTURE:
		s->left = s->len;
		s->caplen = 0;
		s->state = S_CAPTURE;
		if (s->len == 0) {
			ipsan_captured(s);
			s->state = S_TAG;
		}
		break;
	default:
		s->bad = 1;
	}
}

void
tls_ipsan_push(struct tls_ipsan *s, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0 && !s->bad) {
		unsigned b;
		size_t k;

		switch (s->state) {
		case S_TAG:
			/* Close the elements that ended here. */
			while (s->depth > 0 && s->off == s->end[s->depth - 1])
				s->depth--;
			if (s->depth == 0 && s->tbs_seen) {
				s->bad = 1;     /* bytes after the certificate */
				break;
			}
			b = *p++, len--, s->off++;
			if ((b & 0x1f) == 0x1f) {
				s->bad = 1;     /* high tag numbers: not in a path we follow */
				break;
			}
			s->tag = (unsigned char)b;
			s->state = S_LEN;
			break;
		case S_LEN:
			b = *p++, len--, s->off++;
			if (b < 0x80) {
				s->len = b;
				ipsan_header(s);
			} else if (b == 0x80 || b > 0x84) {
				s->bad = 1;     /* indefinite (not DER) or over 4 GiB */
			} else {
				s->lenbytes = (unsigned char)(b & 0x7f);
				s->len = 0;
				s->state = S_LENN;
			}
			break;
		case S_LENN:
			b = *p++, len--, s->off++;
			s->len = s->len << 8 | b;
			if (--s->lenbytes == 0)
				ipsan_header(s);
			break;
		case S_SKIP:
		case S_CAPTURE:
			k = len < s->left ? len : s->left;
			if (s->state == S_CAPTURE && s->caplen < sizeof(s->cap)) {
				size_t c = sizeof(s->cap) - s->caplen;
				memcpy(s->cap + s->caplen, p, k < c ? k : c);
			}
			if (s->state == S_CAPTURE)
				s->caplen += (uint32_t)k;
			p += k, len -= k, s->off += (uint32_t)k;
			s->left -= (uint32_t)k;
			if (s->left == 0) {
				if (s->state == S_CAPTURE)
					ipsan_captured(s);
				s->state = S_TAG;
			}
			break;
		}
		if (s->off > UINT32_MAX - 0x10000)
			s->bad = 1;
	}
}

/* ---- X.509 engines around BearSSL's minimal one ---------------------------------- */

/*
 * For an IP literal: BearSSL's minimal engine validates the chain (with no
 * name), and the leaf's bytes also pass through tls_ipsan on their way.
 */
struct x509_ip {
	const br_x509_class *vtable;
	const br_x509_class **inner;
	struct tls_ipsan san;
	unsigned char ip[16];
	unsigned char iplen;
	uint32_t certs;
};

static void
xip_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct x509_ip *x = (struct x509_ip *)(void *)ctx;

	(void)server_name;
	(*x->inner)->start_chain(x->inner, NULL);
	tls_ipsan_init(&x->san, x->ip, x->iplen);
	x->certs = 0;
}

static void
xip_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct x509_ip *x = (struct x509_ip *)(void *)ctx;

	(*x->inner)->start_cert(x->inner, length);
	x->certs++;
}

static void
xip_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct x509_ip *x = (struct x509_ip *)(void *)ctx;

	(*x->inner)->append(x->inner, buf, len);
	if (x->certs == 1)
		tls_ipsan_push(&x->san, buf, len);
}

static void
xip_end_cert(const br_x509_class **ctx)
{
	struct x509_ip *x = (struct x509_ip *)(void *)ctx;

	(*x->inner)->end_cert(x->inner);
}

static unsigned
xip_end_chain(const br_x509_class **ctx)
{
	struct x509_ip *x = (struct x509_ip *)(void *)ctx;
	unsigned err = (*x->inner)->end_chain(x->inner);

	/* An untrusted chain is reported as that, before any name problem. */
	if (err != 0 && err != BR_ERR_X509_OK)
		return err;
	return tls_ipsan_matched(&x->san) ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
}

static const br_x509_pkey *
xip_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct x509_ip *x = (const struct x509_ip *)(const void *)ctx;

	return (*x->inner)->get_pkey(x->inner, usages);
}

static const br_x509_class x509_ip_vtable = {
	sizeof(struct x509_ip),
	xip_start_chain,
	xip_start_cert,
	xip_append,
	xip_end_cert,
	xip_end_chain,
	xip_get_pkey,
};

/*
 * tls_verify = false: no validation at all; the leaf is only decoded for
 * its public key, which the handshake needs (the server signs its ECDHE
 * share with it).
 */
struct x509_none {
	const br_x509_class *vtable;
	br_x509_decoder_context dc;
	uint32_t certs;
};

static void
xnone_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct x509_none *x = (struct x509_none *)(void *)ctx;

	(void)server_name;
	x->certs = 0;
}

static void
xnone_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct x509_none *x = (struct x509_none *)(void *)ctx;

	(void)length;
	if (x->certs++ == 0)
		br_x509_decoder_init(&x->dc, NULL, NULL);
}

static void
xnone_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct x509_none *x = (struct x509_none *)(void *)ctx;

	if (x->certs == 1)
		br_x509_decoder_push(&x->dc, buf, len);
}

static void
xnone_end_cert(const br_x509_class **ctx)
{
	(void)ctx;
}

static unsigned
xnone_end_chain(const br_x509_class **ctx)
{
	struct x509_none *x = (struct x509_none *)(void *)ctx;

	if (x->certs == 0)
		return BR_ERR_X509_EMPTY_CHAIN;
	return (unsigned)br_x509_decoder_last_error(&x->dc);
}

static const br_x509_pkey *
xnone_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	const struct x509_none *x = (const struct x509_none *)(const void *)ctx;

	if (usages != NULL)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	/* br_x509_decoder_get_pkey() without its non-const parameter. */
	return x->dc.decoded && x->dc.err == 0 ? &x->dc.pkey : NULL;
}

static const br_x509_class x509_none_vtable = {
	sizeof(struct x509_none),
	xnone_start_chain,
	xnone_start_cert,
	xnone_append,
	xnone_end_cert,
	xnone_end_chain,
	xnone_get_pkey,
};

/* ---- connections ---------------------------------------------------------------- */

/* What the io operations need, first in both allocations below. */
struct tls_conn {
	br_ssl_engine_context *eng;
	size_t size;            /* of the whole allocation, for the wipe */
	int fail_errno;         /* != 0: every operation fails with it */
	int err;                /* TLS_ERR_* or BR_ERR_IO; the engine's wins */
	unsigned char established;
	unsigned char eof;      /* TCP end seen after the handshake */
};

struct tls_client {
	struct tls_conn c;
	br_ssl_client_context cc;
	union {
		br_x509_minimal_context minimal;
		struct x509_none none;
	} x;
	struct x509_ip ip;
	unsigned char buf[BR_SSL_BUFSIZE_MONO];
};

struct tls_server {
	struct tls_conn c;
	br_ssl_server_context sc;
	unsigned char buf[BR_SSL_BUFSIZE_BIDI];
};

static const struct io_ops tls_ops;

size_t
tls_conn_bytes(int server)
{
	return server ? sizeof(struct tls_server) : sizeof(struct tls_client);
}

/* run() reached the end of the stream cleanly. */
#define RUN_EOF 1

/* A socket error: it sticks. */
static int
sock_fail(struct tls_conn *t, int e)
{
	t->fail_errno = e;
	if (t->err == 0 || t->err == TLS_ERR_NO_CLOSE_NOTIFY)
		t->err = BR_ERR_IO;
	errno = e;
	return -1;
}

/* The engine is closed: cleanly (RUN_EOF) or not (-1, EPROTO). */
static int
engine_ended(struct tls_conn *t)
{
	if (br_ssl_engine_last_error(t->eng) != BR_ERR_OK) {
		errno = EPROTO;
		return -1;
	}
	if (!t->established) {
		t->err = TLS_ERR_HANDSHAKE_EOF;
		t->fail_errno = EPROTO;
		errno = EPROTO;
		return -1;
	}
	return RUN_EOF;
}

/*
 * Moves records between the engine and the socket until the engine's state
 * has one of the `target` bits (BR_SSL_SENDAPP, BR_SSL_RECVAPP) or the
 * socket would block.  Records waiting to be sent go first, but when the
 * socket takes no more and the target is already reached, that is success:
 * a reader gets the data it can have.  Returns 0, RUN_EOF, or -1 with errno
 * (EAGAIN with io->want set; EPROTO; EDEADLK; a socket errno).
 */
static int
run(struct io *io, struct tls_conn *t, unsigned target)
{
	br_ssl_engine_context *eng = t->eng;

	for (;;) {
		unsigned char *p;
		unsigned st;
		size_t len;
		ssize_t r;

		if (t->fail_errno != 0) {
			errno = t->fail_errno;
			return -1;
		}
		st = br_ssl_engine_current_state(eng);
		if (st & BR_SSL_CLOSED)
			return engine_ended(t);
		if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))
			t->established = 1;
		if (st & BR_SSL_SENDREC) {
			p = br_ssl_engine_sendrec_buf(eng, &len);
			r = send(io->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r > 0) {
				br_ssl_engine_sendrec_ack(eng, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (st & target)
					return 0;
				io->want = POLLOUT;
				errno = EAGAIN;
				return -1;
			}
			/* The peer sent close_notify and left before our reply:
			 * still a clean end.  (shutdown_recv is BearSSL's flag for
			 * "close_notify received"; the struct is public.) */
			if (eng->shutdown_recv && t->established) {
				t->eof = 1;
				if (target & BR_SSL_RECVAPP)
					return RUN_EOF;
				errno = EPIPE;
				return -1;
			}
			return sock_fail(t, r < 0 ? errno : EPIPE);
		}
		if (st & target)
			return 0;
		if ((target & BR_SSL_RECVAPP) && t->eof)
			return RUN_EOF;
		if (st & BR_SSL_RECVREC) {
			p = br_ssl_engine_recvrec_buf(eng, &len);
			r = recv(io->fd, p, len, MSG_DONTWAIT);
			if (r > 0) {
				br_ssl_engine_recvrec_ack(eng, (size_t)r);
				continue;
			}
			if (r == 0) {
				if (!t->established) {
					t->err = TLS_ERR_HANDSHAKE_EOF;
					t->fail_errno = EPROTO;
					errno = EPROTO;
					return -1;
				}
				/* After the handshake: the end of the stream, though
				 * not a proven one (see tls.h, read). */
				t->eof = 1;
				if (t->err == 0)
					t->err = TLS_ERR_NO_CLOSE_NOTIFY;
				if (target & BR_SSL_RECVAPP)
					return RUN_EOF;
				/* A writer waiting for a record to complete. */
				errno = EPIPE;
				return -1;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				io->want = POLLIN;
				errno = EAGAIN;
				return -1;
			}
			return sock_fail(t, errno);
		}
		/* Neither record buffer is usable: the shared buffer of a client
		 * holds the peer's data, which must be read before writing. */
		errno = EDEADLK;
		return -1;
	}
}

/* Sends complete records while the socket takes them; never waits. */
static void
push(struct io *io, struct tls_conn *t)
{
	unsigned char *p;
	size_t len;
	ssize_t r;

	while (t->fail_errno == 0 &&
	    (p = br_ssl_engine_sendrec_buf(t->eng, &len)) != NULL) {
		r = send(io->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0)
			br_ssl_engine_sendrec_ack(t->eng, (size_t)r);
		else if (r < 0 && errno == EINTR)
			continue;
		else {
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				(void)sock_fail(t, r < 0 ? errno : EPIPE);
			break;
		}
	}
}

static ssize_t
tls_read(struct io *io, void *buf, size_t n)
{
	struct tls_conn *t = io->transport;
	unsigned char *p;
	size_t len;
	int r;

	if (n == 0)
		return 0;
	br_ssl_engine_flush(t->eng, 0);
	r = run(io, t, BR_SSL_RECVAPP);
	if (r == RUN_EOF)
		return 0;
	if (r < 0)
		return -1;
	p = br_ssl_engine_recvapp_buf(t->eng, &len);
	if (len > n)
		len = n;
	memcpy(buf, p, len);
	br_ssl_engine_recvapp_ack(t->eng, len);
	return (ssize_t)len;
}

static ssize_t
tls_writev(struct io *io, const struct iovec *iov, int iovcnt)
{
	struct tls_conn *t = io->transport;
	size_t total = 0;
	int i;

	for (i = 0; i < iovcnt; i++) {
		const unsigned char *src = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0) {
			unsigned char *dst;
			size_t room;
			int r = run(io, t, BR_SSL_SENDAPP);

			if (r != 0) {
				if (total > 0)
					return (ssize_t)total;
				if (r == RUN_EOF)
					errno = EPIPE;
				return -1;
			}
			dst = br_ssl_engine_sendapp_buf(t->eng, &room);
			if (room > left)
				room = left;
			memcpy(dst, src, room);
			/* A full record is sealed here, and sent by the next run()
			 * or the push below. */
			br_ssl_engine_sendapp_ack(t->eng, room);
			src += room;
			left -= room;
			total += room;
		}
	}
	push(io, t);
	return (ssize_t)total;
}

static int
tls_flush(struct io *io, int stall_ms)
{
	struct tls_conn *t = io->transport;

	br_ssl_engine_flush(t->eng, 0);
	for (;;) {
		unsigned char *p;
		unsigned st;
		size_t len;
		ssize_t r;

		if (t->fail_errno != 0) {
			errno = t->fail_errno;
			return -1;
		}
		st = br_ssl_engine_current_state(t->eng);
		if (st & BR_SSL_CLOSED) {
			if (engine_ended(t) == RUN_EOF)
				errno = EPIPE;
			return -1;
		}
		if (!(st & BR_SSL_SENDREC))
			return 0;
		p = br_ssl_engine_sendrec_buf(t->eng, &len);
		r = send(io->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			br_ssl_engine_sendrec_ack(t->eng, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			io->want = POLLOUT;
			if (io_wait(io->fd, POLLOUT, io_now_ms() + stall_ms) < 0)
				return -1;
			continue;
		}
		return sock_fail(t, r < 0 ? errno : EPIPE);
	}
}

static size_t
tls_pending(const struct io *io)
{
	const struct tls_conn *t = io->transport;
	size_t len;

	if (br_ssl_engine_recvapp_buf(t->eng, &len) == NULL)
		return 0;
	return len;
}

static const struct io_ops tls_ops = {
	.read = tls_read,
	.writev = tls_writev,
	.flush = tls_flush,
	.pending = tls_pending,
	.close = tls_close,
};

int
tls_handshake(struct io *io, int64_t deadline_ms)
{
	struct tls_conn *t;

	if (io->ops != &tls_ops)
		return 0;
	t = io->transport;
	for (;;) {
		int r = run(io, t, BR_SSL_SENDAPP | BR_SSL_RECVAPP);

		if (r == 0 || (r == RUN_EOF && t->established))
			return 0;
		if (r == RUN_EOF) {
			errno = EPROTO;
			return -1;
		}
		if (errno != EAGAIN)
			return -1;
		if (io_wait(io->fd, io->want, deadline_ms) < 0)
			return -1;
	}
}

int
tls_last_error(const struct io *io)
{
	const struct tls_conn *t;
	int e;

	if (io->ops != &tls_ops)
		return 0;
	t = io->transport;
	e = br_ssl_engine_last_error(t->eng);
	return e != BR_ERR_OK ? e : t->err;
}

void
tls_close(struct io *io)
{
	struct tls_conn *t;

	if (io->ops != &tls_ops)
		return;
	t = io->transport;
	if (t->fail_errno == 0) {
		/* Seals what was written, queues close_notify (or, after a
		 * failure, the engine has queued its fatal alert: the peer
		 * learns why, e.g. bad_certificate); whatever the socket takes
		 * now leaves, the rest is dropped. */
		if (!(br_ssl_engine_current_state(t->eng) & BR_SSL_CLOSED))
			br_ssl_engine_close(t->eng);
		push(io, t);
	}
	explicit_bzero(t, t->size);
	free(t);
	io->transport = NULL;
	io->ops = NULL;
}

static void
io_install(struct io *io, int fd, struct tls_conn *t)
{
	io->fd = fd;
	io->want = 0;
	io->ops = &tls_ops;
	io->transport = t;
}

int
tls_client_init(struct io *io, int fd, const char *server_name,
    const struct tls_trust *ta, int verify)
{
	struct tls_client *cl;
	br_ssl_engine_context *eng;
	unsigned char ip[16];
	size_t iplen = 0, len, i;
	char host[256];

	if (server_name == NULL)
		server_name = "";
	len = strlen(server_name);
	if (len >= 2 && server_name[0] == '[' && server_name[len - 1] == ']') {
		server_name++;
		len -= 2;
	}
	if (len > 0 && server_name[len - 1] == '.')
		len--;
	if (len >= sizeof(host) || (verify && (len == 0 || ta == NULL))) {
		errno = EINVAL;
		return -1;
	}
	memcpy(host, server_name, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, host, ip) == 1)
		iplen = 16;

	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -1;
	cl->c.size = sizeof(*cl);
	eng = cl->c.eng = &cl->cc.eng;

	br_ssl_client_zero(&cl->cc);
	engine_setup(eng);
	/* Signature checks, for the handshake and the certificates. */
	br_ssl_engine_set_default_rsavrfy(eng);
	/* Not br_ssl_engine_set_default_ecdsa(): it forces the m31 curve
	 * code, which on 64-bit machines would be linked beside the m62 one
	 * the server side and key checks use (10 KiB of the static build). */
	br_ssl_engine_set_ec(eng, br_ec_get_default());
	br_ssl_engine_set_ecdsa(eng, br_ecdsa_vrfy_asn1_get_default());
	if (verify) {
		br_x509_minimal_context *xc = &cl->x.minimal;

		br_x509_minimal_init(xc, &br_sha256_vtable, ta->anchors, ta->n);
		br_x509_minimal_set_rsa(xc, br_ssl_engine_get_rsavrfy(eng));
		br_x509_minimal_set_ecdsa(xc, br_ssl_engine_get_ec(eng),
		    br_ssl_engine_get_ecdsa(eng));
		for (i = 0; i < N(hashes); i++)
			br_x509_minimal_set_hash(xc, hashes[i].id,
			    hashes[i].impl);
		if (iplen > 0) {
			cl->ip.vtable = &x509_ip_vtable;
			cl->ip.inner = &xc->vtable;
			memcpy(cl->ip.ip, ip, iplen);
			cl->ip.iplen = (unsigned char)iplen;
			br_ssl_engine_set_x509(eng, &cl->ip.vtable);
		} else {
			br_ssl_engine_set_x509(eng, &xc->vtable);
		}
	} else {
		cl->x.none.vtable = &x509_none_vtable;
		br_ssl_engine_set_x509(eng, &cl->x.none.vtable);
	}
	br_ssl_engine_set_buffer(eng, cl->buf, sizeof(cl->buf), 0);
	engine_seed(eng);
	/* The name is both SNI and the name checked; never an IP literal.  A
	 * failure (no randomness) stays in the engine for the first call. */
	(void)br_ssl_client_reset(&cl->cc, iplen > 0 || host[0] == '\0' ?
	    NULL : host, 0);
	io_install(io, fd, &cl->c);
	return 0;
}

int
tls_server_init(struct io *io, int fd, const struct tls_server_creds *creds)
{
	struct tls_server *sv;
	br_ssl_engine_context *eng;

	sv = calloc(1, sizeof(*sv));
	if (sv == NULL)
		return -1;
	sv->c.size = sizeof(*sv);
	eng = sv->c.eng = &sv->sc.eng;

	br_ssl_server_zero(&sv->sc);
	engine_setup(eng);
	br_ssl_engine_set_default_ec(eng);
	if (creds->key_type == BR_KEYTYPE_RSA)
		br_ssl_server_set_single_rsa(&sv->sc, creds->chain,
		    creds->chain_len, &creds->rsa, BR_KEYTYPE_SIGN,
		    br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
	else
		br_ssl_server_set_single_ec(&sv->sc, creds->chain,
		    creds->chain_len, &creds->ec, BR_KEYTYPE_SIGN,
		    creds->issuer_key_type, br_ssl_engine_get_ec(eng),
		    br_ecdsa_sign_asn1_get_default());
	/* Our order, so a router's CPU gets the cipher it is fast at. */
	br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES);
	br_ssl_engine_set_buffer(eng, sv->buf, sizeof(sv->buf), 1);
	engine_seed(eng);
	(void)br_ssl_server_reset(&sv->sc);
	io_install(io, fd, &sv->c);
	return 0;
}

/* ---- PEM files --------------------------------------------------------------------- */

/* A growing byte store; positions are offsets, turned into pointers once
 * it stops moving. */
struct arena {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static size_t
arena_put(struct arena *a, const void *data, size_t len)
{
	size_t at = a->len;

	if (a->oom)
		return 0;
	if (len > a->cap - a->len) {
		size_t cap = a->cap ? a->cap : 4096;
		unsigned char *q;

		while (cap - a->len < len)
			cap *= 2;
		q = realloc(a->p, cap);
		if (q == NULL) {
			a->oom = 1;
			return 0;
		}
		a->p = q;
		a->cap = cap;
	}
	if (len > 0)
		memcpy(a->p + a->len, data, len);
	a->len += len;
	return at;
}

/* Frees an arena that may hold key material. */
static void
arena_wipe(struct arena *a)
{
	if (a->p != NULL)
		explicit_bzero(a->p, a->cap);
	free(a->p);
	memset(a, 0, sizeof(*a));
}

struct pem_in {
	br_pem_decoder_context pc;
	unsigned char chunk[4096];
	struct arena obj;               /* the current block, decoded */
	int too_big;
	char name[128];
};

static void
pem_append(void *ctx, const void *data, size_t len)
{
	struct pem_in *in = ctx;

	if (in->obj.len + len > CAP_TLS_PEM_OBJECT_BYTES)
		in->too_big = 1;
	else
		(void)arena_put(&in->obj, data, len);
}

/* Where a PEM block is, for messages. */
struct where {
	const char *path;
	unsigned line;
};

/* Called with each block: its name and DER bytes.  Returns 0, or -1 after
 * writing err. */
typedef int (*pem_fn)(void *arg, const char *name, const unsigned char *der,
    size_t len, const struct where *w, char *err, size_t errlen);

static unsigned
count_lines(const unsigned char *p, size_t n)
{
	unsigned lines = 0;

	while (n-- > 0)
		lines += *p++ == '\n';
	return lines;
}

/*
 * Decodes every PEM block of path and calls fn with each.  Returns the
 * number of blocks, or -1 after writing err (naming the path, and the line
 * where it helps).
 */
static int
pem_each(const char *path, pem_fn fn, void *arg, char *err, size_t errlen)
{
	struct pem_in *in;
	struct where w = { path, 1 };
	size_t total = 0;
	int fd = -1, blocks = 0, inside = 0, rc = -1, final = 0;

	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto done;
	}
	br_pem_decoder_init(&in->pc);
	while (!final) {
		const unsigned char *p = in->chunk;
		ssize_t n = read(fd, in->chunk, sizeof(in->chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno));
			goto done;
		}
		if (n == 0) {
			/* A last line without its newline still ends the block. */
			in->chunk[0] = '\n';
			n = 1;
			final = 1;
		}
		total += (size_t)n;
		if (total > CAP_TLS_PEM_FILE_BYTES + 1) {
			snprintf(err, errlen, "%s: larger than %d bytes", path,
			    CAP_TLS_PEM_FILE_BYTES);
			goto done;
		}
		while (n > 0) {
			size_t k = br_pem_decoder_push(&in->pc, p, (size_t)n);

			w.line += count_lines(p, k);
			p += k;
			n -= (ssize_t)k;
			switch (br_pem_decoder_event(&in->pc)) {
			case BR_PEM_BEGIN_OBJ:
				snprintf(in->name, sizeof(in->name), "%s",
				    br_pem_decoder_name(&in->pc));
				in->obj.len = 0;
				in->too_big = 0;
				br_pem_decoder_setdest(&in->pc, pem_append, in);
				inside = 1;
				break;
			case BR_PEM_END_OBJ:
				if (!inside)
					break;
				inside = 0;
				blocks++;
				if (in->obj.oom) {
					snprintf(err, errlen, "%s: out of memory", path);
					goto done;
				}
				if (in->too_big) {
					snprintf(err, errlen, "%s:%u: %s block larger "
					    "than %d bytes", path, w.line, in->name,
					    CAP_TLS_PEM_OBJECT_BYTES);
					goto done;
				}
				if (fn(arg, in->name, in->obj.p, in->obj.len, &w,
				    err, errlen) < 0)
					goto done;
				break;
			case BR_PEM_ERROR:
				/* The decoder stops after the newline of the line
				 * at fault. */
				snprintf(err, errlen, "%s:%u: malformed PEM (bad "
				    "base64 or BEGIN/END lines)", path, w.line -
				    (k > 0 && p[-1] == '\n' && w.line > 1));
				goto done;
			default:
				break;
			}
		}
	}
	if (inside) {
		snprintf(err, errlen, "%s:%u: %s block has no END line", path,
		    w.line, in->name);
		goto done;
	}
	rc = blocks;
done:
	if (fd >= 0)
		close(fd);
	arena_wipe(&in->obj);
	explicit_bzero(in, sizeof(*in));
	free(in);
	return rc;
}

static int
is_certificate(const char *name)
{
	return strcmp(name, "CERTIFICATE") == 0 ||
	    strcmp(name, "X509 CERTIFICATE") == 0;
}

/* ---- trust anchors ------------------------------------------------------------------ */

/* One anchor while loading: offsets into the arena. */
struct ta_off {
	size_t dn, dn_len, k1, k1_len, k2, k2_len;
	int curve;
	unsigned char key_type, ca;
};

struct trust_load {
	br_x509_decoder_context dc;
	struct arena bytes;
	struct ta_off *v;
	size_t n, cap, skipped, certs;
};

static void
dn_append(void *ctx, const void *data, size_t len)
{
	struct trust_load *l = ctx;

	(void)arena_put(&l->bytes, data, len);
}

static int
trust_block(void *arg, const char *name, const unsigned char *der,
    size_t len, const struct where *w, char *err, size_t errlen)
{
	struct trust_load *l = arg;
	const br_x509_pkey *pk;
	struct ta_off o = { 0 };
	int e;

	if (!is_certificate(name))
		return 0;
	l->certs++;
	o.dn = l->bytes.len;
	br_x509_decoder_init(&l->dc, dn_append, l);
	br_x509_decoder_push(&l->dc, der, len);
	e = br_x509_decoder_last_error(&l->dc);
	if (e == BR_ERR_X509_UNSUPPORTED || e == BR_ERR_X509_LIMIT_EXCEEDED) {
		/* Well-formed but unusable here (an Ed25519 key, RSA over
		 * 4096 bits): skip it rather than refuse the bundle. */
		l->bytes.len = o.dn;
		l->skipped++;
		return 0;
	}
	if (e != 0) {
		snprintf(err, errlen, "%s:%u: certificate %zu: %s", w->path,
		    w->line, l->certs, tls_error_text(e));
		return -1;
	}
	o.dn_len = l->bytes.len - o.dn;
	pk = br_x509_decoder_get_pkey(&l->dc);
	o.key_type = pk->key_type;
	o.ca = br_x509_decoder_isCA(&l->dc) != 0;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		o.k1 = arena_put(&l->bytes, pk->key.rsa.n, pk->key.rsa.nlen);
		o.k1_len = pk->key.rsa.nlen;
		o.k2 = arena_put(&l->bytes, pk->key.rsa.e, pk->key.rsa.elen);
		o.k2_len = pk->key.rsa.elen;
	} else {
		o.curve = pk->key.ec.curve;
		o.k1 = arena_put(&l->bytes, pk->key.ec.q, pk->key.ec.qlen);
		o.k1_len = pk->key.ec.qlen;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct ta_off *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL) {
			l->bytes.oom = 1;
			return 0;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = o;
	return 0;
}

struct tls_trust *
tls_trust_load(const char *pem_path, char *err, size_t errlen)
{
	struct trust_load *l;
	struct tls_trust *ta = NULL;
	size_t i;

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "%s: out of memory", pem_path);
		return NULL;
	}
	if (pem_each(pem_path, trust_block, l, err, errlen) < 0)
		goto done;
	if (l->bytes.oom) {
		snprintf(err, errlen, "%s: out of memory", pem_path);
		goto done;
	}
	if (l->n == 0) {
		if (l->skipped > 0)
			snprintf(err, errlen, "%s: no usable certificate (%zu "
			    "with unsupported keys)", pem_path, l->skipped);
		else
			snprintf(err, errlen, "%s: no certificate (a PEM file "
			    "with CERTIFICATE blocks is expected)", pem_path);
		goto done;
	}
	ta = calloc(1, sizeof(*ta) + l->n * sizeof(*ta->anchors));
	if (ta == NULL) {
		snprintf(err, errlen, "%s: out of memory", pem_path);
		goto done;
	}
	ta->anchors = (br_x509_trust_anchor *)(void *)(ta + 1);
	ta->n = l->n;
	ta->skipped = l->skipped;
	ta->bytes = l->bytes.p;
	l->bytes.p = NULL;
	for (i = 0; i < l->n; i++) {
		const struct ta_off *o = &l->v[i];
		br_x509_trust_anchor *a = &ta->anchors[i];

		a->dn.data = ta->bytes + o->dn;
		a->dn.len = o->dn_len;
		a->flags = o->ca ? BR_X509_TA_CA : 0;
		a->pkey.key_type = o->key_type;
		if (o->key_type == BR_KEYTYPE_RSA) {
			a->pkey.key.rsa.n = ta->bytes + o->k1;
			a->pkey.key.rsa.nlen = o->k1_len;
			a->pkey.key.rsa.e = ta->bytes + o->k2;
			a->pkey.key.rsa.elen = o->k2_len;
		} else {
			a->pkey.key.ec.curve = o->curve;
			a->pkey.key.ec.q = ta->bytes + o->k1;
			a->pkey.key.ec.qlen = o->k1_len;
		}
	}
done:
	free(l->bytes.p);
	free(l->v);
	free(l);
	return ta;
}

size_t
tls_trust_count(const struct tls_trust *ta, size_t *skipped)
{
	if (skipped != NULL)
		*skipped = ta->skipped;
	return ta->n;
}

void
tls_trust_free(struct tls_trust *ta)
{
	if (ta == NULL)
		return;
	free(ta->bytes);
	free(ta);
}

/* ---- server credentials ---------------------------------------------------------- */

struct creds_load {
	br_skey_decoder_context kd;
	br_x509_decoder_context dc;
	struct arena certs;             /* DER certificates, back to back */
	size_t cert_off[CAP_TLS_CHAIN], cert_len[CAP_TLS_CHAIN], ncerts;
	int nkeys;
	int too_many;
};

static int
cert_block(void *arg, const char *name, const unsigned char *der,
    size_t len, const struct where *w, char *err, size_t errlen)
{
	struct creds_load *l = arg;

	(void)err;
	(void)errlen;
	(void)w;
	if (!is_certificate(name))
		return 0;
	if (l->ncerts == CAP_TLS_CHAIN) {
		l->too_many = 1;
		return 0;
	}
	l->cert_off[l->ncerts] = arena_put(&l->certs, der, len);
	l->cert_len[l->ncerts++] = len;
	return 0;
}

static int
key_block(void *arg, const char *name, const unsigned char *der,
    size_t len, const struct where *w, char *err, size_t errlen)
{
	struct creds_load *l = arg;
	int e;

	if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
		snprintf(err, errlen, "%s:%u: the private key is encrypted, "
		    "which is not supported (decrypt it: openssl pkey -in FILE "
		    "-out FILE, and keep it readable by this service only)",
		    w->path, w->line);
		return -1;
	}
	if (strcmp(name, "RSA PRIVATE KEY") != 0 &&
	    strcmp(name, "EC PRIVATE KEY") != 0 &&
	    strcmp(name, "PRIVATE KEY") != 0)
		return 0;
	if (l->nkeys++ > 0) {
		snprintf(err, errlen, "%s:%u: a second private key (one is "
		    "expected)", w->path, w->line);
		return -1;
	}
	br_skey_decoder_init(&l->kd);
	br_skey_decoder_push(&l->kd, der, len);
	e = br_skey_decoder_last_error(&l->kd);
	if (e != 0) {
		snprintf(err, errlen, "%s:%u: private key cannot be decoded "
		    "(%s; RSA or EC on P-256, P-384, P-521 expected)", w->path,
		    w->line, e == BR_ERR_X509_UNSUPPORTED ?
		    "unsupported algorithm or curve" : "malformed");
		return -1;
	}
	if (br_skey_decoder_key_type(&l->kd) == BR_KEYTYPE_EC) {
		int curve = br_skey_decoder_get_ec(&l->kd)->curve;

		if (curve != BR_EC_secp256r1 && curve != BR_EC_secp384r1 &&
		    curve != BR_EC_secp521r1) {
			snprintf(err, errlen, "%s:%u: private key on an unsupported "
			    "curve (P-256, P-384 or P-521 expected)", w->path,
			    w->line);
			return -1;
		}
	}
	return 0;
}

/* Strips leading zero bytes of a big-endian integer. */
static const unsigned char *
unpad(const unsigned char *p, size_t *len)
{
	while (*len > 0 && *p == 0)
		p++, (*len)--;
	return p;
}

/* Does the private key match the leaf's public key?  RSA: the modulus
 * recomputed from the primes; EC: the public point recomputed. */
static int
key_matches(const struct creds_load *l, const br_x509_pkey *pk)
{
	int type = br_skey_decoder_key_type(&l->kd);

	if (type != pk->key_type)
		return 0;
	if (type == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&l->kd);
		br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
		unsigned char n[4096 / 8];     /* BearSSL: RSA up to 4096 bits */
		const unsigned char *a, *b;
		size_t alen, blen = pk->key.rsa.nlen;

		alen = modulus(NULL, sk);
		if (alen == 0 || alen > sizeof(n) || modulus(n, sk) != alen)
			return 0;
		a = unpad(n, &alen);
		b = unpad(pk->key.rsa.n, &blen);
		/* The same modulus is the same key pair: p and q are its
		 * factors.  (BearSSL 0.6's compute_pubexp returns 0 for
		 * ordinary keys, so e is not compared.) */
		return alen == blen && memcmp(a, b, alen) == 0;
	} else {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(&l->kd);
		unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
		size_t qlen;

		if (sk->curve != pk->key.ec.curve)
			return 0;
		qlen = br_ec_compute_pub(br_ec_get_default(), NULL, q, sk);
		return qlen > 0 && qlen == pk->key.ec.qlen &&
		    memcmp(q, pk->key.ec.q, qlen) == 0;
	}
}

struct tls_server_creds *
tls_server_load(const char *cert_file, const char *key_file, char *err,
    size_t errlen)
{
	struct creds_load *l;
	struct tls_server_creds *cr = NULL;
	struct arena key = { 0 };
	const br_x509_pkey *pk;
	size_t i, off[5] = { 0 };
	int e;

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "%s: out of memory", cert_file);
		return NULL;
	}
	if (pem_each(cert_file, cert_block, l, err, errlen) < 0)
		goto done;
	if (l->certs.oom) {
		snprintf(err, errlen, "%s: out of memory", cert_file);
		goto done;
	}
	if (l->ncerts == 0) {
		snprintf(err, errlen, "%s: no certificate (a PEM file with "
		    "CERTIFICATE blocks, leaf first, is expected)", cert_file);
		goto done;
	}
	if (l->too_many) {
		snprintf(err, errlen, "%s: more than %d certificates in the "
		    "chain", cert_file, CAP_TLS_CHAIN);
		goto done;
	}
	if (pem_each(key_file, key_block, l, err, errlen) < 0)
		goto done;
	if (l->nkeys == 0) {
		snprintf(err, errlen, "%s: no private key (an RSA PRIVATE KEY, "
		    "EC PRIVATE KEY or PRIVATE KEY block is expected)", key_file);
		goto done;
	}

	/* The leaf: decodable, with the key's public half. */
	br_x509_decoder_init(&l->dc, NULL, NULL);
	br_x509_decoder_push(&l->dc, l->certs.p + l->cert_off[0], l->cert_len[0]);
	e = br_x509_decoder_last_error(&l->dc);
	if (e != 0) {
		snprintf(err, errlen, "%s: first certificate: %s", cert_file,
		    tls_error_text(e));
		goto done;
	}
	pk = br_x509_decoder_get_pkey(&l->dc);
	if (!key_matches(l, pk)) {
		snprintf(err, errlen, "%s: private key does not match the "
		    "(first) certificate in %s", key_file, cert_file);
		goto done;
	}

	/* Key material into its own arena, then one block for everything. */
	if (br_skey_decoder_key_type(&l->kd) == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&l->kd);

		off[0] = arena_put(&key, sk->p, sk->plen);
		off[1] = arena_put(&key, sk->q, sk->qlen);
		off[2] = arena_put(&key, sk->dp, sk->dplen);
		off[3] = arena_put(&key, sk->dq, sk->dqlen);
		off[4] = arena_put(&key, sk->iq, sk->iqlen);
	} else {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(&l->kd);

		off[0] = arena_put(&key, sk->x, sk->xlen);
	}
	cr = calloc(1, sizeof(*cr) + l->ncerts * sizeof(*cr->chain));
	if (key.oom || cr == NULL) {
		snprintf(err, errlen, "%s: out of memory", key_file);
		free(cr);
		cr = NULL;
		goto done;
	}
	cr->nbytes = l->certs.len + key.len;
	cr->bytes = malloc(cr->nbytes);
	if (cr->bytes == NULL) {
		snprintf(err, errlen, "%s: out of memory", key_file);
		free(cr);
		cr = NULL;
		goto done;
	}
	memcpy(cr->bytes, l->certs.p, l->certs.len);
	memcpy(cr->bytes + l->certs.len, key.p, key.len);
	cr->chain = (br_x509_certificate *)(void *)(cr + 1);
	cr->chain_len = l->ncerts;
	for (i = 0; i < l->ncerts; i++) {
		cr->chain[i].data = cr->bytes + l->cert_off[i];
		cr->chain[i].data_len = l->cert_len[i];
	}
	cr->key_type = br_skey_decoder_key_type(&l->kd);
	cr->issuer_key_type = (unsigned)br_x509_decoder_get_signer_key_type(&l->dc);
	if (cr->key_type == BR_KEYTYPE_RSA) {
		const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&l->kd);
		unsigned char *k = cr->bytes + l->certs.len;

		cr->rsa.n_bitlen = sk->n_bitlen;
		cr->rsa.p = k + off[0];
		cr->rsa.plen = sk->plen;
		cr->rsa.q = k + off[1];
		cr->rsa.qlen = sk->qlen;
		cr->rsa.dp = k + off[2];
		cr->rsa.dplen = sk->dplen;
		cr->rsa.dq = k + off[3];
		cr->rsa.dqlen = sk->dqlen;
		cr->rsa.iq = k + off[4];
		cr->rsa.iqlen = sk->iqlen;
	} else {
		const br_ec_private_key *sk = br_skey_decoder_get_ec(&l->kd);

		cr->ec.curve = sk->curve;
		cr->ec.x = cr->bytes + l->certs.len + off[0];
		cr->ec.xlen = sk->xlen;
	}
done:
	arena_wipe(&key);
	free(l->certs.p);
	explicit_bzero(l, sizeof(*l));
	free(l);
	return cr;
}

void
tls_server_free(struct tls_server_creds *creds)
{
	if (creds == NULL)
		return;
	explicit_bzero(creds->bytes, creds->nbytes);
	free(creds->bytes);
	free(creds);
}
