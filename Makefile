# Thin wrapper: set-up (idempotent) + build + run. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup configure build test test-fast test-asan fuzz demo bench format format-apply clean
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

# The whole suite built with clang under AddressSanitizer + UndefinedBehaviorSanitizer (r1kit's
# code; LibTorch's libraries stay as shipped) in build-asan. The build also carries
# libFuzzer's coverage hooks and the fuzz targets, fuzz_recipe included (README "Fuzzing").
ASAN_BUILD ?= build-asan
test-asan:
	@bash scripts/setup --clang
	@[ -f $(ASAN_BUILD)/build.ninja ] || cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CXX_COMPILER=clang++ -DR1KIT_FUZZ=ON
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_odr_violation=0 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -LE gpu

# Every libFuzzer target for FUZZ_SECONDS (600) each; see scripts/fuzz.
fuzz:
	@bash scripts/fuzz

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
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
