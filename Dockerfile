# llmproxy as a container image: the static musl build of `make static`, then
# an image built from scratch holding the binary, its configuration, a CA
# bundle and nothing else.  port/container/rootfs.sh assembles that
# filesystem; tests/check_dockerfile.sh (`make dockerfile-check`) checks this
# file and runs the same filesystem, made from CI's binary, in a chroot.
#
#   docker build -t llmproxy .
#   docker build --build-arg CONFIG=config.yaml -t llmproxy .    # converted here
#   docker run -p 8080:8080 llmproxy
#   docker run -v "$PWD/config.ini:/etc/llmproxy/config.ini:ro" -p 8080:8080 llmproxy
#
# CONFIG is a path in the build context: a config.yaml (LLMProxy's format,
# converted by yaml2ini.sh) or a config.ini; it must listen on :8080, the port
# EXPOSEd and probed by HEALTHCHECK.
#
# The build stage is always linux/amd64 and cross-compiles for the image's
# platform, as CI builds and tests both (`make static ARCH=x86_64`, and
# `ARCH=aarch64` under qemu): `docker buildx build --platform
# linux/amd64,linux/arm64` works, and on an arm64 host the build stage runs
# emulated.

FROM --platform=linux/amd64 debian:12 AS build
# What `make static` cannot install for itself: make, and the CA bundle.
RUN apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      make ca-certificates
WORKDIR /src
COPY . .
# The image's platform (BuildKit sets TARGETARCH): amd64 or arm64.
ARG TARGETARCH=amd64
RUN case "$TARGETARCH" in \
      amd64) echo x86_64 ;; \
      arm64) echo aarch64 ;; \
      *) echo "TARGETARCH=$TARGETARCH: llmproxy images are amd64 or arm64" >&2; exit 1 ;; \
    esac > /arch && \
    make static ARCH="$(cat /arch)"
ARG CONFIG=config.ini.example
RUN a=$(cat /arch) && \
    if [ "$a" != x86_64 ]; then export LLMPROXY_RUN="qemu-$a-static"; fi && \
    sh port/container/rootfs.sh /rootfs "$CONFIG" "dist/llmproxy-$a"

FROM scratch
COPY --from=build /rootfs/ /
# The spool directory belongs to the user the program runs as.
COPY --from=build --chown=65534:65534 /rootfs/var/lib/llmproxy/ /var/lib/llmproxy/
LABEL org.opencontainers.image.title="llmproxy" \
      org.opencontainers.image.description="Gateway for LLM traffic (OpenAI API)" \
      org.opencontainers.image.licenses="MIT"
# nobody:nogroup, by number: there is no /etc/passwd.
USER 65534:65534
EXPOSE 8080
# SIGTERM: no new connections, requests in flight get [server]
# shutdown_timeout (30s by default): give `docker stop` a longer -t.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/llmproxy", "--probe", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/llmproxy", "-c", "/etc/llmproxy/config.ini"]
