# Thin wrapper: set-up (idempotent) + build + run. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup configure build test test-fast demo bench clean
all: build

setup:
	@bash scripts/setup

configure: setup
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite (unit, parity against transformers/tokenizers/Math-Verify, sandbox, ...).
test: build
	@ctest --test-dir $(BUILD) --output-on-failure

test-fast: build
	@ctest --test-dir $(BUILD) --output-on-failure -L fast

demo: build
	@$(BUILD)/r1kit demo --out runs/demo

bench: build
	@$(BUILD)/r1kit bench reward

clean:
	rm -rf $(BUILD)
