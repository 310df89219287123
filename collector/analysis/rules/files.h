// The file rules as pure functions: which processes of a files snapshot may
// be news (a process new under the watched folders; a hidden or deleted
// executable holding files there), keyed by the fact model's owner, and the
// words of their alerts. Thread-safe.
#ifndef NETVIGIL_COLLECTOR_ANALYSIS_RULES_FILES_H_
#define NETVIGIL_COLLECTOR_ANALYSIS_RULES_FILES_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "collector/analysis/rules/condition.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::collector::rules {

// owner -> index of the first entry that shows it.
struct FileCandidates {
  absl::flat_hash_map<std::string, size_t> processes, hidden;
  uint32_t no_exe = 0;  // entries with neither exe nor name: skipped
};

FileCandidates FileCandidatesOf(const v1::FileSnapshot& snap);
Thing DescribeFileProcess(const v1::FileEntry& e);
Thing DescribeHiddenExe(const v1::FileEntry& e);

}  // namespace netvigil::collector::rules

#endif  // NETVIGIL_COLLECTOR_ANALYSIS_RULES_FILES_H_
