# floodgate — the two commands of the quick start are `make demo` and `make test`.
# Both install what is missing (scripts/install-deps), configure, build, then act.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

# ccache hits across checkouts in different folders (CI clones afresh each time): paths are
# taken relative to the checkout, and the build folder's path is left out of the hash.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all deps configure build test demo bench sanitize ci fuzz clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFLOODGATE_WERROR=ON $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@scripts/demo $(BUILD_DIR)/apps/floodgate/floodgate

bench: build
	@bench/run-all $(BUILD_DIR)

# ASan + UBSan build and test run, in its own build folder.
sanitize:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DFLOODGATE_SANITIZE=address\;undefined"

# What CI runs (.ci/run): the suite, then the suite again under ASan + UBSan.
ci:
	$(MAKE) test
	$(MAKE) sanitize

# libFuzzer targets with clang-14, in their own build folder.
fuzz: deps
	CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOODGATE_FUZZ=ON -DFLOODGATE_BUILD_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
