# helios — a thin wrapper over CMake. On a fresh Debian 12 machine: `make run`, `make test`.
# Every target installs missing Debian packages first (scripts/install-deps.sh, idempotent).
#   make test                 normal build + ASan/UBSan build (all tests), TSan build (the concurrent
#                             store tests), portable (no-SIMD) BLAKE3 build (hash tests)
#   make test SAN=thread      one sanitizer variant only
#   make bench                benchmarks (Release build), the HTTP one against nginx and memcached
#   make crashsim SEEDS=N     the power-cut simulation over N seeds (default 1000); make test runs
#                             300 (70 under ASan, 40 under TSan)
#   make stress               the 850-agent workload for STRESS_SECONDS (300), RSS sampled; not in test
#   make install PREFIX=/usr/local
#   make deb                  the Debian package (debian/) into build-deb/, from a copy of the sources
comma := ,
SAN ?=
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
BUILD ?= $(if $(SAN),build-$(subst $(comma),-,$(SAN)),build)
TYPE ?= RelWithDebInfo

.PHONY: all deps deps-test build run test test-one test-portable bench crashsim stress install fuzz clean deb

all: build

deps:
	@scripts/install-deps.sh

# what only the tests and the package need besides: a real Bazel client, debhelper, lintian, and
# systemd-analyze (the unit's sandbox is scored; systemd is not started)
PACKAGE_DEPS := debhelper lintian
TEST_DEPS := bazel-bootstrap systemd $(PACKAGE_DEPS)
deps-test:
	@HELIOS_DEPS_EXTRA="$(TEST_DEPS)" scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DHELIOS_SANITIZE="$(SAN)" \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# quiet: only helios's own lines (the build's output is shown when the build fails)
run: deps
	@mkdir -p $(BUILD) && { cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE) -DHELIOS_SANITIZE="$(SAN)" \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) && cmake --build $(BUILD) -j$(JOBS); } >$(BUILD)/build.log 2>&1 || \
	  { tail -n 60 $(BUILD)/build.log; echo "make run: the build failed (all of it in $(BUILD)/build.log)"; exit 1; }
	@scripts/run.sh $(BUILD)/helios

# the sanitizer builds repeat the longest loops fewer times (the normal build runs them in full)
SAN_KNOBS := HELIOS_FLEET_ROUNDS=3 HELIOS_CRASH_CYCLES=25
ifeq ($(SAN),)
test: deps-test
	@$(MAKE) --no-print-directory test-one
	@$(SAN_KNOBS) HELIOS_CRASHSIM_SEEDS=70 $(MAKE) --no-print-directory test-one SAN=address,undefined
	@$(SAN_KNOBS) HELIOS_CRASHSIM_SEEDS=40 $(MAKE) --no-print-directory test-one SAN=thread CTEST_ARGS="-L tsan"
	@$(MAKE) --no-print-directory test-portable
else
test: deps-test
	@$(MAKE) --no-print-directory test-one
endif

test-one: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 600 -j$(JOBS) $(CTEST_ARGS)

test-portable: deps
	@cmake -S . -B build-portable -DHELIOS_BLAKE3_PORTABLE=ON >/dev/null
	@cmake --build build-portable -j$(JOBS)
	@cd build-portable && ctest --output-on-failure -L portable

# the peers (nginx, memcached; restic, borg, casync) are installed for the benchmark only
bench:
	@HELIOS_DEPS_EXTRA="nginx-light memcached restic borgbackup casync git" scripts/install-deps.sh
	@$(MAKE) --no-print-directory build BUILD=build-release TYPE=Release
	@build-release/bench/helios-bench $(BENCH_ARGS)
	@case "$${HELIOS_BENCH_ONLY:-http}" in http) bench/http_bench.sh build-release/helios build-release/bench/helios-httpload;; esac
	@case "$${HELIOS_BENCH_ONLY:-dedup}" in dedup) bench/dedup_bench.sh build-release/helios;; esac
	@case "$${HELIOS_BENCH_ONLY:-bucket}" in bucket) bench/fleet_bench.sh build-release/helios build-release/bench/helios-httpload;; esac
	@case "$${HELIOS_BENCH_ONLY:-history}" in history) bench/history_bench.sh build-release/helios build-release/bench/helios-mkhistory;; esac

crashsim: build
	@HELIOS_CRASHSIM_SEEDS=$(or $(SEEDS),1000) HELIOS_CRASHSIM_FIRST=$(or $(FIRST),1) $(BUILD)/tests/test_crashsim

stress: build
	@HELIOS_AGENTS_SECONDS=$(or $(STRESS_SECONDS),300) $(BUILD)/tests/test_agents

install: build
	@cmake --install $(BUILD)

# the Debian package (debian/, dpkg-buildpackage) from a copy of the sources, into build-deb/
deb:
	@HELIOS_DEPS_EXTRA="$(PACKAGE_DEPS)" scripts/install-deps.sh
	@rm -rf build-deb && mkdir -p build-deb/helios
	@tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C build-deb/helios
	@cd build-deb/helios && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
	  { tail -n 40 ../build.log; echo "make deb: dpkg-buildpackage failed (build-deb/build.log)"; exit 1; }
	@ls build-deb/*.deb

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DHELIOS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-* 
