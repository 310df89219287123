#include "collector/web/route_cache.h"

#include <algorithm>

namespace netvigil::collector::web {

Route RouteOf(const v1::PathRun& run) {
  Route r;
  for (const auto& h : run.hops()) {
    if (h.ttl() == 0 || h.ttl() > 255) continue;
    if (r.size() < h.ttl()) r.resize(h.ttl());
    if (!h.addresses().empty()) r[h.ttl() - 1] = h.addresses(0).address();
  }
  return r;
}

bool RouteChanged(const Route& a, const Route& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (!a[i].empty() && !b[i].empty() && a[i] != b[i]) return true;
  }
  return false;
}

std::vector<Route> RouteCache::Find(const std::string& host,
                                    const std::string& target,
                                    const std::vector<uint64_t>& seqs,
                                    std::vector<size_t>* missing) {
  std::vector<Route> out(seqs.size());
  missing->clear();
  absl::MutexLock l(&mu_);
  auto it = series_.find({host, target});
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (it == series_.end()) {
      missing->push_back(i);
      continue;
    }
    auto r = it->second.by_seq.find(seqs[i]);
    if (r == it->second.by_seq.end()) {
      missing->push_back(i);
    } else {
      out[i] = it->second.routes[r->second];
    }
  }
  return out;
}

void RouteCache::Put(const std::string& host, const std::string& target,
                     uint64_t seq, const Route& route) {
  absl::MutexLock l(&mu_);
  if (runs_ >= max_runs_) {
    // Emptied rather than evicted one by one: the next views read their
    // routes again, which is what a cache of this size never needing is
    // for; a home network's week of runs fits well below the bound.
    series_.clear();
    runs_ = 0;
  }
  Series& s = series_[{host, target}];
  auto [id, added] = s.ids.emplace(route, s.routes.size());
  if (added) s.routes.push_back(route);
  if (s.by_seq.emplace(seq, id->second).second) ++runs_;
}

size_t RouteCache::size() const {
  absl::MutexLock l(&mu_);
  return runs_;
}

}  // namespace netvigil::collector::web
