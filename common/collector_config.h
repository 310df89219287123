// The collector's configuration: one YAML file holding the whole home
// network's plan. Parsing is strict: an unknown key, a wrong type or a value
// out of range is an error naming the file, the line and the field.
// Thread-compatible: a CollectorConfig is a value.
#ifndef NETVIGIL_COMMON_COLLECTOR_CONFIG_H_
#define NETVIGIL_COMMON_COLLECTOR_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netvigil/v1/agent.pb.h"
#include "yaml-cpp/yaml.h"

namespace netvigil {

struct CollectorConfig {
  // Where it came from, for messages.
  std::string source = "<defaults>";

  // database
  std::string database_dsn = "host=/var/run/postgresql dbname=netvigil";

  // listen
  std::string agent_listen = "0.0.0.0:7411";
  std::string query_socket = "/run/netvigil/query.sock";
  std::string query_tcp;  // empty: UNIX socket only; else TLS + admin cert
  // Enrollment (TLS, server authentication only); empty: none.
  std::string enroll_listen = "0.0.0.0:7412";

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
  uint32_t max_concurrent_speed_tests = 1;
  uint32_t speed_port = 5201;

  // analysis: the rules' thresholds are parsed by the analysis library
  // (collector/analysis/analysis_options.h) from this node, which keeps its
  // line numbers for errors. Null when the file has no `analysis:` section.
  YAML::Node analysis;

  // retention
  uint32_t raw_days = 7;
  uint32_t hourly_days = 365;

  // alerts
  std::string alert_log;  // empty: no alert log
};

// The configuration a file with no keys gives: every default filled in.
CollectorConfig DefaultCollectorConfig();

// Parses YAML text; `source` names it in errors ("collector.yaml:12:3: ...").
absl::StatusOr<CollectorConfig> ParseCollectorConfig(absl::string_view yaml,
                                                     absl::string_view source);

// Reads and parses a file.
absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& path);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_COLLECTOR_CONFIG_H_
