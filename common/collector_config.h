// The collector's configuration: one YAML file holding the whole home
// network's plan. Parsing is strict: an unknown key, a wrong type or a value
// out of range is an error naming the file, the line and the field.
// Thread-compatible: a CollectorConfig is a value.
#ifndef NETVIGIL_COMMON_COLLECTOR_CONFIG_H_
#define NETVIGIL_COMMON_COLLECTOR_CONFIG_H_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/notify_config.h"
#include "netvigil/v1/agent.pb.h"
#include "yaml-cpp/yaml.h"

namespace netvigil {

struct CollectorConfig {
  // Where it came from, for messages.
  std::string source = "<defaults>";
  // Where each field given in the file is: "probes.speed.period" ->
  // "collector.yaml:97:13". Errors that involve several fields (here and in
  // the analysis options' checks against the plan) name a line from it.
  std::map<std::string, std::string> where;

  // database
  std::string database_dsn = "host=/var/run/postgresql dbname=netvigil";
  // Where the Query service reads (a streaming replica); empty: database_dsn.
  std::string database_read_dsn;

  // listen
  std::string agent_listen = "0.0.0.0:7411";
  std::string query_socket = "/run/netvigil/query.sock";
  std::string query_tcp;  // empty: UNIX socket only; else TLS + admin cert
  // Enrollment (TLS, server authentication only); empty: none.
  std::string enroll_listen = "0.0.0.0:7412";
  // Prometheus /metrics (collector/metrics/); empty: off (the default).
  // Loopback addresses only (127.0.0.0/8, [::1]): the page has no TLS and
  // no credential and names every host and target, so an address off the
  // machine is refused rather than served in the clear.
  std::string metrics_listen;
  // The web dashboard (collector/web); empty: none (the default). On a
  // loopback address it is plain HTTP with no login; anywhere else HTTPS
  // with the collector's certificate and a password login.
  std::string web_listen;

  std::string state_dir = "/var/lib/netvigil";

  // pki: what `netvigil-collector pki init` puts in the server certificate.
  // Empty names: this host's name. The first name is the one agents pin.
  std::vector<std::string> pki_server_names;
  std::vector<std::string> pki_server_addresses;

  // agents
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration heartbeat_timeout = absl::Seconds(20);

  // probes: what every agent is told to do (sent in Welcome).
  v1::ProbePlan plan;

  // speed tests, scheduled by the collector
  absl::Duration speed_period = absl::Hours(1);
  absl::Duration speed_test_duration = absl::Seconds(10);
  // The room a test takes in the plan beyond its duration: the command's
  // round trip, iperf3's connect, authentication and summary exchange.
  // A test's slot is duration + overhead.
  absl::Duration speed_slot_overhead = absl::Seconds(3);
  uint32_t max_concurrent_speed_tests = 1;
  uint32_t speed_port = 5201;

  // analysis: the rules' thresholds are parsed by the analysis library
  // (collector/analysis/analysis_options.h) from this node, which keeps its
  // line numbers for errors. Null when the file has no `analysis:` section.
  YAML::Node analysis;

  // retention (README "Storage"): days each kind of row is kept. Time
  // tables are partitioned by day or month and lose whole partitions, so a
  // row lives at least its days and at most one partition longer.
  uint32_t raw_days = 7;       // path runs, speed results (then hourly)
  uint32_t hourly_days = 365;  // path_hourly, speed_hourly
  uint32_t results_days = 7;   // results rows (payloads, dedup record)
  uint32_t events_days = 90;   // socket_event_sets, socket_events, file_events
  uint32_t gone_facts_days = 90;  // facts no longer present, after last seen
  uint32_t resolved_alerts_days = 90;  // resolved alerts with their events
  uint32_t gaps_days = 365;            // the record of lost results
  uint32_t outbox_days = 30;           // notifications sent or expired

  // alerts
  std::string alert_log;  // empty: no alert log

  // web: the dashboard's sessions (off loopback). A session ends after
  // this long without a request.
  absl::Duration web_session_idle = absl::Hours(12);
  // Where `web-password set` keeps the password's hash (mode 0600); empty:
  // <state_dir>/web-password.
  std::string web_password_file;
  // notify (common/notify_config.h)
  NotifyConfig notify;
};

// The configuration a file with no keys gives: every default filled in.
CollectorConfig DefaultCollectorConfig();

// "FILE:LINE:COL: " of the first of `fields` the file gave, else "FILE: ":
// the prefix of an error about a combination of fields.
std::string WhereInConfig(const CollectorConfig& config,
                          std::initializer_list<absl::string_view> fields);

// Parses YAML text; `source` names it in errors ("collector.yaml:12:3: ...").
// Refused: an empty file (no YAML document; `{}` is the explicit "all
// defaults"), a key given twice in one mapping (both lines named), a listen
// address that is not HOST:PORT with a port from 1 to 65535, and
// combinations of fields that cannot work.
absl::StatusOr<CollectorConfig> ParseCollectorConfig(absl::string_view yaml,
                                                     absl::string_view source);

// Reads and parses a file.
absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_COLLECTOR_CONFIG_H_
