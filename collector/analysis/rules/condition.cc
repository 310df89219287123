#include "collector/analysis/rules/condition.h"

#include <algorithm>
#include <cmath>

#include "google/protobuf/util/time_util.h"

namespace netvigil::collector::rules {

google::protobuf::Timestamp Ts(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(t));
}

v1::Evidence MakeEvidence(const std::string& agent, uint64_t seq, absl::Time at,
                          const std::string& note) {
  v1::Evidence e;
  e.set_agent(agent);
  e.set_seq(seq);
  *e.mutable_at() = Ts(at);
  e.set_note(note);
  return e;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mad(const std::vector<double>& v, double median) {
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - median));
  return Median(dev);
}

}  // namespace netvigil::collector::rules
