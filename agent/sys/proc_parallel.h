// Runs one function over many processes on a few threads: the /proc pass of
// the probes is system-call bound, so a second core halves its wall time.
// Thread-safe (stateless); `fn` must be safe to call concurrently for
// different processes.
#ifndef NETVIGIL_AGENT_SYS_PROC_PARALLEL_H_
#define NETVIGIL_AGENT_SYS_PROC_PARALLEL_H_

#include <cstddef>

#include "absl/functional/function_ref.h"

namespace netvigil::agent {

// How many threads a /proc pass uses: the machine's cores, at most 4.
int ProcPassThreads();

// Calls fn(worker, i) once for each i in [0, count), spread over `threads`
// threads (worker in [0, threads)); items are handed out one at a time, so a
// process with many fds does not leave the other threads idle. Returns when
// all calls have returned. threads <= 1 runs everything on the caller.
void ParallelFor(size_t count, int threads,
                 absl::FunctionRef<void(int worker, size_t i)> fn);

// As ParallelFor, but the calling thread first runs `beside` while the other
// threads start on the items, then joins them on what is left: a task of
// another kind (the socket probe's netlink dump) overlaps the /proc pass.
// `beside` runs on the caller, so what it allocates stays in the caller's
// malloc arena. threads <= 1 runs `beside`, then every item, on the caller.
void ParallelForBeside(size_t count, int threads,
                       absl::FunctionRef<void()> beside,
                       absl::FunctionRef<void(int worker, size_t i)> fn);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_SYS_PROC_PARALLEL_H_
