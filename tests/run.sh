#!/bin/bash
# Sets up and runs netvigil's whole test suite: installs the Debian packages,
# builds, and runs every test through ctest (unit tests in parallel; the
# tests that use PostgreSQL, network namespaces or classic tools one at a
# time). Run as root on Debian 12: the lab tests create network namespaces.
#
#   tests/run.sh                 everything, then 30 s of each fuzz harness
#   tests/run.sh -L unit         only one label (unit, oracle, integration, lab)
#
# Extra arguments go to ctest (and skip the fuzzing). NETVIGIL_BUILD_DIR
# picks the build folder. The fuzzing (tests/fuzz/run.sh) has a clang build
# of its own, in build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${NETVIGIL_BUILD_DIR:-$SRC/build}

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the lab makes network namespaces)" >&2
  exit 1
fi

deploy/install-deps.sh
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"

# Fuzzing: every libFuzzer harness (tests/fuzz) under AddressSanitizer and
# UBSan, no crash allowed: a fixed seed and number of inputs (about 25 s
# each, at most 60 s) so this run is repeatable; `tests/fuzz/run.sh 600` is
# the longer, open-ended run.
if [ $# -eq 0 ]; then
  tests/fuzz/run.sh --fixed 60
fi
