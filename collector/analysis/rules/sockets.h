// The socket rules as pure functions: which facts of a snapshot may be news
// (new_listener, new_remote by port class, new_inbound from outside the
// LAN; never netvigil's own traffic), their keys, and the words of an alert
// for one of them. What the host already knows (its baseline of keys) and
// the cross-host grouping are the caller's. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_SOCKETS_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_SOCKETS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "collector/analysis/analysis_options.h"
#include "collector/analysis/rules/condition.h"
#include "common/model/facts.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::rules {

// A snapshot's candidates, by alert kind: key -> index into `sources`.
struct SocketCandidates {
  model::SocketFacts facts;  // owns what `sources` points at
  std::vector<const model::SocketFact*> sources;
  absl::flat_hash_map<std::string, size_t> listeners, remotes, inbound;
};

SocketCandidates SocketCandidatesOf(const v1::SocketSnapshot& snap,
                                    const model::OwnEndpoints& own,
                                    const AnalysisOptions& options);

Thing DescribeListener(const model::SocketFact& f);
Thing DescribeInbound(const model::SocketFact& f);
// `known_remotes`: the host's known new_remote keys (has the program talked
// out before, on any class?).
Thing DescribeRemote(const model::SocketFact& f,
                     const absl::flat_hash_set<std::string>& known_remotes,
                     const AnalysisOptions& options);

// A remote port's class: what a program talking out is learned by (README,
// "What is news").
std::string PortClass(uint32_t port, const AnalysisOptions& options);
// A stored known-remote key as today's key: one written before port classes
// ("tcp exe -> 1.2.3.4:443") teaches its class.
std::string RemoteKeyOfStored(const std::string& key,
                              const AnalysisOptions& options);

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_SOCKETS_H_
