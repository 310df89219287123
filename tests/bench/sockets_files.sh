#!/bin/bash
# Socket and open-file probe benchmark, beside `ss -tanup` and lsof measured
# in the same run. Builds nothing: give it a build directory where the
# sockets_files_bench target is built.
#
#   tests/bench/sockets_files.sh BUILD_DIR [REPS]
#
# The benchmark makes its own load: loopback TCP pairs (10,000, 25,000 and
# 50,000 sockets) and then 100,000 open files under a temporary folder, each
# spread over holder processes of at most 12,500 fds, under the per-process
# fd limit (raised to its hard limit, 20,000 here). The files are measured
# twice: 100,000 fds on 100,000 files (the target's shape), then 100,000 fds
# on 1,000 files, each open 100 times (lsof +D's best case). Figures (median
# of REPS runs, default 5, the probe and the classic tool in turn; wall and
# CPU time of whole processes):
#   socket snapshot with owners vs ss -tanup at each level, per-socket cost;
#   peak RSS (getrusage ru_maxrss) of a process doing one snapshot at 50,000;
#   file snapshot vs lsof -n -P +D DIR and vs lsof -n -P at each file shape,
#   and beside them the bound: a bare readdir+readlink pass over every
#   /proc/PID/fd (no project code) on 1 and 2 threads, and with the lstat
#   that the r/w/u mode of the kept fds costs.
# Targets (issue 3): >= 2x ss at 10,000 and >= 6x at 50,000, linear growth;
# >= 15x lsof +D and >= 4x lsof at 100,000 files; RSS under 32 MiB.
# The holders are killed by pid and the temporary folder removed at the end.
set -euo pipefail

BUILD_DIR=${1:?usage: sockets_files.sh BUILD_DIR [REPS]}
REPS=${2:-5}
BENCH="$BUILD_DIR/tests/bench/sockets_files_bench"
[ -x "$BENCH" ] || { echo "no benchmark binary at $BENCH (build target sockets_files_bench)" >&2; exit 2; }
command -v ss >/dev/null || { echo "ss (iproute2) is not installed" >&2; exit 2; }
command -v lsof >/dev/null || { echo "lsof is not installed" >&2; exit 2; }
echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), fd limit $(ulimit -Hn)"
exec "$BENCH" run --sockets 10000,25000,50000 --files 100000 --reps "$REPS"
