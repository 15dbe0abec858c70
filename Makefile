# Thin wrapper: set-up (idempotent) + build + run. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup configure build test test-fast demo bench format format-apply clean
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

# Every tracked C++ file against .clang-format (clang-format 14, Debian 12): lists the
# offenders and fails; `make format-apply` rewrites them.
FORMAT_FILES = $(shell git ls-files '*.h' '*.cpp')
format: setup
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format: $(words $(FORMAT_FILES)) files ok"

format-apply: setup
	@clang-format -i $(FORMAT_FILES)

clean:
	rm -rf $(BUILD)
