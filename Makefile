# ngx_pred_module: build, test and demo.
#
#   make test   install what is missing (Debian, as root), build, run every
#               test, then all of them again under ASan and UBSan
#   make test-valgrind, make fuzz, make fleet-test   the slower checks
#   make test-nginx NGINX_VERSION=1.29.8   the suite against nginx built
#               from ../shared/nginx; make test-nginx-all: every version
#               there and Debian's
#   make demo   build and run the demo on 127.0.0.1:8080

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       := build
NGX_BUILD   := $(BUILD)/nginx
MODULE      := $(NGX_BUILD)/objs/ngx_http_pred_module.so
MODULE_SRCS := config $(wildcard ngx_pred_module/*.[ch] snapshot/*.[ch])

CC          ?= gcc
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror -std=gnu99

DEB_PKGS    := build-essential nginx nginx-dev libnginx-mod-http-echo \
               libnginx-mod-http-perl \
               liblmdb-dev lmdb-utils libjansson-dev zlib1g-dev \
               libcurl4-openssl-dev iproute2 systemd \
               debhelper dpkg-dev lintian \
               libcmocka-dev libtest-base-perl libtext-diff-perl \
               libtest-longstring-perl liblist-moreutils-perl libipc-run-perl \
               libwww-perl liburi-perl \
               python3 python3-sklearn python3-numpy prometheus curl wrk \
               libnginx-mod-http-lua redis-server gnuplot-nox valgrind \
               libperl-dev libpcre2-dev dpkg-dev debian-archive-keyring
FUZZ_PKGS   := clang libclang-rt-14-dev
# what make deb needs: the packages' Build-Depends and Debian's tools
DEB_BUILD_PKGS := build-essential dpkg-dev debhelper lintian nginx-dev git \
                  liblmdb-dev libjansson-dev libcurl4-openssl-dev zlib1g-dev

LOADER      := $(BUILD)/pred-snapshot
LOADER_SRCS := $(wildcard loader/*.c snapshot/*.c)
LIBS        := -llmdb -ljansson -lz -lcurl
PREFIX      ?= /usr/local

UNIT_TESTS  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))

# the plain-C parts that tests link: snapshot/, the loader's parser and its
# buffer, and for the unit tests the build's external sort (no LMDB writer)
PLAIN_SRCS  := $(wildcard snapshot/*.c) loader/buf.c loader/jsonl.c
PLAIN_DEPS  := $(wildcard snapshot/*.[ch] loader/buf.[ch] loader/jsonl.[ch])
UNIT_SRCS   := $(PLAIN_SRCS) loader/sort.c

# fuzz targets: libFuzzer builds for make fuzz, plain replays for make unit
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY  := $(FUZZ_TARGETS:%=$(BUILD)/tests/replay_%)
FUZZ_SRCS    := $(PLAIN_SRCS)
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined

export TEST_NGINX_BINARY       ?= $(NGINX)
export TEST_NGINX_LOAD_MODULES ?= $(CURDIR)/$(MODULE)
export PRED_SNAPSHOT           ?= $(CURDIR)/$(LOADER)

.PHONY: all deps deps-deb module loader unit test prove bench bench-smoke demo \
        install clean test-valgrind test-asan test-real-tn fuzz fleet-test \
        deb nginx-verify nginx-build test-nginx test-nginx-all unit-bins \
        asan-module

all: module loader

# Installs only what is missing, so a second run costs one dpkg-query.
deps: PKGS = $(DEB_PKGS)
deps-deb: PKGS = $(DEB_BUILD_PKGS)
deps deps-deb:
	@missing=$$(for p in $(PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make: missing Debian packages: $$missing" >&2; \
	        echo "make: run as root, or apt-get install them" >&2; exit 1; \
	    fi; \
	    echo "installing: $$missing"; \
	    apt-get update -qq || { echo "make: apt-get update failed" >&2; exit 1; }; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
	        >$(CURDIR)/apt.log 2>&1 || { tail -20 apt.log >&2; \
	        echo "make: apt-get install failed (see apt.log)" >&2; exit 1; }; \
	fi

module: $(MODULE)

# Out of tree: a copy of Debian's nginx sources, configured with the flags
# Debian built /usr/sbin/nginx with, so the module's signature matches it.
$(NGX_BUILD)/objs/Makefile: config
	@test -f $(NGX_SRC)/conf_flags || { \
	    echo "make: $(NGX_SRC)/conf_flags not found: install nginx-dev" >&2; \
	    exit 1; }
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -r $(NGX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --add-dynamic-module=$(CURDIR) \
	        >configure.log 2>&1 || { tail -30 configure.log >&2; \
	        echo "make: nginx configure failed" >&2; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS)
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@printf 'load_module %s;\nevents {}\npid /dev/null;\nerror_log stderr;\n' \
	    $(CURDIR)/$(MODULE) > $(BUILD)/load-check.conf
	$(NGINX) -t -q -p $(CURDIR)/$(BUILD) \
	    -c $(CURDIR)/$(BUILD)/load-check.conf

loader: $(LOADER)

$(LOADER): $(LOADER_SRCS) $(wildcard loader/*.h snapshot/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isnapshot -Iloader $(LDFLAGS) -o $@ \
	    $(LOADER_SRCS) $(LIBS)

# unit tests link UNIT_SRCS, fuzz replays FUZZ_SRCS: no LMDB writer in either
$(BUILD)/tests/%: tests/%.c $(PLAIN_DEPS) loader/sort.c loader/sort.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isnapshot -Iloader -o $@ $< \
	    $(UNIT_SRCS) -lcmocka $(LIBS)

$(BUILD)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(PLAIN_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isnapshot -Iloader -o $@ $< tests/fuzz/replay.c \
	    $(FUZZ_SRCS) $(LIBS)

# the binaries alone, for make -j
unit-bins: $(UNIT_TESTS) $(FUZZ_REPLAY)

unit: unit-bins
	@for t in $(UNIT_TESTS); do echo "# $$t"; $$t; done
	@for t in $(FUZZ_TARGETS); do \
	    $(BUILD)/tests/replay_$$t tests/fuzz/corpus/$$t/* \
	        $$(ls -d tests/fuzz/regressions/$$t/* 2>/dev/null) \
	        2>$(BUILD)/tests/replay_$$t.log \
	    || { tail -5 $(BUILD)/tests/replay_$$t.log >&2; exit 1; }; done

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(PLAIN_DEPS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -Isnapshot -Iloader -o $@ $< $(FUZZ_SRCS) $(LIBS)

# Each target for FUZZ_SECONDS from its seeds and past crashes; the corpus it
# grows stays in build/.  A crash stops here with the input's path: fix it,
# then keep the input in tests/fuzz/regressions/TARGET/.
fuzz: deps
	$(MAKE) deps DEB_PKGS="$(FUZZ_PKGS)"
	$(MAKE) $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz/work-$$t; \
	    cp tests/fuzz/corpus/$$t/* $(BUILD)/fuzz/work-$$t/; \
	    cp tests/fuzz/regressions/$$t/* $(BUILD)/fuzz/work-$$t/ \
	        2>/dev/null || true; \
	    echo "# fuzz_$$t: $(FUZZ_SECONDS) s"; \
	    $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -max_len=32768 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/crash-$$t- $(BUILD)/fuzz/work-$$t \
	        > $(BUILD)/fuzz/$$t.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz/$$t.log >&2; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^Done' $(BUILD)/fuzz/$$t.log; \
	done

# prove uses the bundled Test::Nginx runner (t/lib), or an installed one;
# make test-real-tn runs the suite under OpenResty's from ../shared.  Not
# in make test: on this machine a daemonized nginx stays a zombie of init
# for a while after it exits, which the real runner, polling kill(pid, 0),
# can wait on forever when run detached (the bundled one treats a zombie
# as stopped).
REAL_TN     ?= /nonexistent
# what prove runs (files or folders), and its options (--timer)
PROVE_T     ?= t
PROVE_FLAGS ?=

PROVE = pkill -QUIT -f "[n]ginx.*-p $(CURDIR)/t/servroot" 2>/dev/null || true; \
	if [ -f $(REAL_TN)/Test/Nginx/Socket.pm ]; then \
	    echo "\# Test::Nginx: $(REAL_TN)"; \
	    prove $(PROVE_FLAGS) -I $(REAL_TN) -r $(PROVE_T); \
	elif perl -MTest::Nginx::Socket -e1 2>/dev/null; then \
	    echo "\# Test::Nginx: installed"; prove $(PROVE_FLAGS) -r $(PROVE_T); \
	else \
	    echo "\# Test::Nginx: bundled (t/lib)"; \
	    prove $(PROVE_FLAGS) -I t/lib -r $(PROVE_T); \
	fi

prove: module loader
	@$(PROVE)

# The whole suite with nginx under memcheck (the runner checks each block's
# reports; with the real Test::Nginx they go to stderr, checked here).
# t/ under OpenResty's Test::Nginx (../shared/test-nginx/lib)
test-real-tn: deps
	$(MAKE) module loader
	@$(MAKE) prove REAL_TN=$(abspath ../shared/test-nginx/lib)

test-valgrind: deps
	$(MAKE) module loader
	@export TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_TIMEOUT=20; $(PROVE) \
	    2> >(tee $(BUILD)/valgrind.stderr >&2)
	@! grep -E '^==[0-9]+== +(Invalid|Conditional|Use of uninit|Syscall|Mismatched)' \
	    $(BUILD)/valgrind.stderr

test: deps
	$(MAKE) module
	$(MAKE) -j$(NGX_JOBS) loader unit-bins
	$(MAKE) unit
	$(MAKE) prove
	$(MAKE) test-asan
	$(MAKE) bench-smoke

# The suite against the newest mainline nginx (NGINX_VERSION, the tree
# make test-nginx builds) with this module, the loader and the unit tests
# built with AddressSanitizer and UndefinedBehaviorSanitizer; so make test
# runs Debian's nginx (make prove) and mainline.  The module is compiled
# again with the sanitizers in a copy of that tree's configuration,
# build/asan/nginx-VERSION, and nginx runs with their runtime preloaded by
# a wrapper (nginx itself is not instrumented: its own reports, a memcpy()
# from NULL of 0 bytes and the ngx_module_names every module defines, are
# not ours).  Every report goes to a file, and any file fails the run.
# LeakSanitizer watches the loader and unit tests, not nginx, which leaves
# its cycle to the exiting process (make test-valgrind covers the module).
# The run leaves out what does not run the module or runs it again:
# Test::Nginx's and valgrind's self-checks, the loader's files (run after,
# with leak detection), the fleet (many nginx; t/042 runs pull), t/960
# (Debian's build flags).
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN        := $(BUILD)/asan
ASAN_RT      = $(shell $(CC) -print-file-name=libasan.so)
ASAN_NGX     = $(ASAN)/nginx-$(NGINX_VERSION)
ASAN_SKIP   := t/000-runner.t t/001-valgrind-check.t t/040-loader.t \
               t/041-loader-delta.t t/950-fleet.t t/960-deb.t
ASAN_T       = $(filter-out $(ASAN_SKIP),$(sort $(wildcard t/*.t)))
SAN_REPORTS := $(CURDIR)/$(ASAN)/reports
SAN_ENV      = ASAN_OPTIONS=log_path=$(SAN_REPORTS)/asan:detect_leaks=0 \
               UBSAN_OPTIONS=log_path=$(SAN_REPORTS)/ubsan:print_stacktrace=1

test-asan: PROVE_T = $(ASAN_T)
test-asan: deps
	$(MAKE) nginx-verify
	$(MAKE) nginx-build
	$(MAKE) asan-module
	$(MAKE) -j$(NGX_JOBS) BUILD=$(ASAN) CFLAGS="-O1 -g $(SAN_FLAGS)" \
	    loader unit-bins
	rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	$(MAKE) BUILD=$(ASAN) CFLAGS="-O1 -g $(SAN_FLAGS)" unit \
	    UBSAN_OPTIONS=log_path=$(SAN_REPORTS)/ubsan:print_stacktrace=1 \
	    ASAN_OPTIONS=log_path=$(SAN_REPORTS)/asan
	@echo "# test-asan: nginx $(NGINX_VERSION), the module from $(ASAN_NGX)"
	@export $(SAN_ENV) \
	    $(call ngx_v_env,$(ASAN_NGX)/nginx-asan,$(ASAN_NGX),$(NGX_V)) \
	    PRED_SNAPSHOT=$(CURDIR)/$(ASAN)/pred-snapshot; $(PROVE)
	@ASAN_OPTIONS=log_path=$(SAN_REPORTS)/asan \
	    UBSAN_OPTIONS=log_path=$(SAN_REPORTS)/ubsan:print_stacktrace=1 \
	    PRED_SNAPSHOT=$(CURDIR)/$(ASAN)/pred-snapshot \
	    prove t/040-loader.t t/041-loader-delta.t
	@if ls $(SAN_REPORTS)/* >/dev/null 2>&1; then \
	    head -50 $(SAN_REPORTS)/*; \
	    echo "test-asan: sanitizer reports in $(SAN_REPORTS)" >&2; exit 1; \
	fi
	@echo "# test-asan: no sanitizer reports"

# The version matrix: the module and the whole suite against nginx built from
# the release sources in NGX_ARCHIVES (make test-nginx NGINX_VERSION=1.29.8),
# every version with the same flags: what the tests use (HTTP/2, threads,
# the perl module), --with-debug as Debian's, and Debian's stderr error log
# so "nginx -t" reports alike.  Cached in build/nginx-VERSION: the unpacked
# tree, objs/nginx, and modules/ with the three modules the tests load.
NGINX_VERSION  ?= 1.29.8
NGINX_VERSIONS := 1.24.0 1.26.3 1.28.3 1.29.8
NGX_ARCHIVES   ?= $(abspath ../shared/nginx)
NGX_V          := $(BUILD)/nginx-$(NGINX_VERSION)
NGX_V_FLAGS    := --with-compat --with-http_v2_module --with-threads \
                  --with-debug --with-http_perl_module=dynamic \
                  --error-log-path=stderr $(NGX_V_EXTRA)
NGX_V_MODS     ?= ngx_http_pred_module ngx_http_echo_module \
                  ngx_http_perl_module
NGX_JOBS       ?= $(shell nproc)
NGX_V_TARGETS  ?= binary modules

# The echo module is third-party: its source is Debian's package of it,
# fetched by apt-get source from the mirror the system's apt uses, with a
# deb-src entry, lists and cache of its own under build/, so neither the
# system's sources nor its lists change.  apt checks the files against the
# signed index; dpkg-source unpacks them with Debian's patches.
ECHO_SRC       := $(BUILD)/echo-src
DEB_SRC        := $(BUILD)/deb-src
DEB_SUITE      ?= bookworm
DEB_MIRROR     ?= $(shell { sed -n 's/^URIs: *\([^ ]*\).*/\1/p' \
                      /etc/apt/sources.list.d/debian.sources; \
                      sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' \
                      /etc/apt/sources.list; } 2>/dev/null | head -1)
DEB_APT         = apt-get -q -o Dir::Etc::SourceList=/dev/null \
                  -o Dir::Etc::SourceParts=$(CURDIR)/$(DEB_SRC)/sources.d \
                  -o Dir::State::Lists=$(CURDIR)/$(DEB_SRC)/lists \
                  -o Dir::Cache=$(CURDIR)/$(DEB_SRC)/cache

$(ECHO_SRC)/config:
	@test -n "$(DEB_MIRROR)" || { echo "make: no Debian mirror in the" \
	    "system's apt sources: set DEB_MIRROR" >&2; exit 1; }
	rm -rf $(DEB_SRC) $(ECHO_SRC)
	mkdir -p $(DEB_SRC)/sources.d $(DEB_SRC)/lists/partial \
	    $(DEB_SRC)/cache/archives/partial
	printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n%s\n' \
	    $(DEB_MIRROR) $(DEB_SUITE) \
	    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
	    > $(DEB_SRC)/sources.d/deb-src.sources
	cd $(DEB_SRC) && $(DEB_APT) update > apt-update.log 2>&1 \
	    || { tail -20 apt-update.log >&2; exit 1; }
	cd $(DEB_SRC) && $(DEB_APT) source --download-only \
	    libnginx-mod-http-echo > apt-source.log 2>&1 \
	    || { tail -20 apt-source.log >&2; exit 1; }
	dpkg-source -x $(DEB_SRC)/libnginx-mod-http-echo_*.dsc $(ECHO_SRC) \
	    > $(DEB_SRC)/dpkg-source.log 2>&1 \
	    || { cat $(DEB_SRC)/dpkg-source.log >&2; exit 1; }

# the archive is checked against SHA256SUMS before every use, not only once
nginx-verify:
	@cd $(NGX_ARCHIVES) && grep ' nginx-$(NGINX_VERSION)\.tar\.gz$$' SHA256SUMS \
	    | sha256sum --check --strict --quiet - \
	    || { echo "make: nginx-$(NGINX_VERSION).tar.gz: missing from" \
	        "$(NGX_ARCHIVES), or its sha256 differs from SHA256SUMS" >&2; \
	        exit 1; }

$(NGX_V)/objs/Makefile: config $(ECHO_SRC)/config \
                        $(NGX_ARCHIVES)/nginx-$(NGINX_VERSION).tar.gz
	$(MAKE) nginx-verify
	rm -rf $(NGX_V)
	mkdir -p $(BUILD)
	tar -xzf $(NGX_ARCHIVES)/nginx-$(NGINX_VERSION).tar.gz -C $(BUILD)
	cd $(NGX_V) && auto/configure $(NGX_V_FLAGS) \
	        --add-dynamic-module=$(CURDIR)/$(ECHO_SRC) \
	        --add-dynamic-module=$(CURDIR) \
	        >configure.log 2>&1 || { tail -30 configure.log >&2; \
	        echo "make: nginx $(NGINX_VERSION) configure failed" >&2; exit 1; }

# make in the tree rebuilds what changed: the module after an edit
nginx-build: $(NGX_V)/objs/Makefile
	$(MAKE) -s -C $(NGX_V) -f objs/Makefile -j$(NGX_JOBS) $(NGX_V_TARGETS) \
	    >$(NGX_V)/build.log 2>&1 || { grep -B5 -A5 -m20 \
	    -E 'error|Error' $(NGX_V)/build.log >&2; \
	    echo "make: nginx $(NGINX_VERSION) build failed" >&2; exit 1; }
	mkdir -p $(NGX_V)/modules
	for m in $(NGX_V_MODS); do \
	    ln -sfn ../objs/$$m.so $(NGX_V)/modules/$$m.so; done

# make test-asan's module: the plain tree's configuration without its
# objects (configure again would take longer than the module's
# compilation), compiled again with the sanitizers
$(ASAN_NGX)/objs/Makefile: $(NGX_V)/objs/Makefile
	rm -rf $(ASAN_NGX) && mkdir -p $(ASAN_NGX)
	tar -C $(NGX_V) --exclude='*.o' --exclude='*.so' --exclude=./modules \
	    --exclude=./objs/nginx -cf - . | tar -C $(ASAN_NGX) -xf -

asan-module: $(ASAN_NGX)/objs/Makefile
	$(MAKE) -s -C $(ASAN_NGX) -f objs/Makefile -j$(NGX_JOBS) \
	    CFLAGS="$$(sed -n 's/^CFLAGS = //p' $(NGX_V)/objs/Makefile) \
	        $(SAN_FLAGS)" LINK="$(CC) $(SAN_FLAGS)" \
	    objs/ngx_http_pred_module.so >$(ASAN_NGX)/build.log 2>&1 \
	    || { grep -B5 -A5 -m20 -E 'error|Error' $(ASAN_NGX)/build.log >&2; \
	    echo "make: the sanitized module failed to build" >&2; exit 1; }
	mkdir -p $(ASAN_NGX)/modules
	ln -sfn ../objs/ngx_http_pred_module.so \
	    $(ASAN_NGX)/modules/ngx_http_pred_module.so
	for m in ngx_http_echo_module ngx_http_perl_module; do \
	    ln -sfn $(CURDIR)/$(NGX_V)/objs/$$m.so $(ASAN_NGX)/modules/$$m.so; done
	@printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$$@"\n' $(ASAN_RT) \
	    $(CURDIR)/$(NGX_V)/objs/nginx > $(ASAN_NGX)/nginx-asan \
	    && chmod +x $(ASAN_NGX)/nginx-asan

# The perl module's nginx.pm (and its XS library) must be of the binary's
# version.  The tests' perl_modules replaces the path compiled in, so it is
# found through PERL5LIB, ahead of Debian's in perl's own @INC; the files
# that load the perl module pass PERL5LIB to nginx (env_to_nginx).
NGX_V_PERL     := objs/src/http/modules/perl/blib

# the environment that points the suite at nginx $(1), the modules in
# $(2)/modules and the perl module's nginx.pm of the tree $(3)
ngx_v_env       = TEST_NGINX_BINARY=$(CURDIR)/$(1) \
                  TEST_NGINX_MODULES_DIR=$(CURDIR)/$(2)/modules \
                  TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(2)/modules/$\
                  ngx_http_pred_module.so \
                  PERL5LIB=$(CURDIR)/$(3)/$(NGX_V_PERL)/lib:$\
                  $(CURDIR)/$(3)/$(NGX_V_PERL)/arch$${PERL5LIB:+:$$PERL5LIB}

test-nginx: deps loader
	$(MAKE) nginx-verify
	$(MAKE) nginx-build
	@echo "# nginx $(NGINX_VERSION): $(NGX_V)/objs/nginx"
	@export $(call ngx_v_env,$(NGX_V)/objs/nginx,$(NGX_V),$(NGX_V)); \
	    $(PROVE)

# Every version, then Debian's, each to the end whatever the one before
# did; each one's output in build/test-nginx-VERSION.log, and at the end a
# line a version with prove's totals.
DEB_TEST_VARS  := TEST_NGINX_BINARY=$(NGINX) \
                  TEST_NGINX_MODULES_DIR=/usr/lib/nginx/modules \
                  TEST_NGINX_LOAD_MODULES=$(CURDIR)/$(MODULE)

test-nginx-all: deps loader
	@rc=0; for v in $(NGINX_VERSIONS) debian; do \
	    echo "# test-nginx-all: $$v"; \
	    if [ $$v = debian ]; then \
	        set -- module prove $(DEB_TEST_VARS); \
	    else \
	        set -- test-nginx NGINX_VERSION=$$v; \
	    fi; \
	    $(MAKE) --no-print-directory "$$@" 2>&1 \
	        | tee $(BUILD)/test-nginx-$$v.log || rc=1; \
	done; \
	for v in $(NGINX_VERSIONS) debian; do \
	    log=$(BUILD)/test-nginx-$$v.log; \
	    res=$$(sed -n 's/^Result: //p' $$log); \
	    tests=$$(sed -n 's/^Files=.*, Tests=\([0-9]*\),.*/\1/p' $$log); \
	    failed=$$(sed -n '/^Test Summary Report/,$$ s/^\(t\/[^ ]*\) .*/\1/p' \
	        $$log | tr '\n' ' '); \
	    printf '# test-nginx-all: %-7s %s\n' $$v "$${res:-no result:" \
	        "see $$log}$${tests:+, $$tests tests}$${failed:+, failed: $$failed}"; \
	done; \
	exit $$rc

# Benchmarks are noisy and long: make test only keeps the harness working.
bench: deps
	$(MAKE) module loader
	bench/all.sh

bench-smoke: module loader
	bench/compare.sh --smoke > $(BUILD)/bench-smoke.log 2>&1 \
	    || { tail -30 $(BUILD)/bench-smoke.log >&2; exit 1; }
	@grep -c '^| ' $(BUILD)/bench-smoke.log \
	    | awk '{ if ($$1 != 27) { print "bench-smoke: " $$1 \
	        " table rows, not 27" > "/dev/stderr"; exit 1 } }'
	@test -s bench/work-smoke/compare.png
	bench/cascade.sh --smoke > $(BUILD)/bench-cascade-smoke.log 2>&1 \
	    || { tail -30 $(BUILD)/bench-cascade-smoke.log >&2; exit 1; }
	@test "$$(grep -cE '^\| (cascade|single): [^|]*\| [0-9]' \
	        bench/work-cascade/cascade.md)" = 2 \
	    || { echo "bench-smoke: bench/work-cascade/cascade.md lacks" \
	        "the cascade and single rows" >&2; exit 1; }
	bench/canary.sh --smoke > $(BUILD)/bench-canary-smoke.log 2>&1 \
	    || { tail -30 $(BUILD)/bench-canary-smoke.log >&2; exit 1; }
	@test "$$(grep -cE '^\| (no candidate|candidate at 50%)[^|]*\| [0-9]' \
	        bench/work-canary/canary.md)" = 3 \
	    || { echo "bench-smoke: bench/work-canary/canary.md lacks" \
	        "its three rows" >&2; exit 1; }
	bench/bulk.sh --smoke > $(BUILD)/bench-bulk-smoke.log 2>&1 \
	    || { tail -30 $(BUILD)/bench-bulk-smoke.log >&2; exit 1; }
	@test "$$(grep -cE '^\| (bulk alone|lookups)[^|]*\| [0-9]' \
	        bench/work-bulk/bulk.md)" = 4 \
	    || { echo "bench-smoke: bench/work-bulk/bulk.md lacks" \
	        "its four rows" >&2; exit 1; }
	@echo "# bench-smoke: ok (bench/work-smoke/REPORT.md," \
	    "bench/work-cascade/cascade.md, bench/work-canary/canary.md," \
	    "bench/work-bulk/bulk.md)"

# Debian packages, with Debian's tooling (debhelper, nginx-dev's nginx_mod
# build system and dh_nginx, as every libnginx-mod-* package), from a copy
# of the tracked files: libnginx-mod-http-pred and pred-snapshot in
# build/deb/; lintian must find no error.  t/960-deb.t installs them.
DEB_DIR     := $(BUILD)/deb

deb: deps-deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z | xargs -0 tar -c | tar -x -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
	    || { tail -40 ../build.log >&2; exit 1; }
	lintian --fail-on error --info $(DEB_DIR)/*.changes \
	    | tee $(DEB_DIR)/lintian.log
	@ls $(DEB_DIR)/*.deb

# One origin and 5 edges in network namespaces (as root), a 1M-key version
# flipped on every edge at once, the faults; figures to bench/results/fleet.md
# and fleet-timeline.png.  make test runs the small one (t/950-fleet.t).
fleet-test: deps
	$(MAKE) module loader
	prove -v bench/fleet.pl

demo: deps
	$(MAKE) module loader
	demo/run.sh

install: $(LOADER)
	install -D -m 0755 $(LOADER) $(DESTDIR)$(PREFIX)/bin/pred-snapshot
	install -D -m 0644 loader/pred-snapshot.1 \
	    $(DESTDIR)$(PREFIX)/share/man/man1/pred-snapshot.1

clean:
	rm -rf $(BUILD) t/servroot* apt.log
