# llmproxy — see README.md.  Honours CC, CFLAGS, CPPFLAGS, LDFLAGS, PREFIX,
# DESTDIR.  `make WERROR=1` turns warnings into errors (CI does).

VERSION   = 0.1.0
PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
B        ?= build

WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wundef -Wvla -Wcast-qual
ifeq ($(WERROR),1)
WARN     += -Werror
endif
ifneq ($(SANITIZE),)
override CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

ALL_CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
               -DLLMPROXY_VERSION=\"$(VERSION)\" -Isrc $(CPPFLAGS)
ALL_CFLAGS   = -std=c11 $(WARN) -pthread $(CFLAGS)
LIBS         = -linih -lbearssl -pthread

# The program, module by module (DESIGN.md has the map).
SRC = main config log pool conn http io upstream relay sse json balancer reply \
      usage webhook spool httpc health metrics auth ratelimit server tls tlsconf
OBJ = $(SRC:%=$(B)/src/%.o)

# Check suites, one per pure module, and what each links.
UNIT          = http sse json config usage spool balancer httpc metrics log \
                auth ratelimit tls
UNIT_http     = http
UNIT_sse      = sse
UNIT_json     = json
UNIT_config   = config auth
UNIT_auth     = auth
UNIT_ratelimit = ratelimit
UNIT_usage    = usage json sse
UNIT_spool    = spool
UNIT_balancer = balancer io
UNIT_httpc    = httpc io upstream http health balancer json log tls tlsconf
UNIT_metrics  = metrics balancer webhook spool httpc io upstream http log json \
                ratelimit tls tlsconf
UNIT_log      = log json
UNIT_tls      = tls io
CHECK_LIBS    = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -pthread)

# End-to-end suites: the real binary over loopback against the mock backend.
E2E       = e2e_stream e2e_http e2e_smuggle e2e_lifecycle e2e_exhaust e2e_faults \
            e2e_cli e2e_usage e2e_balance e2e_metrics e2e_yaml e2e_auth e2e_tls
E2E_COMMON = tests/e2e/harness.o

.PHONY: all check unit e2e demo deps test-deps clean install node-deps node dashboard
all: llmproxy

# ---- dependencies --------------------------------------------------------------
# Debian packages the build and the tests need.  As root they are installed;
# otherwise the exact command is printed.
DEB_BUILD = libbearssl-dev libjsmn-dev libinih-dev check pkg-config
DEB_TEST  = curl prometheus python3 stunnel4 openssl
define install_debs
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
	    { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; } || exit 1; \
	  else \
	    echo "missing Debian packages; run:  sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi
endef
deps: $(B)/.deps
$(B)/.deps:
	$(call install_debs,$(DEB_BUILD))
	@mkdir -p $(B) && touch $@
test-deps: $(B)/.test-deps
$(B)/.test-deps:
	$(call install_debs,$(DEB_TEST))
	@mkdir -p $(B) && touch $@

# ---- the program --------------------------------------------------------------
llmproxy: $(B)/llmproxy
	cp $< $@

$(B)/llmproxy: $(OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(OBJ) $(LIBS)

$(B)/src/%.o: src/%.c $(wildcard src/*.h) | $(B)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# ---- tests ----------------------------------------------------------------------
.SECONDEXPANSION:
$(B)/tests/%.o: tests/%.c $(wildcard src/*.h tests/*.h tests/e2e/*.h) | $(B)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) -c -o $@ $<

$(B)/tests/check_%: $(B)/tests/check_%.o $$(addprefix $(B)/src/,$$(addsuffix .o,$$(UNIT_$$*)))
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

$(B)/tests/mock_upstream: $(B)/tests/mock_upstream.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -pthread

$(B)/tests/webhook_receiver: $(B)/tests/webhook_receiver.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -pthread

$(B)/tests/e2e/%: $(B)/tests/e2e/%.o $(B)/$(E2E_COMMON)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS)

# Test certificates, made with the openssl CLI (tests/tls/mkcerts.sh).
CERTS = $(B)/tests/certs
$(CERTS)/.done: tests/tls/mkcerts.sh
	rm -rf $(CERTS)
	sh tests/tls/mkcerts.sh $(CERTS)

unit: $(UNIT:%=$(B)/tests/check_%) $(B)/tests/mock_upstream $(B)/.test-deps $(CERTS)/.done
	@for t in $(UNIT:%=$(B)/tests/check_%); do echo "== $$t"; \
	  MOCK_BIN=$(B)/tests/mock_upstream TLS_CERTS=$(CERTS) $$t || exit 1; done

E2E_ENV = LLMPROXY_BIN=$(B)/llmproxy MOCK_BIN=$(B)/tests/mock_upstream \
          RECEIVER_BIN=$(B)/tests/webhook_receiver TLS_CERTS=$(CERTS)
e2e: $(B)/llmproxy $(B)/tests/mock_upstream $(B)/tests/webhook_receiver $(B)/.test-deps \
     $(CERTS)/.done $(E2E:%=$(B)/tests/e2e/%)
	@for t in $(E2E:%=$(B)/tests/e2e/%); do echo "== $$t"; $(E2E_ENV) $$t || exit 1; done

# The official openai npm package as a real client.
node-deps: tests/node/node_modules/.installed
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; \
	  else echo "missing Node.js; run:  sudo apt-get install nodejs npm" >&2; exit 1; fi; }
	cd tests/node && npm ci --no-audit --no-fund --silent
	@touch $@

node: $(B)/llmproxy $(B)/tests/mock_upstream node-deps
	$(E2E_ENV) node tests/node/openai_stream.mjs

# The Grafana dashboard: valid JSON, every PromQL expression accepted by
# promtool, every metric one the program exports.
dashboard: $(B)/.test-deps
	sh tests/check_dashboard.sh

check: unit e2e node dashboard yaml2ini-check install-check ipk-check dockerfile-check
	@echo "all tests passed"

# ---- demo: one streamed completion through the proxy, token by token ---------
demo: $(B)/llmproxy $(B)/tests/mock_upstream
	$(call install_debs,curl)
	@LLMPROXY_BIN=$(B)/llmproxy MOCK_BIN=$(B)/tests/mock_upstream sh tests/demo.sh

# ---- benchmarks ------------------------------------------------------------------
# `make bench`: llmproxy against a direct connection and nginx, on loopback,
# interleaved (tests/bench/run.sh says what and how); the table is printed and
# written to $(B)/bench-results.txt.  `make bench-smoke`: the same machinery in
# seconds with tiny counts; it fails when a request fails or something does
# not start, never on a timing.  The static build (dist/llmproxy-x86_64, from
# `make static`) is measured too when it exists.
DEB_BENCH = nginx
.PHONY: bench bench-smoke bench-deps
bench-deps: $(B)/.bench-deps
$(B)/.bench-deps:
	$(call install_debs,$(DEB_BENCH))
	@mkdir -p $(B) && touch $@

$(B)/tests/bench/loadgen: tests/bench/loadgen.c | $(B)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

# The TLS line (tests/bench/tls.sh): handshake cost and what TLS adds to
# TTFT, measured by a client on src/tls.c.
$(B)/tests/bench/tls_bench: tests/bench/tls_bench.c $(B)/src/tls.o $(B)/src/io.o | $(B)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ -lbearssl

BENCH_BINS = $(B)/llmproxy $(B)/tests/mock_upstream $(B)/tests/webhook_receiver \
             $(B)/tests/bench/loadgen $(B)/.bench-deps \
             $(B)/tests/bench/tls_bench $(CERTS)/.done
bench: $(BENCH_BINS)
	B=$(B) sh tests/bench/run.sh
	B=$(B) TLS_CERTS=$(CERTS) sh tests/bench/tls.sh
bench-smoke: $(BENCH_BINS)
	B=$(B) sh tests/bench/run.sh --smoke
	B=$(B) TLS_CERTS=$(CERTS) sh tests/bench/tls.sh --smoke --out $(B)/bench-tls-smoke.txt
# `make bench-profile`: instructions per request and per event under
# callgrind, and system calls per request under strace, for llmproxy and
# nginx: numbers that a loaded machine does not change (tests/bench/profile.sh).
DEB_PROFILE = valgrind strace
$(B)/.profile-deps:
	$(call install_debs,$(DEB_PROFILE))
	@mkdir -p $(B) && touch $@
.PHONY: bench-profile
bench-profile: $(BENCH_BINS) $(B)/.profile-deps
	B=$(B) sh tests/bench/profile.sh

# ---- config.yaml -> config.ini (yaml2ini.sh) -----------------------------------
# (section owned by the yaml2ini work)
# The binary reads INI only: `make config.ini` converts an LLMProxy
# config.yaml (CONFIG_YAML=FILE for another one; AWK=... picks the awk).
# Without a YAML an existing config.ini is left alone.  Written to a temp
# file first, so a YAML that does not convert leaves no half config.ini.
CONFIG_YAML ?= config.yaml
config.ini: yaml2ini.sh $(wildcard $(CONFIG_YAML))
	@[ -f "$(CONFIG_YAML)" ] || { echo "make config.ini: no $(CONFIG_YAML) to convert" \
	  "(set CONFIG_YAML=FILE, or start from config.ini.example)" >&2; exit 1; }
	sh yaml2ini.sh "$(CONFIG_YAML)" > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

# The converter's golden files, LLMProxy's fixtures through `llmproxy -t`,
# every sh and awk installed (YAML2INI_QUICK=1: the default ones only).
.PHONY: yaml2ini-check
yaml2ini-check: $(B)/llmproxy
	LLMPROXY_BIN=$(B)/llmproxy sh tests/yaml2ini/run.sh

# ---- static and cross builds -----------------------------------------------------
# (section owned by the static-build work)
#
# `make static [ARCH=x86_64|aarch64|armhf|mipsel]` -> dist/llmproxy-ARCH: musl,
# -static, stripped; the same sources built again, by a recursive make, into
# build-static-ARCH/ with that architecture's musl compiler.  Dependencies as
# DESIGN.md "Building" says:
#   inih     Debian's libinih.a of ARCH: it links under musl as it is;
#   BearSSL  Debian's source package (Debian's libbearssl.a needs glibc's
#            __memcpy_chk), fetched once into build-static-src/ by
#            port/cross/bearssl-source.sh, compiled per ARCH with its musl
#            compiler; -lbearssl always follows the objects, so it adds
#            nothing until the code calls BearSSL;
#   jsmn     a header.
# musl-gcc must not see /usr/include (glibc's headers there win), so the
# three headers are copied into build-static-ARCH/include.
# `make check-cross [ARCH=aarch64]` runs end-to-end suites against that
# binary under qemu-user; LLMPROXY_BIN is a wrapper script, so binfmt_misc is
# not needed.  The tests, the mock and the receiver stay native.
ARCH    ?= x86_64
XARCHES  = x86_64 aarch64 armhf mipsel
#             musl compiler            GNU triplet          Debian  qemu-user
XTC_x86_64  = musl-gcc                 x86_64-linux-gnu     amd64   -
XTC_aarch64 = aarch64-linux-musl-gcc   aarch64-linux-gnu    arm64   qemu-aarch64-static
XTC_armhf   = arm-linux-musleabihf-gcc arm-linux-gnueabihf  armhf   qemu-arm-static
XTC_mipsel  = mipsel-linux-musl-gcc    mipsel-linux-gnu     mipsel  qemu-mipsel-static
# 32-bit MIPS has no 64-bit atomic instructions: GCC's libatomic (it needs only
# pthread_mutex_* and mem* from the libc) supplies __atomic_*_8.
XLIBS_mipsel = -latomic
XTC      = $(or $(XTC_$(ARCH)),$(error ARCH=$(ARCH): not one of $(XARCHES)))
XCC      = $(word 1,$(XTC))
XTRIPLET = $(word 2,$(XTC))
XDEBARCH = $(word 3,$(XTC))
XQEMU    = $(filter-out -,$(word 4,$(XTC)))
SB       = build-static-$(ARCH)
XSRC     = build-static-src
# The foreign compiler and qemu only where ARCH is not this machine's.
XDEBS    = musl-tools dpkg-dev libjsmn-dev libinih-dev:$(XDEBARCH) \
           $(if $(XQEMU),gcc-$(XTRIPLET) musl-dev:$(XDEBARCH) qemu-user-static)
# -Os: x86_64 226 KiB, where -O2 gives 258 KiB; with BearSSL's client and
# server (TLS 1.2, ECDHE, AEAD only: tls.c) 354 KiB, without unwind tables
# (XNOUNWIND) 322 KiB; with API keys, limits and reload 350 KiB, and
# 342 KiB with -z noseparate-code (XLDFLAGS); the budget is 350 KiB.  -fno-pie: the
# static link is not PIE anyway.  (Objects do not track flags: after changing
# XOPT, rm -rf build-static-ARCH.)
XOPT    ?= -Os
# No unwind tables: nothing unwinds (no C++, no pthread_cancel), and
# .eh_frame was 30 KiB of the x86_64 binary once BearSSL came in.
XNOUNWIND = -fno-asynchronous-unwind-tables -fno-unwind-tables
XCFLAGS  = $(XOPT) -fno-pie -ffunction-sections -fdata-sections $(XNOUNWIND)
# -z noseparate-code: the headers, code, read-only data and data are not
# each padded to a page of their own in the file (up to 12 KiB of zeros).
XLDFLAGS = -static -no-pie -Wl,--gc-sections -Wl,-O1 -Wl,-z,noseparate-code \
           -L$(CURDIR)/$(SB)/lib
XBEARSSL_CFLAGS = -W -Wall -Os -fno-pie -ffunction-sections -fdata-sections $(XNOUNWIND)

.PHONY: static static-all static-build static-force check-cross check-cross-run
static: dist/llmproxy-$(ARCH)
static-all:
	@for a in $(XARCHES); do $(MAKE) --no-print-directory static ARCH=$$a || exit 1; done
# Always asks the inner make, which knows whether anything changed.
dist/llmproxy-%: static-force
	@$(MAKE) --no-print-directory static-build ARCH=$*

# The toolchain: a foreign ARCH needs its Debian architecture first.
$(SB)/.toolchain:
	@a=$(XDEBARCH); \
	if [ "$$a" != "$$(dpkg --print-architecture)" ] && \
	   ! dpkg --print-foreign-architectures | grep -qx "$$a"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "dpkg --add-architecture $$a"; dpkg --add-architecture "$$a"; \
	    apt-get update -q >/dev/null 2>&1 || echo "apt-get update reported errors (some index; the install tells whether it matters)"; \
	  else \
	    echo "Debian architecture $$a missing; run:  sudo dpkg --add-architecture $$a && sudo apt-get update" >&2; exit 1; \
	  fi; \
	fi
	$(call install_debs,$(XDEBS))
	@mkdir -p $(@D) && touch $@

$(XSRC)/bearssl/.unpacked: | $(SB)/.toolchain
	sh port/cross/bearssl-source.sh $(XSRC)

$(SB)/lib/libbearssl.a: $(XSRC)/bearssl/.unpacked
	@mkdir -p $(@D)
	@echo "BearSSL for $(ARCH): $(XCC) (log in $(SB)/bearssl.log)"
	@$(MAKE) -C $(XSRC)/bearssl lib BUILD=$(CURDIR)/$(SB)/bearssl CC=$(XCC) \
	  AR=$(XTRIPLET)-ar CFLAGS='$(XBEARSSL_CFLAGS)' >$(SB)/bearssl.log 2>&1 || \
	  { tail -n 30 $(SB)/bearssl.log >&2; exit 1; }
	cp $(SB)/bearssl/libbearssl.a $@

$(SB)/lib/libinih.a: | $(SB)/.toolchain
	@mkdir -p $(@D)
	cp /usr/lib/$(XTRIPLET)/libinih.a $@

# Laid out as Debian installs them: <ini.h>, <jsmn.h>, <bearssl.h>.
$(SB)/include/.copied: $(XSRC)/bearssl/.unpacked | $(SB)/.toolchain
	@mkdir -p $(@D)/bearssl
	cp /usr/include/ini.h /usr/include/jsmn.h $(@D)/
	cp $(XSRC)/bearssl/inc/*.h $(@D)/bearssl/
	cp $(XSRC)/bearssl/debian/bearssl.h $(@D)/
	@touch $@

# Run by the inner make (B=build-static-ARCH, CC= the musl compiler).
$(B)/llmproxy-static: $(OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(OBJ) $(LIBS) -lbearssl $(XLIBS_$(ARCH))

static-build: $(SB)/.toolchain $(SB)/lib/libbearssl.a $(SB)/lib/libinih.a $(SB)/include/.copied
	@$(MAKE) --no-print-directory B=$(SB) CC=$(XCC) CFLAGS='$(XCFLAGS)' \
	  CPPFLAGS='-isystem $(CURDIR)/$(SB)/include' LDFLAGS='$(XLDFLAGS)' SANITIZE= \
	  $(SB)/llmproxy-static
	@mkdir -p dist
	@$(XTRIPLET)-strip --strip-all -R .comment -o $(SB)/llmproxy-stripped $(SB)/llmproxy-static
	@if $(XTRIPLET)-readelf -lW $(SB)/llmproxy-stripped | grep -q INTERP; then \
	  echo "$(SB)/llmproxy-static is not statically linked" >&2; exit 1; fi
	@cmp -s $(SB)/llmproxy-stripped dist/llmproxy-$(ARCH) || \
	  { cp $(SB)/llmproxy-stripped dist/llmproxy-$(ARCH).tmp && \
	    mv dist/llmproxy-$(ARCH).tmp dist/llmproxy-$(ARCH); }
	@echo "dist/llmproxy-$(ARCH): $$(wc -c < dist/llmproxy-$(ARCH)) bytes, static, stripped"
	@$(XQEMU) dist/llmproxy-$(ARCH) -V >/dev/null && \
	  $(XQEMU) dist/llmproxy-$(ARCH) -t -c config.ini.example >/dev/null || \
	  { echo "dist/llmproxy-$(ARCH) -V / -t failed$(if $(XQEMU), under $(XQEMU))" >&2; exit 1; }

# check-cross: ARCH from the command line, else aarch64.
# Streaming, disconnects and timeouts; usage records; the command line;
# balancing and failover; TLS (BearSSL compiled for ARCH: its handshakes,
# records and certificate checks under emulation).  Not e2e_metrics:
# qemu-user's /proc/self/stat has 0 for rss.  And not e2e_cli on mipsel:
# qemu-mipsel (7.2) hands SO_ERROR the host's
# errno untranslated (111, not MIPS's ECONNREFUSED 146), so a refused
# --probe says "No error information" there.
XCHECK_E2E ?= e2e_stream e2e_http e2e_usage $(if $(filter mipsel,$(ARCH)),,e2e_cli) e2e_balance \
              e2e_tls
# The binary first, then the native tests: never two apt-get runs at once.
XCHECK_ARCH = $(if $(filter command line,$(origin ARCH)),$(ARCH),aarch64)
check-cross:
	@$(MAKE) --no-print-directory dist/llmproxy-$(XCHECK_ARCH) ARCH=$(XCHECK_ARCH)
	@$(MAKE) --no-print-directory check-cross-run ARCH=$(XCHECK_ARCH)

# (Internal: check-cross has built dist/llmproxy-ARCH first.)
check-cross-run: $(B)/tests/mock_upstream $(B)/tests/webhook_receiver $(B)/.test-deps \
                 $(CERTS)/.done $(XCHECK_E2E:%=$(B)/tests/e2e/%)
	@printf '#!/bin/sh\n# dist/llmproxy-$(ARCH) for the e2e suites (no binfmt_misc needed)\nexec %s"%s" "$$@"\n' \
	  '$(if $(XQEMU),$(XQEMU) )' '$(CURDIR)/dist/llmproxy-$(ARCH)' > $(SB)/llmproxy-run
	@chmod +x $(SB)/llmproxy-run
	@for t in $(XCHECK_E2E:%=$(B)/tests/e2e/%); do \
	  echo "== $$t against dist/llmproxy-$(ARCH)$(if $(XQEMU), under $(XQEMU))"; \
	  LLMPROXY_BIN=$(CURDIR)/$(SB)/llmproxy-run MOCK_BIN=$(B)/tests/mock_upstream \
	  RECEIVER_BIN=$(B)/tests/webhook_receiver TLS_CERTS=$(CERTS) $$t || exit 1; done

# ---- packages: install, ipk, container ------------------------------------------
# (section owned by the packaging work)
#
# `make install [DESTDIR=/staging] [PREFIX=/usr/local]`: the program in
# $(PREFIX)/sbin, the systemd unit in $(SYSTEMDUNITDIR) with its paths made to
# match, and $(SYSCONFDIR)/llmproxy/config.ini from config.ini.example only
# when there is none (an edited configuration is never replaced).  Nothing is
# started: `systemctl daemon-reload && systemctl enable --now llmproxy`.
# It installs ./llmproxy, the development build (it needs libinih at run
# time); a host without it takes dist/llmproxy-ARCH (README, "Install").
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
.PHONY: uninstall install-check ipk ipk-check ipk-check-one dockerfile-check
install: llmproxy
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/llmproxy
	install -m 755 llmproxy $(DESTDIR)$(PREFIX)/sbin/llmproxy
	sed -e 's|/usr/local/sbin/llmproxy|$(PREFIX)/sbin/llmproxy|g' \
	    -e 's|/etc/llmproxy/|$(SYSCONFDIR)/llmproxy/|g' \
	    port/systemd/llmproxy.service > $(DESTDIR)$(SYSTEMDUNITDIR)/llmproxy.service.tmp
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/llmproxy.service.tmp
	mv $(DESTDIR)$(SYSTEMDUNITDIR)/llmproxy.service.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/llmproxy.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/llmproxy/config.ini ]; then \
	  echo "$(DESTDIR)$(SYSCONFDIR)/llmproxy/config.ini exists: kept"; \
	else \
	  echo "install -m 644 config.ini.example $(DESTDIR)$(SYSCONFDIR)/llmproxy/config.ini"; \
	  install -m 644 config.ini.example $(DESTDIR)$(SYSCONFDIR)/llmproxy/config.ini; \
	fi

# The configuration stays (remove $(SYSCONFDIR)/llmproxy by hand).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/llmproxy $(DESTDIR)$(SYSTEMDUNITDIR)/llmproxy.service

# The file list, modes, a second install keeping an edited config, uninstall;
# the unit through systemd-analyze (verify, security) and the program's
# system calls (strace) against the unit's SystemCallFilter.
install-check: llmproxy $(B)/tests/mock_upstream $(B)/.test-deps
	$(call install_debs,strace file)
	sh tests/check_install.sh
	sh tests/check_systemd.sh $(B)/llmproxy $(B)/tests/mock_upstream

# `make ipk ARCH=aarch64` -> dist/llmproxy_VERSION-RELEASE_IPKARCH.ipk: an
# OpenWrt package made without the SDK around dist/llmproxy-ARCH (static, so
# no Depends).  The OpenWrt architecture is what `opkg print-architecture`
# says on the router; a static binary runs on every CPU of its ISA, so pick
# the one your router has with IPK_ARCH=... (aarch64_generic,
# aarch64_cortex-a72, ...).  mipsel has no default: Debian's mipsel is
# hard-float, OpenWrt's mipsel_24kc soft-float (it runs only where the kernel
# emulates the FPU).  IPK_CONFIG: the config.ini (or a config.yaml,
# converted) it installs.  port/openwrt/Makefile is the same package for an
# OpenWrt feed.
IPK_ARCH_x86_64  = x86_64
IPK_ARCH_aarch64 = aarch64_cortex-a53
IPK_ARCH_armhf   = arm_cortex-a7_neon-vfpv4
IPK_ARCH        ?= $(IPK_ARCH_$(ARCH))
IPK_CONFIG      ?= port/openwrt/files/config.ini
IPK_RELEASE      = $(shell sed -n 's/^PKG_RELEASE:=//p' port/openwrt/Makefile)
IPK              = dist/llmproxy_$(VERSION)-$(IPK_RELEASE)_$(IPK_ARCH).ipk
ipk: dist/llmproxy-$(ARCH)
	@[ -n "$(IPK_ARCH)" ] || { echo "ARCH=$(ARCH): no default OpenWrt architecture; give IPK_ARCH=... (see the Makefile)" >&2; exit 1; }
	@sh port/openwrt/mkipk.sh dist/llmproxy-$(ARCH) $(IPK_ARCH) $(VERSION) $(IPK_CONFIG) dist

# Unpacks each package and checks every member (tests/check_ipk.sh), then
# builds the feed package with a stand-in for the OpenWrt SDK
# (tests/check_openwrt_feed.sh).  ARCH=... checks that one only.
IPK_CHECK_ARCHES ?= $(if $(filter command line,$(origin ARCH)),$(ARCH),x86_64 aarch64)
ipk-check: $(B)/llmproxy $(B)/.test-deps
	$(call install_debs,file)
	@for a in $(IPK_CHECK_ARCHES); do \
	  $(MAKE) --no-print-directory ipk-check-one ARCH=$$a || exit 1; done
	sh tests/check_openwrt_feed.sh
ipk-check-one: ipk
	sh tests/check_ipk.sh $(IPK) $(ARCH) dist/llmproxy-$(ARCH) $(B)/llmproxy

# The Dockerfile, statically, and the image it makes, simulated: its
# filesystem assembled by the same port/container/rootfs.sh from this
# machine's static binary, run in a chroot as its USER with an empty
# environment, in a network namespace of its own, probed by its own
# HEALTHCHECK line; the arm64 image's filesystem too when
# dist/llmproxy-aarch64 exists.  The run needs root (chroot, unshare).
DOCKER_ARCH ?= $(shell uname -m)
dockerfile-check: dist/llmproxy-$(DOCKER_ARCH) $(B)/.test-deps
	$(call install_debs,file)
	sh tests/check_dockerfile.sh dist/llmproxy-$(DOCKER_ARCH) $(wildcard dist/llmproxy-aarch64)

clean:
	rm -rf $(B) build-* llmproxy dist
