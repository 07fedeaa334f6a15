# Outpost build. `make demo` and `make test` install missing Debian packages first.
#   make            release binary $(BUILD)/rel/outpost
#   make test       every test, built with ASan + UBSan (unit, integration); threaded units with TSan too
#   make test-pg    a few hub integration tests with the hub's state in PostgreSQL
#   make demo       a local fleet doing real work (KEEP=1: leave it running for the web console)
#   make bench      benchmarks (figures and ratios, never pass/fail on time)
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make lint       cppcheck + banned-function check
CC      ?= gcc
BUILD   ?= build
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
INCS    := -iquote src -I/usr/include/cjson -I/usr/include/postgresql
LIBS    := -lmosquitto -lsodium -lcjson -lsqlite3 -lpq -lseccomp -lcrypto -lmicrohttpd -ldl -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
DEPS    := -MMD -MP

# src/<layer>/<module>.c; main.c is the binary's entry point, everything else is libcore.a
LIB_SRCS  := $(sort $(wildcard src/*/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
TOOL_SRCS := $(filter-out %_shim.c,$(wildcard tests/tools/*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/asan/tools/%)
TEST_HELPERS := $(wildcard tests/unit/helpers/*.c)
# LD_PRELOAD shims for the fault suite: plain shared objects, no sanitizer runtime of their own
SHIMS     := $(BUILD)/tools/enospc_shim.so

# one compile rule per build kind: rel (-O2), asan (ASan + UBSan), fuzz (clang, coverage)
REL_FLAGS  := $(CSTD) $(WARN) -O2 -g $(INCS)
ASAN_FLAGS := $(CSTD) $(WARN) -O1 -g $(SAN) $(INCS)
TSAN_FLAGS := $(CSTD) $(WARN) -O1 -g -fsanitize=thread $(INCS)
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_FLAGS := $(CSTD) $(WARN) -O1 -g $(FUZZ_SAN) $(INCS)

.PHONY: all test test-pg test-faults test-security demo bench bench-route fuzz lint sizes install uninstall man deb clean deps-build deps-test deps-fuzz unit integration format
all: $(BUILD)/rel/outpost

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-fuzz:
	@scripts/deps.sh fuzz

$(BUILD)/rel/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) $(DEPS) -c $< -o $@
$(BUILD)/asan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(DEPS) -c $< -o $@
$(BUILD)/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(DEPS) -c $< -o $@
$(BUILD)/asan/helpers/%.o: tests/unit/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -iquote tests/unit $(DEPS) -c $< -o $@

# the hub's static HTTP content (docs/openapi.json, web/**), embedded as a generated C file
EMBED_C     := $(BUILD)/gen/embedded.c
WEB_FILES   := $(shell find web -type f 2>/dev/null)
$(EMBED_C): scripts/embed_files.py docs/openapi.json $(WEB_FILES)
	@mkdir -p $(dir $@)
	python3 scripts/embed_files.py --openapi docs/openapi.json --web web --out $@
$(BUILD)/rel/obj/gen/embedded.o: $(EMBED_C)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -c $< -o $@
$(BUILD)/asan/obj/gen/embedded.o: $(EMBED_C)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -c $< -o $@
$(BUILD)/fuzz/obj/gen/embedded.o: $(EMBED_C)
	@mkdir -p $(dir $@)
	clang $(CSTD) -O1 -c $< -o $@

REL_OBJS    := $(LIB_SRCS:src/%.c=$(BUILD)/rel/obj/%.o) $(BUILD)/rel/obj/gen/embedded.o
ASAN_OBJS   := $(LIB_SRCS:src/%.c=$(BUILD)/asan/obj/%.o) $(BUILD)/asan/obj/gen/embedded.o
FUZZ_OBJS   := $(LIB_SRCS:src/%.c=$(BUILD)/fuzz/obj/%.o) $(BUILD)/fuzz/obj/gen/embedded.o
HELPER_OBJS := $(TEST_HELPERS:tests/unit/helpers/%.c=$(BUILD)/asan/helpers/%.o)

$(BUILD)/%/libcore.a:
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/rel/libcore.a: $(REL_OBJS)
$(BUILD)/asan/libcore.a: $(ASAN_OBJS)
$(BUILD)/fuzz/libcore.a: $(FUZZ_OBJS)

$(BUILD)/rel/outpost: $(BUILD)/rel/obj/main.o $(BUILD)/rel/libcore.a
	$(CC) $(REL_FLAGS) $^ $(LIBS) -o $@
$(BUILD)/asan/outpost: $(BUILD)/asan/obj/main.o $(BUILD)/asan/libcore.a
	$(CC) $(ASAN_FLAGS) $^ $(LIBS) -o $@

$(BUILD)/asan/tests/%: tests/unit/%.c $(HELPER_OBJS) $(BUILD)/asan/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -iquote tests/unit $(DEPS) $< $(HELPER_OBJS) $(BUILD)/asan/libcore.a $(LIBS) -lcmocka -o $@

# ThreadSanitizer: the unit tests of code that runs on threads of its own (the hub's
# heartbeat workers), against a small library of that code and what it calls (base, wire,
# and the hello checks the workers run where there are some)
TSAN_TESTS := test_hub_workers
TSAN_BINS  := $(TSAN_TESTS:%=$(BUILD)/tsan/tests/%)
TSAN_SRCS  := $(wildcard src/base/*.c src/wire/*.c src/hub/workers.c src/hub/hello.c)
TSAN_OBJS  := $(TSAN_SRCS:src/%.c=$(BUILD)/tsan/obj/%.o)
$(BUILD)/tsan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_FLAGS) $(DEPS) -c $< -o $@
$(BUILD)/tsan/helpers/%.o: tests/unit/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_FLAGS) -iquote tests/unit $(DEPS) -c $< -o $@
$(BUILD)/tsan/libthreads.a: $(TSAN_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/tsan/tests/%: tests/unit/%.c $(BUILD)/tsan/helpers/testkit.o $(BUILD)/tsan/libthreads.a
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_FLAGS) -iquote tests/unit $(DEPS) $< $(BUILD)/tsan/helpers/testkit.o $(BUILD)/tsan/libthreads.a $(LIBS) -lcmocka -o $@

$(BUILD)/asan/tools/%: tests/tools/%.c $(BUILD)/asan/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(DEPS) $< $(BUILD)/asan/libcore.a $(LIBS) -o $@

$(BUILD)/tools/%_shim.so: tests/tools/%_shim.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -g -fPIC -shared $(DEPS) $< -ldl -o $@

$(BUILD)/rel/outpost-bench: bench/bench.c $(BUILD)/rel/libcore.a
	$(CC) $(REL_FLAGS) $(DEPS) $< $(BUILD)/rel/libcore.a $(LIBS) -o $@

# the swarm: thousands of virtual sites over real MQTT connections, a load tool (bench/swarm.py)
$(BUILD)/rel/outpost-swarm: bench/swarm.c bench/swarm_power.c bench/swarm_report.c bench/swarm.h $(BUILD)/rel/libcore.a
	$(CC) $(REL_FLAGS) -iquote bench $(filter %.c,$^) $(BUILD)/rel/libcore.a $(LIBS) -lpthread -o $@

# $(BUILD)/rel/outpost too: route jobs run it (an ASan binary cannot start under RLIMIT_AS)
# the build uses every core unless make was given -j itself
JOBS := $(if $(findstring j,$(firstword -$(MAKEFLAGS))),,-j$(shell nproc 2>/dev/null || echo 1))
test: deps-test
	@$(MAKE) --no-print-directory $(JOBS) $(BUILD)/asan/outpost $(BUILD)/rel/outpost $(BUILD)/rel/outpost-swarm $(UNIT_BINS) $(TSAN_BINS) $(TOOL_BINS) $(SHIMS)
	@PG_TESTS="$(PG_TESTS)" tests/run.sh

# A few hub integration tests again with the hub's state in PostgreSQL (tests/integration/
# pgserver.py starts Debian's PostgreSQL 15), so the store's PostgreSQL engine and the CLI's
# way to it stay covered end to end; make test runs them too. Any other integration test
# runs so with OUTPOST_TEST_STORE=postgresql tests/run.sh integration NAME.
PG_TESTS := test_api test_attack_jobs test_audit_hub
test-pg: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/asan/outpost $(BUILD)/rel/outpost
	@OUTPOST_TEST_STORE=postgresql tests/run.sh integration $(PG_TESTS)

unit: deps-test
	@$(MAKE) --no-print-directory $(UNIT_BINS) $(TSAN_BINS)
	@tests/run.sh unit

integration: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/asan/outpost $(BUILD)/rel/outpost $(BUILD)/rel/outpost-swarm $(TOOL_BINS) $(SHIMS)
	@tests/run.sh integration

demo: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/rel/outpost
	@/usr/bin/python3 demo/run.py

bench: deps-build
	@$(MAKE) --no-print-directory $(BUILD)/rel/outpost $(BUILD)/rel/outpost-bench
	@bench/run.sh

# the fault-injection suite with 1,000 jobs (make test runs it with 300); its disk-full
# episodes use a small tmpfs as root and the ENOSPC shim otherwise
test-faults: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/asan/outpost $(SHIMS)
	@/usr/bin/python3 tests/faults/run.py --jobs $${FAULT_JOBS:-1000} --seed $${FAULT_SEED:-1}
	@/usr/bin/python3 tests/faults/failover.py --jobs $${FAULT_JOBS:-1000} --seed $${FAULT_SEED:-1}

# every attack in tests/integration/test_attack_*.py at full size (make test runs the short form)
test-security: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/asan/outpost $(BUILD)/rel/outpost
	@/usr/bin/python3 tests/security/run.py

bench-route: deps-build
	@$(MAKE) --no-print-directory $(BUILD)/rel/outpost
	@/usr/bin/python3 bench/route.py

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/fuzz/libcore.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer $(DEPS) $< $(BUILD)/fuzz/libcore.a $(LIBS) -o $@
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "== $$f"; \
	  mkdir -p $(BUILD)/fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$${FUZZ_SECONDS:-20} -max_len=65536 $(BUILD)/fuzz/corpus/$$(basename $$f) tests/fixtures/$$(basename $$f) >$(BUILD)/fuzz/$$(basename $$f).log 2>&1 \
	    || { tail -30 $(BUILD)/fuzz/$$(basename $$f).log; exit 1; }; tail -1 $(BUILD)/fuzz/$$(basename $$f).log; done

lint:
	@scripts/deps.sh all
	@scripts/lint.sh

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tests/unit/*.c $(wildcard tests/unit/helpers/*.[ch]) tests/tools/*.c bench/*.c fuzz/*.c

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [UNITDIR=...]: the binary,
# the man pages, the systemd units and sysusers.d entry, the example configurations (into
# $(SYSCONFDIR)/outpost only where none is there yet) and the broker's; docs/operations.md.
# make uninstall removes what install put, except the configurations in $(SYSCONFDIR)/outpost.
VERSION     := $(shell sed -n 's/^\#define OUTPOST_VERSION "\(.*\)"/\1/p' src/base/version.h)
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/outpost
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
UNITS       := outpost-hub.service outpost-site.service outpost-site@.service
EXAMPLES    := hub.conf site.conf mosquitto.conf mosquitto-outpost.conf acl policy job.json

# outpost(1) from the binary's own help texts (not committed); the roles' pages are in man/
man: $(BUILD)/man/outpost.1
$(BUILD)/man/outpost.1: $(BUILD)/rel/outpost scripts/manpage.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/manpage.py $(BUILD)/rel/outpost $(VERSION) > $@.tmp && mv $@.tmp $@

install: $(BUILD)/rel/outpost $(BUILD)/man/outpost.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(SYSCONFDIR)/outpost
	install -m 0755 $(BUILD)/rel/outpost $(DESTDIR)$(BINDIR)/outpost
	install -m 0644 $(BUILD)/man/outpost.1 $(DESTDIR)$(MANDIR)/man1/outpost.1
	install -m 0644 man/outpost-hub.8 man/outpost-site.8 $(DESTDIR)$(MANDIR)/man8/
	for u in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	      -e '/@SITE_HARDENING@/{r dist/systemd/site-hardening.inc' -e 'd;}' \
	      dist/systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 dist/systemd/outpost.sysusers $(DESTDIR)$(SYSUSERSDIR)/outpost.conf
	for e in $(EXAMPLES); do install -m 0644 examples/$$e $(DESTDIR)$(DOCDIR)/examples/$$e || exit 1; done
	[ -e $(DESTDIR)$(SYSCONFDIR)/outpost/hub.conf ] || \
	  install -m 0644 examples/hub.conf $(DESTDIR)$(SYSCONFDIR)/outpost/hub.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/outpost/site.conf ] || { \
	  sed 's/^cgroup_dir =$$/cgroup_dir = delegated/' examples/site.conf \
	    > $(DESTDIR)$(SYSCONFDIR)/outpost/site.conf && \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/outpost/site.conf; }

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/outpost $(DESTDIR)$(MANDIR)/man1/outpost.1 \
	  $(DESTDIR)$(MANDIR)/man8/outpost-hub.8 $(DESTDIR)$(MANDIR)/man8/outpost-site.8 \
	  $(DESTDIR)$(SYSUSERSDIR)/outpost.conf
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept: $(DESTDIR)$(SYSCONFDIR)/outpost (configuration) and /var/lib/outpost (state)"

# make deb: a Debian package of the install tree (scripts/mkdeb.sh), in $(BUILD)/deb/
deb: $(BUILD)/rel/outpost $(BUILD)/man/outpost.1
	@scripts/deps.sh package
	@scripts/mkdeb.sh $(BUILD) $(VERSION)

# the longest functions and the largest files under src/
sizes:
	@/usr/bin/python3 scripts/sizes.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -path $(BUILD)/deb -prune -o -type f -name '*.d' -print 2>/dev/null)
