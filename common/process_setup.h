// What every netvigil program sets up first, before any thread starts.
#ifndef NETVIGIL_COMMON_PROCESS_SETUP_H_
#define NETVIGIL_COMMON_PROCESS_SETUP_H_

namespace netvigil {

// Turns off Abseil's mutex deadlock detection, which Debian's Abseil runs
// by default: it records every lock order in a global graph, on every
// lock, and showed in the collector's profile under the ingest benchmark
// (absl GraphCycles, beside the budget's wake-ups). The unit tests keep it
// on: they are where a lock-order mistake would be caught.
void SetUpProcess();

// Sets the calling thread's priority `by` nice steps below the main
// thread's (at most 19), unless it is that low already. Relative to the
// main thread, not to the caller's own: a thread inherits the nice of the
// thread that made it, and gRPC's pools make threads from their threads,
// so a relative step would compound. An unprivileged process may lower a
// thread's priority but never raise it again, so this is for threads that
// keep that role for life.
void LowerThisThreadsPriority(int by);

// Names the calling thread for top -H, perf and gdb (at most 15 bytes).
void NameThisThread(const char* name);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_PROCESS_SETUP_H_
