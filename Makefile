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
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

ALL_CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
               -DLLMPROXY_VERSION=\"$(VERSION)\" -Isrc $(CPPFLAGS)
ALL_CFLAGS   = -std=c11 $(WARN) -pthread $(CFLAGS)
LIBS         = -linih -pthread

# The program, module by module (DESIGN.md has the map).
SRC = main config log pool conn http io upstream relay sse json balancer reply \
      usage webhook spool httpc health metrics
OBJ = $(SRC:%=$(B)/src/%.o)

# Check suites, one per pure module, and what each links.
UNIT          = http sse json config usage spool balancer httpc metrics log
UNIT_http     = http
UNIT_sse      = sse
UNIT_json     = json
UNIT_config   = config
UNIT_usage    = usage json sse
UNIT_spool    = spool
UNIT_balancer = balancer
UNIT_httpc    = httpc io upstream http health balancer json log
UNIT_metrics  = metrics balancer webhook spool httpc io upstream http log json
UNIT_log      = log json
CHECK_LIBS    = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -pthread)

# End-to-end suites: the real binary over loopback against the mock backend.
E2E       = e2e_stream e2e_http e2e_cli e2e_usage e2e_balance e2e_metrics
E2E_COMMON = tests/e2e/harness.o

.PHONY: all check unit e2e demo deps test-deps clean install node-deps node dashboard
all: llmproxy

# ---- dependencies --------------------------------------------------------------
# Debian packages the build and the tests need.  As root they are installed;
# otherwise the exact command is printed.
DEB_BUILD = libbearssl-dev libjsmn-dev libinih-dev check pkg-config
DEB_TEST  = curl prometheus python3
define install_debs
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; } || exit 1; \
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

unit: $(UNIT:%=$(B)/tests/check_%) $(B)/tests/mock_upstream $(B)/.test-deps
	@for t in $(UNIT:%=$(B)/tests/check_%); do echo "== $$t"; \
	  MOCK_BIN=$(B)/tests/mock_upstream $$t || exit 1; done

E2E_ENV = LLMPROXY_BIN=$(B)/llmproxy MOCK_BIN=$(B)/tests/mock_upstream \
          RECEIVER_BIN=$(B)/tests/webhook_receiver
e2e: $(B)/llmproxy $(B)/tests/mock_upstream $(B)/tests/webhook_receiver $(B)/.test-deps \
     $(E2E:%=$(B)/tests/e2e/%)
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

check: unit e2e node dashboard
	@echo "all tests passed"

# ---- demo: one streamed completion through the proxy, token by token ---------
demo: $(B)/llmproxy $(B)/tests/mock_upstream
	$(call install_debs,curl)
	@LLMPROXY_BIN=$(B)/llmproxy MOCK_BIN=$(B)/tests/mock_upstream sh tests/demo.sh

# ---- config.yaml -> config.ini (yaml2ini.sh) -----------------------------------
# (section owned by the yaml2ini work)

# ---- static and cross builds -----------------------------------------------------
# (section owned by the static-build work)

# ---- packages: install, ipk, container ------------------------------------------
# (section owned by the packaging work)
install: llmproxy
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/llmproxy
	install -m 755 llmproxy $(DESTDIR)$(PREFIX)/bin/llmproxy
	[ -e $(DESTDIR)/etc/llmproxy/config.ini ] || install -m 644 config.ini.example $(DESTDIR)/etc/llmproxy/config.ini

clean:
	rm -rf $(B) build-* llmproxy
