/*
 * tls.h — TLS 1.2 over BearSSL, as a transport behind struct io (io.h).
 *
 * Three parts:
 *
 *   credentials  trust anchors from a PEM bundle and a server's certificate
 *                chain and private key, each loaded once at start, then
 *                shared read-only by every thread;
 *   connections  tls_client_init() / tls_server_init() turn a connected,
 *                non-blocking socket into a struct io whose read, writev,
 *                flush and pending speak TLS; code above (relay, conn,
 *                upstream, httpc) keeps calling io_read() and
 *                io_writev_all() and never knows (DESIGN.md rule 6);
 *   errors       the BearSSL error code of a failed connection and a table
 *                of short texts for it ("certificate not trusted", ...).
 *
 * Protocol: TLS 1.2 only (BearSSL has no TLS 1.3), ECDHE key exchange only
 * (forward secrecy), AES-128/256-GCM and ChaCha20-Poly1305, RSA or ECDSA
 * certificates; curves P-256, P-384, P-521 and X25519.  No renegotiation,
 * no session resumption (the keep-alive cache keeps connections instead).
 *
 * Memory per connection (x86_64; one calloc in tls_*_init, freed by
 * tls_close; nothing on the caller's stack; tls_conn_bytes() gives the exact
 * figure on other machines):
 *
 *   client  23,768 bytes (23.2 KiB): br_ssl_client_context, X.509
 *           validation state and the half-duplex record buffer
 *           BR_SSL_BUFSIZE_MONO 16709 (HTTP/1.1 requests and responses
 *           alternate, see "Half duplex" below);
 *   server  37,344 bytes (36.5 KiB): br_ssl_server_context and the
 *           full-duplex buffer BR_SSL_BUFSIZE_BIDI 33178 (the relay reads
 *           a client while it streams to it).
 *
 * The stack a handshake needs is BearSSL's own, a few KiB (RSA-4096 private
 * key operations included): it fits CAP_THREAD_STACK (128 KiB).
 *
 * Randomness: each connection is seeded from getentropy(2) (getrandom: no
 * file descriptor, works in a chroot or a FROM-scratch container without
 * /dev and under musl), and BearSSL adds its own seeder (RDRAND on x86, else
 * /dev/urandom).  Only when both fail does the connection fail, with
 * BR_ERR_NO_RANDOM.
 */
#ifndef LLMPROXY_TLS_H
#define LLMPROXY_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* ---- credentials ----------------------------------------------------------- */

struct tls_trust;
struct tls_server_creds;

/*
 * Loads the trust anchors of a PEM bundle (e.g.
 * /etc/ssl/certs/ca-certificates.crt, ~150 certificates): every CERTIFICATE
 * (or X509 CERTIFICATE) block is decoded once and its subject DN and public
 * key (RSA or EC) kept; other PEM blocks are ignored.  A certificate that
 * is not a CA (no basicConstraints CA:TRUE) is trusted as itself only: a
 * server presenting exactly that certificate is accepted, which is how a
 * self-signed backend certificate is pinned.
 *
 * Certificates BearSSL cannot use (an unsupported key type such as Ed25519,
 * an RSA key over 4096 bits) are skipped and counted (tls_trust_count), so
 * one exotic CA in a system bundle does not stop the program; anything
 * malformed is an error.
 *
 * Returns the anchors, or NULL with err holding a message that names the
 * path and what is wrong ("PATH:LINE: malformed PEM", "PATH: no
 * certificate", "PATH: cannot open: ...").  Files over
 * CAP_TLS_PEM_FILE_BYTES are refused.
 */
struct tls_trust *tls_trust_load(const char *pem_path, char *err,
    size_t errlen);

/* Anchors loaded; *skipped (if not NULL) gets those skipped as unusable. */
size_t tls_trust_count(const struct tls_trust *ta, size_t *skipped);

/* Frees the anchors (NULL is fine).  No connection may still use them. */
void tls_trust_free(struct tls_trust *ta);

/*
 * Loads a server's credentials: cert_file holds the chain, leaf first, as
 * CERTIFICATE blocks (other blocks ignored, so a combined cert+key file
 * works); key_file one private key: RSA ("RSA PRIVATE KEY" or PKCS#8
 * "PRIVATE KEY") or EC on P-256/P-384/P-521 ("EC PRIVATE KEY", with or
 * without an "EC PARAMETERS" block, or PKCS#8).  The key is checked against
 * the leaf certificate's public key.  Encrypted keys are refused.
 *
 * Returns the credentials, or NULL with err naming the file (and line) and
 * the problem: no certificate, a certificate or key BearSSL cannot decode,
 * an encrypted key, two keys, the key not matching the certificate.
 */
struct tls_server_creds *tls_server_load(const char *cert_file,
    const char *key_file, char *err, size_t errlen);

/* Frees (and wipes) the credentials (NULL is fine). */
void tls_server_free(struct tls_server_creds *creds);

/* ---- connections -------------------------------------------------------------- */

/*
 * Makes io a TLS client over fd (connected, non-blocking, e.g. after
 * io_socket_setup).  Nothing is sent yet: the handshake runs inside the
 * first read, writev or tls_handshake.
 *
 * server_name is the host of the URL (an IPv6 literal with or without its
 * brackets; a trailing dot is dropped).  With verify != 0 the server's
 * chain must lead to one of ta's anchors, be within its validity dates
 * (time(2)), allow TLS server use, and match server_name:
 *   - a DNS name is sent as SNI and matched by BearSSL against the
 *     certificate's subjectAltName dNSName entries (a leading "*." wildcard
 *     label allowed) and its subject CN, case-insensitively;
 *   - an IP literal (IPv4 or IPv6) is not sent as SNI (RFC 6066 section 3)
 *     and must equal one of the leaf certificate's subjectAltName iPAddress
 *     entries (RFC 5280 section 4.2.1.6); a CN holding the address is not
 *     accepted.  BearSSL matches names only, so this check is ours
 *     (tls_ipsan below).
 * Revocation (CRL, OCSP) is not checked.
 *
 * verify == 0 (tls_verify = false, lab use) checks nothing: any certificate
 * (self-signed, expired, another name) is accepted; ta may be NULL.  SNI is
 * still sent for a DNS name.
 *
 * Returns 0, or -1 with errno: EINVAL (verify without anchors or without a
 * name, a name over 255 bytes), ENOMEM.  io is untouched on failure.  A
 * failure inside BearSSL's setup (no randomness) is reported by the first
 * operation, as any TLS error is.
 */
int tls_client_init(struct io *io, int fd, const char *server_name,
    const struct tls_trust *ta, int verify);

/*
 * Makes io a TLS server over fd (accepted, non-blocking) with creds, which
 * must outlive the connection.  The handshake runs inside the first read
 * (or tls_handshake).  Cipher suites follow the server's order: AES-GCM
 * first where the CPU has AES instructions, ChaCha20-Poly1305 first
 * elsewhere (routers).  Returns 0, or -1 with errno ENOMEM.
 */
int tls_server_init(struct io *io, int fd,
    const struct tls_server_creds *creds);

/*
 * The io operations, for the record (io.h describes the contract):
 *
 *   read     decrypted bytes the engine holds; otherwise moves ciphertext
 *            (a non-blocking recv into the record buffer, a non-blocking send
 *            of anything the engine must send: handshake, alerts) until some
 *            arrive.  Anything written but not flushed is flushed first (the
 *            peer cannot answer what it has not received).  -1 with EAGAIN
 *            and io->want = POLLIN or POLLOUT when the socket would block
 *            (POLLOUT happens during a handshake).  0 at the end: the peer
 *            sent close_notify (tls_last_error() is then 0), or closed TCP
 *            without it after the handshake (tls_last_error() is then
 *            TLS_ERR_NO_CLOSE_NOTIFY: many servers do this, and HTTP framing,
 *            not TLS, tells whether a body was complete).  -1 with EPROTO on
 *            a TLS error (tls_last_error() says which); -1 with the socket's
 *            errno (ECONNRESET, EPIPE, ...) on a socket error, for this and
 *            every later call.
 *   writev   copies into the engine's record buffer as far as it goes and
 *            sends each full record without waiting; a partial record waits
 *            for flush (so a head, a chunk size and an event written with one
 *            io_writev_all leave as one record).  Returns bytes taken (> 0),
 *            or -1: EAGAIN (io->want set) before any byte was taken, EPIPE
 *            after close_notify, EPROTO, a socket errno, or EDEADLK on a
 *            client when the peer's data must be read before more can be
 *            written (half duplex, below).
 *   flush    seals the partial record and sends every pending record,
 *            waiting for POLLOUT at most stall_ms per stall.  0, or -1 with
 *            ETIMEDOUT, EPIPE, EPROTO or a socket errno.  io_writev_all calls
 *            it last, so every io_writev_all reaches the peer as records it
 *            can decrypt at once: "flush after every event".
 *   pending  decrypted bytes already in the engine (the rest of the current
 *            record): a caller reads them without polling the socket.
 *
 * Half duplex (client only): the client's single record buffer holds either
 * an incoming or an outgoing record.  A read flushes pending output first,
 * so alternating requests and responses never notice.  Writing while the
 * server's unread data sits in the buffer is impossible: writev fails with
 * EDEADLK (never EAGAIN, which would spin); read the response first.
 */

/*
 * Completes the handshake now (so a client can report a bad certificate
 * before sending a byte of its request), waiting until deadline_ms
 * (io_now_ms() clock, < 0 for none).  Returns 0 (also when the handshake
 * was already done, or for a plain io), or -1 with errno: EPROTO
 * (tls_last_error() says why: BR_ERR_X509_NOT_TRUSTED, ...), ETIMEDOUT, a
 * socket errno.
 */
int tls_handshake(struct io *io, int64_t deadline_ms);

/*
 * Sends close_notify if the socket takes it now (never waits) and frees the
 * connection's allocation, wiping its keys.  The fd stays open: it is the
 * caller's.  io->ops becomes NULL.  Does nothing for a plain io, so callers
 * may call it on every io they close.
 */
void tls_close(struct io *io);

/* Bytes one connection allocates (server != 0: a server connection). */
size_t tls_conn_bytes(int server);

/* ---- errors -------------------------------------------------------------------- */

/* Codes of this layer, outside BearSSL's ranges (0..63 engine and X.509,
 * 256 + alert received, 512 + alert sent). */
#define TLS_ERR_HANDSHAKE_EOF   1024  /* peer closed during the handshake */
#define TLS_ERR_NO_CLOSE_NOTIFY 1025  /* peer closed TCP without close_notify */

/*
 * The error of a TLS io: BearSSL's code (BR_ERR_* from bearssl_ssl.h,
 * BR_ERR_X509_* from bearssl_x509.h, BR_ERR_RECV_FATAL_ALERT + alert,
 * BR_ERR_SEND_FATAL_ALERT + alert), BR_ERR_IO (31) after a socket error, or
 * TLS_ERR_*.  0 while there is none, and for a plain io.
 */
int tls_last_error(const struct io *io);

/* Short text for a code of tls_last_error(): "certificate not trusted",
 * "certificate does not match the host name", "certificate expired or not
 * yet valid", "peer sent alert: handshake failure", ...  Never NULL. */
const char *tls_error_text(int code);

/* ---- the IP address check (used by tls_client_init) ------------------------ */

/*
 * Does a DER certificate list ip among its subjectAltName iPAddress entries?
 * A streaming decoder (DESIGN.md rule 2): BearSSL hands the certificate over
 * in pieces during the handshake, so the bytes are fed as they come and
 * never kept.  It follows Certificate > tbsCertificate > [3] extensions >
 * Extension with id 2.5.29.17 > GeneralNames > [7] and looks at nothing
 * else; nesting is bounded (TLS_IPSAN_DEPTH).  Malformed DER ends in "no
 * match" (BearSSL's own decoder rejects the certificate anyway).
 */
#define TLS_IPSAN_DEPTH 8

struct tls_ipsan {
	unsigned char ip[16];
	unsigned char iplen;            /* 4 or 16 */
	unsigned char state;
	unsigned char tag;
	unsigned char lenbytes;         /* long-form length bytes still due */
	unsigned char depth;            /* constructed elements open */
	unsigned char tbs_seen;
	unsigned char is_san;           /* inside the subjectAltName extension */
	unsigned char matched;
	unsigned char bad;
	unsigned char cap[16];          /* OID or address being read */
	uint32_t caplen;
	uint32_t len;                   /* length of the element being read */
	uint32_t left;                  /* content bytes still to skip or read */
	uint32_t off;                   /* bytes consumed */
	uint32_t end[TLS_IPSAN_DEPTH];  /* where each open element ends */
};

/* Starts a check for ip (iplen 4 or 16 bytes, network order). */
void tls_ipsan_init(struct tls_ipsan *s, const unsigned char *ip,
    size_t iplen);
/* Feeds the next len bytes of the certificate. */
void tls_ipsan_push(struct tls_ipsan *s, const void *data, size_t len);
/* 1 when an iPAddress entry equal to ip has been seen, else 0. */
int tls_ipsan_matched(const struct tls_ipsan *s);

#endif
