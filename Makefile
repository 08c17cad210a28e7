# Thin wrapper over CMake for the README's commands. Every target installs missing Debian
# packages first (scripts/install-deps.sh), so a fresh Debian 12 needs nothing else.
BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
FUZZ_SECONDS ?= 20
CMAKE_GEN  := -G Ninja

.PHONY: all deps build run demo test test-asan test-tsan bench fuzz docs install deb format check-format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: the daemon (dashboard and API on :9000, Prometheus on :9001) until Ctrl-C.
# ARGS are passed to `agentaflow serve`, e.g. make run ARGS="--config tracing-config.yaml".
run: build
	@exec $(BUILD)/bin/agentaflow serve $(ARGS)

demo: build
	@$(BUILD)/bin/tracing_demo $(ARGS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

# ASan + UBSan over the same suite.
test-asan: deps
	@cmake -S . -B build-asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DAF_SANITIZE=address >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2 --timeout 900 -LE nosan

# ThreadSanitizer over the same suite.
test-tsan: deps
	@cmake -S . -B build-tsan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DAF_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j 2 --timeout 900 -LE nosan

bench: build
	@for b in $(BUILD)/bin/bench_*; do echo "# $$(basename $$b)"; $$b || exit 1; done

# libFuzzer: each target runs FUZZ_SECONDS on its seed corpus (clang required).
fuzz: deps
	@cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DAF_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@for f in build-fuzz/bin/fuzz_*; do n=$$(basename $$f); mkdir -p build-fuzz/corpus/$$n; \
	  echo "# $$n ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus/$$n tests/fuzz/corpus/$$n \
	    >build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build-fuzz/$$n.log; done

# docs/configuration.md is generated from the key table (src/config/keys.c); the
# docs.configuration test fails until it is regenerated after a key changes.
docs: build
	@$(BUILD)/bin/agentaflow config docs > docs/configuration.md.tmp
	@mv docs/configuration.md.tmp docs/configuration.md

install: build
	@cmake --install $(BUILD)

# $(BUILD)/agentaflow_<version>_<arch>.deb from a staging install of $(BUILD), with the
# systemd units, /etc/agentaflow and the man pages (scripts/build-deb.sh).
deb: build
	@scripts/build-deb.sh $(BUILD) $(BUILD)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

check-format:
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-asan build-tsan build-fuzz
