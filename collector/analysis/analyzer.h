// The analysis engine: the glue that feeds every committed result to the
// rules (rules/: its host's own history and the hosts with each other,
// DESIGN.md "History and comparison") and their conditions to the alert
// book (alert_book.h: opened, updated, merged, resolved, acknowledged,
// over an AlertStore). Thread-safe: one mutex serialises results, ticks
// and acks; listeners are called with it held, in event
// order, and must not call back into the Analyzer. No store write happens
// under it: state rows and alert rows are queued and written after it is
// released, by one writer at a time in queue order (Flush), so each
// alert's events reach the store in order.
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
//                  second host shows it within multi_host_window. A newly
//                  seen thing is held pending for multi_host_window after
//                  its first sighting and only then opened, so the OPENED
//                  event (the alert log's line that fail2ban reads) already
//                  carries the final scope, severity and every host that
//                  showed it in the window, each once: the opened delay is
//                  multi_host_window (0: at once, one host per alert). A
//                  thing gone from every host before then still opens (and
//                  resolves at once): it was there. Pending things live in
//                  memory only: a restart forgets them, and the agents' next
//                  snapshots start the hold again for what is still there.
//                  Socket and file facts come from the one fact model
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
// The rules themselves are pure functions in rules/ (path, speed, gaps,
// sockets, files): (baseline, result, now) -> (new baseline, conditions);
// the Analyzer keeps the baselines, feeds them results and turns their
// conditions into alert events. For sockets and files the pure part is a
// snapshot -> candidate keys with their words (rules/sockets.h, files.h);
// the Analyzer keeps each host's known keys (one analysis_state row per
// key, "known:KIND", no text format to parse) and does the set difference
// itself, because what follows it (the multi_host_window hold, grouping
// one thing across hosts) needs every host's pending things at once.
//
// State: every baseline lives in the store (analysis_state) as a
// netvigil.internal message (proto/netvigil/internal/baselines.proto) and
// is written through as it changes; Load() reads it and the unresolved
// alerts back. A baseline row that does not parse is logged
// (event=analysis_state_unreadable, naming agent, kind and key) and that
// baseline restarts learning; rows of older versions ("k=v" text) are
// converted once on Load and written back as messages.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_

#include <cstdint>
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
#include "collector/analysis/alert_book.h"
#include "collector/analysis/analysis_options.h"
#include "collector/analysis/rules/condition.h"
#include "collector/analysis/rules/path.h"
#include "collector/analysis/rules/speed.h"
#include "common/clock.h"
#include "common/model/facts.h"
#include "netvigil/internal/baselines.pb.h"
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
  // A notification channel failing for longer than notify.fail_alert_after
  // raises notify_failed (collector/notify/notifier.h); its recovery
  // resolves it.
  void OnNotifyChannel(const std::string& channel, bool failing,
                       const std::string& error);
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
  using Condition = rules::Condition;
  using Thing = rules::Thing;
  using AlertKey = rules::AlertKey;
  struct AgentState {
    absl::Time first_result = absl::InfiniteFuture();
    std::set<std::string> seen_kinds;  // probe kinds with history
    // alert kind -> keys; hashed: every key of every snapshot is looked up.
    std::map<std::string, absl::flat_hash_set<std::string>> known;
  };
  // A new thing held for multi_host_window before its alert opens.
  struct Pending {
    absl::Time first_seen;
    std::string summary;  // of the first sighting, without "on HOST"
    std::string remote_address;
    v1::Severity single = v1::SEVERITY_WARNING;
    v1::Severity multi = v1::SEVERITY_CRITICAL;
    std::set<std::string> hosts;         // every host that showed it, once
    std::set<std::string> present;       // hosts whose latest snapshot shows it
    std::vector<v1::Evidence> evidence;  // one entry per host
    std::map<std::string, std::string> details;
  };

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

  // The book's Raise; Resolve also forgets which hosts showed a new thing;
  // Reconcile is the book's (resolves or merges the open alerts of `kind`
  // that are neither in `conds` nor `held`).
  void Raise(const Condition& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Opens the alerts of the pending things whose hold is over at `now`.
  void ReleasePending(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reconcile(const std::string& kind,
                 const std::map<std::string, Condition>& conds,
                 const std::set<std::string>& held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Resolve(const AlertKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void PersistPath(const std::string& agent, const std::string& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistSpeed(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistGaps(const std::string& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistRow(AnalysisStateRow row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises and resolves what a per-host rule asked for.
  void Apply(const rules::RuleOutput& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes what was queued under mu_ (state rows, alert and event rows),
  // after it is released; reserves alert ids when few are left.
  void Flush() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  static constexpr size_t kSpareIdsLow = 32;
  static constexpr size_t kSpareIdsBatch = 64;
  void ClockOffsetLocked(const std::string& agent, absl::Duration offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Alert> AcknowledgeAndLearn(int64_t id,
                                                const std::string& by,
                                                bool* reread)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OnResultLocked(const std::string& agent, const v1::Result& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies one stored row; a baseline row of an older version ("k=v"
  // text) is converted and appended to `rewrite`.
  void ApplyStateRow(const AnalysisStateRow& row,
                     std::vector<AnalysisStateRow>* rewrite)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AnalysisOptions options_;
  AlertStore& store_;  // Not owned.
  Clock& clock_;       // Not owned.

  // One writer at a time drains what mu_'s holders queued (see Flush).
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  // State rows queued under mu_, written by Flush in one transaction (a
  // first snapshot learns hundreds of keys: one commit, not hundreds).
  std::vector<AnalysisStateRow> buffered_ ABSL_GUARDED_BY(mu_);
  // The alert lifecycle: open alerts, events, listeners.
  AlertBook book_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, AgentState> agents_ ABSL_GUARDED_BY(mu_);
  // agent -> target -> baseline
  rules::PathBaselines paths_ ABSL_GUARDED_BY(mu_);
  // pair key -> baseline
  rules::SpeedBaselines speeds_ ABSL_GUARDED_BY(mu_);
  // agent -> what its open results_lost alert gathered
  std::map<std::string, internal::GapTotals> gaps_ ABSL_GUARDED_BY(mu_);
  // For "new thing" alerts: the hosts whose latest snapshot still shows it.
  std::map<AlertKey, std::set<std::string>> present_ ABSL_GUARDED_BY(mu_);
  // "New thing" alerts not opened yet (see the header comment).
  std::map<AlertKey, Pending> pending_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  model::OwnEndpoints own_ ABSL_GUARDED_BY(mu_);
  // agent -> its last clock offset and when it came (monotonic): when every
  // agent heard lately is off by the same amount, the collector's clock is
  // the likelier one to be wrong, and the clock_skew alert says so.
  struct ClockReading {
    absl::Duration offset;
    absl::Time at;
  };
  std::map<std::string, ClockReading> clock_readings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_ANALYZER_H_
