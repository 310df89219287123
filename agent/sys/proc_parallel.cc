#include "agent/sys/proc_parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace netvigil::agent {

int ProcPassThreads() {
  unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(cores, 1u, 4u));
}

namespace {

void Run(size_t count, int threads, absl::FunctionRef<void()> beside,
         absl::FunctionRef<void(int worker, size_t i)> fn) {
  if (threads <= 1 || count == 0) {
    beside();
    for (size_t i = 0; i < count; ++i) fn(0, i);
    return;
  }
  std::atomic<size_t> next{0};
  auto run = [&](int worker) {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      fn(worker, i);
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(run, w);
  beside();
  run(0);
  for (std::thread& t : pool) t.join();
}

}  // namespace

void ParallelFor(size_t count, int threads,
                 absl::FunctionRef<void(int worker, size_t i)> fn) {
  // One item needs no second thread.
  Run(
      count, count <= 1 ? 1 : threads, [] {}, fn);
}

void ParallelForBeside(size_t count, int threads,
                       absl::FunctionRef<void()> beside,
                       absl::FunctionRef<void(int worker, size_t i)> fn) {
  Run(count, threads, beside, fn);
}

}  // namespace netvigil::agent
