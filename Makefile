# Thin wrapper over CMake. `make run` and `make test` are the two set-up
# commands: each installs the Debian packages it is missing first. `make check`
# is the quick loop (unit and quick integration tests, a few minutes).
BUILD      ?= build
ASAN_BUILD ?= build-asan
LISTEN     ?= 127.0.0.1:8080
DB         ?= data/imgmeta.db
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build run test test-asan check test-build demo clean bench bench-hash format \
        format-check container

all: build

build:
	@cmake/install-deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGMETA_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target imgmeta

run: build
	@cmake/install-deps.sh run
	./$(BUILD)/imgmeta serve --listen $(LISTEN) --db $(DB)

# Every test: formatting, warnings are errors; then the whole suite again under ASan+UBSan.
test: format-check test-build
	cd $(BUILD) && ctest --output-on-failure
	$(MAKE) test-asan

# The fast loop: the same build, then the unit tests and the quick integration
# tests (every test not labelled `slow`: soak, valgrind, tsan, fuzz and the
# cache suite are) side by side. CHECK_JOBS tests at once: they mostly wait on
# their servers, so more than the cores.
CHECK_JOBS ?= 4
check: test-build
	cd $(BUILD) && ctest --output-on-failure -LE slow -j $(CHECK_JOBS)

# The RelWithDebInfo test build (warnings are errors) and the tools the tests
# use (tests/npm-ci.sh: npm packages, installed here, not in a test).
test-build:
	@cmake/install-deps.sh test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGMETA_TESTS=ON -DIMGMETA_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	tests/openapi/install.sh $(BUILD)/openapi-tools
	tests/npm-ci.sh tests/browser $(BUILD)/browser-tools

test-asan:
	@cmake/install-deps.sh test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIMGMETA_TESTS=ON -DIMGMETA_WERROR=ON \
	  -DIMGMETA_ASAN=ON -DIMGMETA_UBSAN=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	tests/openapi/install.sh $(ASAN_BUILD)/openapi-tools
	tests/npm-ci.sh tests/browser $(ASAN_BUILD)/browser-tools
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

# The Dockerfile built with buildah (vfs storage, chroot isolation) into the
# local container storage as localhost/imgmeta:latest; where debian:bookworm-slim
# cannot be pulled, its base is made with debootstrap first (cmake/container.sh).
container:
	@cmake/install-deps.sh container
	cmake/container.sh .

# A fixture registry + the daemon, left running, for trying it offline.
demo:
	@cmake/install-deps.sh test
	cmake -S . -B $(BUILD) -DIMGMETA_TESTS=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target imgmeta imgmeta-fixture regfront
	tests/integration/demo.sh $(BUILD)/imgmeta $(BUILD)/tests/imgmeta-fixture $(BUILD)/tests/regfront

# Performance, measured side by side with nginx and skopeo (not part of `make test`):
# a Release build in build-bench, then bench/bench.sh writes BENCHMARKS.md.
bench:
	@cmake/install-deps.sh bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DIMGMETA_TESTS=ON >/dev/null
	cmake --build build-bench -j $(JOBS) --target imgmeta imgmeta-fixture regfront
	$(CC) -std=c17 -O2 -Wall -Icommon bench/fill.c common/sha256.c \
	  $$(pkg-config --cflags --libs jansson libcrypto) -o build-bench/bench-fill
	bench/bench.sh build-bench

# What hashing costs (digest checks, the answers file's key hash), printed, in
# the build `make build` makes.
bench-hash:
	@cmake/install-deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target bench-hash
	./$(BUILD)/bench-hash

# .clang-format (LLVM base, 4-space indent, 90 columns) over every C file.
format:
	clang-format-14 -i $$(git ls-files '*.c' '*.h')

format-check:
	@cmake/install-deps.sh format
	clang-format-14 --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
