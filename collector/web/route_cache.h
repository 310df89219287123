// Each path run's route (the address that answered at each TTL), kept by
// (host, target, seq) so that a timeline read without hops
// (PathHistoryRequest.without_hops) still marks route changes: a stored run
// never changes, so its hops are read once, not on every view. Bounded:
// past `max_runs` runs the cache is emptied and fills again from the next
// views. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_WEB_ROUTE_CACHE_H_
#define NETVIGIL_COLLECTOR_WEB_ROUTE_CACHE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::web {

// The addresses a run went through, one per TTL ("" where none answered).
using Route = std::vector<std::string>;
Route RouteOf(const v1::PathRun& run);

// A route changed when a TTL answered in both runs from different
// addresses: a hop that did not answer once (rate limiting) is no change.
bool RouteChanged(const Route& a, const Route& b);

class RouteCache {
 public:
  explicit RouteCache(size_t max_runs) : max_runs_(max_runs) {}

  // Looks up `seqs` of (host, target). Returns the routes found (by index
  // into `seqs`; an empty route where a run is known to have none) and
  // sets `*missing` to the indexes not in the cache.
  std::vector<Route> Find(const std::string& host, const std::string& target,
                          const std::vector<uint64_t>& seqs,
                          std::vector<size_t>* missing)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Put(const std::string& host, const std::string& target, uint64_t seq,
           const Route& route) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One target's runs: each run's route as an index into `routes`, the
  // distinct routes it took (a handful a target), so a run costs a map
  // entry, not its addresses.
  struct Series {
    std::vector<Route> routes;
    std::map<Route, uint32_t> ids;
    absl::flat_hash_map<uint64_t, uint32_t> by_seq;
  };
  const size_t max_runs_;
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, Series> series_
      ABSL_GUARDED_BY(mu_);
  size_t runs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace netvigil::collector::web

#endif  // NETVIGIL_COLLECTOR_WEB_ROUTE_CACHE_H_
