# Outpost build. `make demo` and `make test` install missing Debian packages first.
#   make            release binary build/rel/outpost
#   make test       every test, built with ASan + UBSan (unit, integration)
#   make demo       a local fleet doing real work
#   make bench      benchmarks (figures and ratios, never pass/fail on time)
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make lint       cppcheck + banned-function check
CC      ?= gcc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
INCS    := -iquote src -I/usr/include/cjson
LIBS    := -lmosquitto -lsodium -lcjson -lsqlite3 -lseccomp -lcrypto -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

REL_OBJS  := $(LIB_SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS := $(LIB_SRCS:src/%.c=build/asan/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=build/asan/tools/%)

.PHONY: all test test-faults demo bench bench-route fuzz lint clean deps-build deps-test deps-fuzz unit integration format
all: build/rel/outpost

deps-build:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-fuzz:
	@scripts/deps.sh fuzz

build/rel/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCS) -c $< -o $@
build/asan/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) $(INCS) -c $< -o $@

build/rel/libcore.a: $(REL_OBJS)
	ar rcs $@ $^
build/asan/libcore.a: $(ASAN_OBJS)
	ar rcs $@ $^

build/rel/outpost: src/main.c build/rel/libcore.a
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCS) $< build/rel/libcore.a $(LIBS) -o $@
build/asan/outpost: src/main.c build/asan/libcore.a
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) $(INCS) $< build/asan/libcore.a $(LIBS) -o $@

build/asan/tests/%: tests/unit/%.c build/asan/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) $(INCS) $< build/asan/libcore.a $(LIBS) -lcmocka -o $@

build/asan/tools/%: tests/tools/%.c build/asan/libcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SAN) $(INCS) $< build/asan/libcore.a $(LIBS) -o $@

build/rel/outpost-bench: bench/bench.c build/rel/libcore.a
	$(CC) $(CSTD) $(WARN) -O2 -g $(INCS) $< build/rel/libcore.a $(LIBS) -o $@

# build/rel/outpost too: route jobs run it (an ASan binary cannot start under RLIMIT_AS)
test: deps-test
	@$(MAKE) --no-print-directory build/asan/outpost build/rel/outpost $(UNIT_BINS) $(TOOL_BINS)
	@tests/run.sh

unit: deps-test
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@tests/run.sh unit

integration: deps-test
	@$(MAKE) --no-print-directory build/asan/outpost build/rel/outpost $(TOOL_BINS)
	@tests/run.sh integration

demo: deps-build
	@$(MAKE) --no-print-directory build/rel/outpost
	@/usr/bin/python3 demo/run.py

bench: deps-build
	@$(MAKE) --no-print-directory build/rel/outpost build/rel/outpost-bench
	@bench/run.sh

# the fault-injection suite with 1,000 jobs (make test runs it with 300)
test-faults: deps-test
	@$(MAKE) --no-print-directory build/asan/outpost
	@/usr/bin/python3 tests/faults/run.py --jobs $${FAULT_JOBS:-1000} --seed $${FAULT_SEED:-1}

bench-route: deps-build
	@$(MAKE) --no-print-directory build/rel/outpost
	@/usr/bin/python3 bench/route.py

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
# the library is compiled once with coverage (fuzzer-no-link) and linked into every target
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(INCS) -c $< -o $@
build/fuzz/libcore.a: $(FUZZ_OBJS)
	ar rcs $@ $^
build/fuzz/%: fuzz/%.c build/fuzz/libcore.a
	@mkdir -p $(dir $@)
	clang $(CSTD) $(WARN) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(INCS) $< build/fuzz/libcore.a $(LIBS) -o $@
fuzz: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "== $$f"; \
	  mkdir -p build/fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$${FUZZ_SECONDS:-20} -max_len=65536 build/fuzz/corpus/$$(basename $$f) tests/fixtures/$$(basename $$f) >build/fuzz/$$(basename $$f).log 2>&1 \
	    || { tail -30 build/fuzz/$$(basename $$f).log; exit 1; }; tail -1 build/fuzz/$$(basename $$f).log; done

lint:
	@scripts/deps.sh all
	@scripts/lint.sh

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/tools/*.c bench/*.c fuzz/*.c

clean:
	rm -rf build
