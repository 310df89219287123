// Fuzzes the collector's configuration parsers: the bytes are a
// collector.yaml. ParseCollectorConfig must answer with a config or an
// error (never a crash or an exception); the `analysis:` section of a
// config that parsed goes through ParseAnalysisOptions, and the whole text
// also goes there as if it were that section, so its parser sees mappings
// the outer parser would refuse.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collector/analysis/analysis_options.h"
#include "common/collector_config.h"
#include "tests/fuzz/fuzz_support.h"
#include "yaml-cpp/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<CollectorConfig> config =
      ParseCollectorConfig(text, "fuzz.yaml");
  if (config.ok()) {
    fuzz::CheckSurvivesWire(config->plan);  // Sent to every agent.
    collector::AnalysisOptions options;
    (void)collector::ParseAnalysisOptions(config->analysis, "fuzz.yaml",
                                          &options);
    collector::AnalysisOptions checked;
    (void)collector::ParseAnalysisOptionsFor(*config, &checked);
  } else if (config.status().message().empty()) {
    fuzz::Fail("a config error without a message");
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException&) {
    return 0;  // ParseCollectorConfig reports these; checked above.
  }
  collector::AnalysisOptions options;
  (void)collector::ParseAnalysisOptions(root, "fuzz.yaml", &options);
  return 0;
}
