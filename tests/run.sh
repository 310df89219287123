#!/bin/bash
# Sets up and runs netvigil's whole test suite: installs the Debian packages,
# builds (warnings are errors), and runs every test through ctest (unit tests
# in parallel; the tests that use PostgreSQL, network namespaces or classic
# tools one at a time). Run as root on Debian 12: the lab tests create
# network namespaces.
#
#   tests/run.sh                 everything, then the clang build that checks
#                                the thread-safety annotations, then the
#                                fixed fuzz run
#   tests/run.sh -L unit         only one label: unit (needs no root, no
#                                PostgreSQL, no namespaces), pg, root, lab,
#                                integration, oracle (README, "Tests")
#
# Extra arguments go to ctest (and skip the clang build and the fuzzing).
# NETVIGIL_BUILD_DIR picks the build folder, NETVIGIL_JOBS ninja's -j
# (default: ninja's own). The clang build (build-clang) and the fuzzing
# (tests/fuzz/run.sh, build-fuzz) have build folders of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${NETVIGIL_BUILD_DIR:-$SRC/build}

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the lab makes network namespaces)" >&2
  exit 1
fi

deploy/install-deps.sh
JOBS=()
[ -n "${NETVIGIL_JOBS:-}" ] && JOBS=(-j "$NETVIGIL_JOBS")
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNETVIGIL_WERROR=ON >/dev/null
ninja -C "$BUILD" "${JOBS[@]}"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"

# The clang build: clang's -Wthread-safety checks every ABSL_GUARDED_BY and
# ABSL_EXCLUSIVE_LOCKS_REQUIRED against the locking, and clang's -Wall finds
# what gcc's does not; warnings are errors. Build only: every object file of
# the tree, unoptimized and without debug info (the checks are in the front
# end), nothing linked or run.
if [ $# -eq 0 ]; then
  CLANG_BUILD=$SRC/build-clang
  started=$(date +%s)
  cmake -S "$SRC" -B "$CLANG_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DNETVIGIL_WERROR=ON >/dev/null
  mapfile -t objects < <(ninja -C "$CLANG_BUILD" -t targets all |
    sed -n 's/^\([^:]*\.o\): .*/\1/p')
  ninja -C "$CLANG_BUILD" "${JOBS[@]}" "${objects[@]}"
  echo "clang build (-Wthread-safety, -Werror): $(( $(date +%s) - started ))s"
fi

# Fuzzing: every libFuzzer harness (tests/fuzz) under AddressSanitizer and
# UBSan, no crash allowed: a fixed seed and number of inputs (about 25 s
# each, at most 60 s) so this run is repeatable; `tests/fuzz/run.sh 600` is
# the longer, open-ended run.
if [ $# -eq 0 ]; then
  tests/fuzz/run.sh --fixed 60
fi
