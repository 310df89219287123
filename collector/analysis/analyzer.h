// The analysis engine: compares every committed result with its host's own
// history and the hosts with each other (DESIGN.md, "History and
// comparison"), and runs the alert lifecycle (opened, updated, resolved,
// acknowledged) over an AlertStore. Thread-safe: one mutex serialises
// results, ticks and acks; listeners are called with it held, in event
// order, and must not call back into the Analyzer.
//
// Rules (kind: subject, scope):
//   path_loss:     "path_loss host=A" (HOST) or "path_loss upstream"
//                  (UPSTREAM, every host reporting a target loses to it).
//   path_latency:  "path_latency host=A target=T" (HOST), after
//                  latency_persist_runs slow runs in a row.
//   route_change:  "route_change host=A target=T" (HOST).
//   new_listener, new_remote, new_inbound, new_file_process, hidden_exe:
//                  subject is the stable key (never a PID or an ephemeral
//                  port); HOST, or MULTI_HOST with a higher severity when a
//                  second host shows it within multi_host_window. Socket
//                  and file facts come from the one fact model
//                  (model/facts.h); new_remote keys on (proto, program,
//                  port class), new_inbound only on peers from outside
//                  the LAN (README, "What is news").
//   speed_low:     "speed_low pair=A>B" (PAIR), "speed_low host=A" (HOST:
//                  every pair through A, or A's external tests), "speed_low
//                  lan" (LAN), "speed_low isp" (UPSTREAM: every host's
//                  external tests).
//   results_lost:  "results_lost host=A" (HOST): the agent's spool dropped
//                  results (over its cap, a full disk, a damaged file) and
//                  sent gap records saying how many, when and why. The open
//                  alert gathers the host's gaps (count, time span,
//                  reasons). Lost results do not come back, so it never
//                  resolves by itself; acknowledging it closes it.
// A narrower alert that a wider one of the same kind explains (a pair under
// its host's link, a host under the LAN, the ISP or upstream loss) is
// closed as MERGED into it, never RESOLVED; path_loss and speed_low
// summaries are rebuilt from the alert's whole state at every event.
// The first result of a kind from an agent only teaches (a log line, no
// alert); after the learning period what is new alerts. Ack() puts an
// alert's subject into the baseline (known set, stable route, relearnt
// latency); an acknowledged condition emits no more updates and, for the
// "new thing" kinds, never alerts again.
//
// State: every baseline lives in the store (analysis_state) and is written
// through as it changes; Load() reads it and the unresolved alerts back.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/alerts/alert_store.h"
#include "collector/analysis/analysis_options.h"
#include "common/clock.h"
#include "model/facts.h"
#include "netvigil/v1/alerts.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector {

class Analyzer {
 public:
  using Listener = std::function<void(const v1::AlertEvent&)>;

  struct Counters {
    uint64_t results = 0;
    uint64_t skipped = 0;  // malformed or unusable results
    uint64_t events = 0;
    uint64_t store_errors = 0;
  };

  // `store` and `clock` are not owned and must outlive the Analyzer.
  Analyzer(AnalysisOptions options, AlertStore& store, Clock& clock);

  // Reads baselines and unresolved alerts back from the store. Call once,
  // before the first result.
  absl::Status Load();

  // A committed result of `agent` (the ingest's result observer).
  void OnResult(const std::string& agent, const v1::Result& result);
  // Committed results in order, as OnResult one by one, but with the state
  // rows of all of them written in one transaction (a thousand agents'
  // first snapshots learn hundreds of keys each; every path run rewrites
  // its target's baseline).
  void OnResults(
      const std::vector<
          std::pair<std::string, std::shared_ptr<const v1::Result>>>& results);
  // Re-evaluates the cross-host rules at the current time: results older
  // than their window stop counting and pending host-scoped conditions
  // settle. Call every few seconds.
  void Tick();
  // An agent's wall clock minus the collector's (from its heartbeats).
  // Beyond kClockSkewAlert a "clock_skew" alert names the host and the
  // offset; it resolves once the offset is back under half of that.
  void OnClockOffset(const std::string& agent, absl::Duration offset);
  static constexpr absl::Duration kClockSkewAlert = absl::Seconds(60);

  // Acknowledges alert `id` (open or resolved): NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Alert> Ack(int64_t id, const std::string& by);
  // Unresolved alerts, by id.
  std::vector<v1::Alert> Open();
  void AddListener(Listener listener);
  Counters counters();
  // What the collector knows to be netvigil's own endpoints (the agents'
  // addresses, the speed port, external speed targets): connections to or
  // from them are never news, whatever the agent says.
  void SetOwnEndpoints(model::OwnEndpoints own) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Condition;
  struct PathTarget {
    std::deque<double> rtt;  // destination avg_ms of normal runs
    uint32_t slow_runs = 0;
    std::string stable_route;
    std::string candidate_route;
    uint32_t candidate_runs = 0;
    bool reached_ever = false;
    // (sent, lost) at the destination over the last runs.
    std::deque<std::pair<uint32_t, uint32_t>> loss_runs;
    // The latest run, for the cross-host rules.
    bool has_latest = false;
    absl::Time at;
    uint64_t seq = 0;
    bool lossy = false;
    double loss_percent = 0;
    std::string loss_hop;     // where loss begins and persists to the end
    std::string loss_suffix;  // addresses from there on, comma-separated
    absl::Time loss_onset;
    // When the last few runs were seen (path_loss_confirm_runs of them).
    std::deque<absl::Time> recent_at;
    // Since the loss began: runs that lost, and how many of them had each
    // address in their lossy stretch. The stretch named (loss_suffix) is
    // the addresses in more than half of them, so a middle hop that
    // rate-limits now and then, or a lucky run of the lossy hop, does not
    // move it.
    uint32_t lossy_runs = 0;
    std::map<std::string, uint32_t> hop_votes;
    // Lossy, and the last runs together (as if the window were full) lose
    // at least path_loss_percent: what a host alert and "most hosts" need.
    bool sustained = false;
  };
  struct SpeedPair {
    std::string agent, sender, receiver;
    bool external = false;
    std::deque<double> bps;  // normal runs
    uint32_t low_runs = 0;
    bool has_latest = false;
    absl::Time at;
    uint64_t seq = 0;
    bool degraded = false;
    absl::Time onset;
    double last_bps = 0;
    double baseline = 0;
    // When its current run of low results began (the fault began no later),
    // and when it was last measured (speed_persist_runs times): another
    // pair measured that often since a pair's low_since has shown whether
    // the same fault reaches it.
    absl::Time low_since;
    std::deque<absl::Time> recent_at;
  };
  struct AgentState {
    absl::Time first_result = absl::InfiniteFuture();
    std::set<std::string> seen_kinds;  // probe kinds with history
    // alert kind -> keys; hashed: every key of every snapshot is looked up.
    std::map<std::string, absl::flat_hash_set<std::string>> known;
  };
  // A new thing found in a snapshot.
  struct Thing {
    // The alert subject shared across hosts; empty: the key itself. A
    // listener bound to a host's own address has a per-host key but is
    // "the same listener" on every host.
    std::string group;
    std::string summary;
    std::string remote_address;
    std::map<std::string, std::string> details;
  };
  using AlertKey = std::pair<std::string, std::string>;  // kind, subject

  void OnPath(const std::string& agent, uint64_t seq, const v1::PathRun& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSockets(const std::string& agent, uint64_t seq,
                 const v1::SocketSnapshot& snap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnFiles(const std::string& agent, uint64_t seq,
               const v1::FileSnapshot& snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSpeed(const std::string& agent, uint64_t seq, const v1::SpeedResult& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnGap(const std::string& agent, uint64_t seq, const v1::Gap& gap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvaluatePathLoss(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvaluateSpeed(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Compares a snapshot's things of `kind` with the agent's known set.
  // `current` maps each key to what `make` needs to describe it: a Thing is
  // built only for a key that is news (nearly every key of a snapshot is
  // known, and building hundreds of summaries per snapshot was most of the
  // analysis' time).
  void NewThings(const std::string& agent, uint64_t seq,
                 const std::string& kind, bool learning,
                 const absl::flat_hash_map<std::string, size_t>& current,
                 const std::function<Thing(size_t)>& make, v1::Severity single,
                 v1::Severity multi) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Learning(const std::string& agent, const std::string& probe_kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PortClass(uint32_t port) const;
  std::string RemoteKey(const model::SocketFact& f) const;
  std::string RemoteKeyOfStored(const std::string& key) const;
  bool IsLan(const std::string& address) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Opens or updates the alert of `c`; resolves the open alerts of `kind`
  // that are neither in `conds` nor `held`.
  void Raise(const Condition& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reconcile(const std::string& kind,
                 const std::map<std::string, Condition>& conds,
                 const std::set<std::string>& held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Resolve(const AlertKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the alert of `key` as folded into the open alert `into` (same
  // kind): a MERGED event, never RESOLVED, since its fault goes on there.
  void Merge(const AlertKey& key, const std::string& into)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(v1::AlertEvent::Type type, const v1::Alert& alert)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Save(v1::Alert& alert) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void PersistPath(const std::string& agent, const std::string& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistSpeed(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistRow(AnalysisStateRow row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the rows buffered while handling one result, in one transaction.
  void FlushRows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnResultLocked(const std::string& agent, const v1::Result& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyStateRow(const AnalysisStateRow& row)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AnalysisOptions options_;
  AlertStore& store_;  // Not owned.
  Clock& clock_;       // Not owned.

  absl::Mutex mu_;
  // While a result is handled its state rows are buffered here (a first
  // snapshot learns hundreds of keys: one commit, not hundreds).
  bool buffering_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<AnalysisStateRow> buffered_ ABSL_GUARDED_BY(mu_);
  std::vector<Listener> listeners_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, AgentState> agents_ ABSL_GUARDED_BY(mu_);
  // agent -> target -> state
  std::map<std::string, std::map<std::string, PathTarget>> paths_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, SpeedPair> speeds_ ABSL_GUARDED_BY(mu_);
  std::map<AlertKey, v1::Alert> open_ ABSL_GUARDED_BY(mu_);
  // For "new thing" alerts: the hosts whose latest snapshot still shows it.
  std::map<AlertKey, std::set<std::string>> present_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  model::OwnEndpoints own_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_
