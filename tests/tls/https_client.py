#!/usr/bin/env python3
"""https_client.py -- an independent TLS client (Python's ssl, i.e. OpenSSL)
for e2e_tls: it sends one request to llmproxy's TLS listener and reports
every read it made, so the C test can assert that each SSE event arrived in
a read of its own and without delay.

    https_client.py PORT CAFILE REQUEST_FILE [abort_after_events]

The certificate is verified against CAFILE for the name "localhost".
Output, one line each:
    STATUS <code>
    READ <t_us> <bytes> <events> <stamp> <first_stamp>   per recv() after
                                                          the head:
        t_us   CLOCK_MONOTONIC microseconds when it returned (the clock of
               the mock's "t_us" stamps and of the C harness)
        events blank-line-terminated events completed in this read
        stamp  the largest "t_us" stamp in it, or -1 (first_stamp: the
               smallest)
    CLOSED <t_ms>      with abort_after_events: when the socket was closed
    END <body_bytes>   the server ended the response (or the connection)
"""
import re
import socket
import ssl
import sys
import time

STAMP = re.compile(rb'"t_us":(\d+)')


def now_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def main():
    port, cafile, reqfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    abort_after = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    with open(reqfile, "rb") as f:
        request = f.read()
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            print("STATUS 0")
            return 1
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    print("STATUS", head.split(b" ")[1].decode())
    body = rest
    events = 0
    tail = b""
    while True:
        if rest:
            d, rest = rest, b""
        else:
            d = s.recv(65536)
        t = now_us()
        if not d:
            break
        body += d
        scan = tail + d
        n = scan.count(b"\n\n")
        tail = scan[-1:]
        stamps = [int(m) for m in STAMP.findall(d)]
        print("READ", t, len(d), n, max(stamps) if stamps else -1,
              min(stamps) if stamps else -1)
        events += n
        if abort_after and events >= abort_after:
            s.close()
            print("CLOSED", time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000000)
            return 0
        if body.endswith(b"0\r\n\r\n"):
            break
    print("END", len(body))
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
