// Fuzzes the speed probe's reader of `iperf3 --json` output: the bytes are
// what the iperf3 child wrote (tests/fixtures/iperf3/*.json are real runs
// and errors); the far end of a test (its figures come back through the
// server) or a broken iperf3 can make it say anything. Properties: no crash,
// exception or sanitizer report; a failure carries its reason; a result
// survives the wire and passes the collector's validation, which would
// otherwise refuse it on every resend.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/probes/speed_probe.h"
#include "collector/ingest/validation.h"
#include "google/protobuf/util/time_util.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  absl::StatusOr<v1::SpeedResult> r = agent::ParseIperf3Json(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) return 0;
  fuzz::CheckSurvivesWire(*r);
  if (r->outcome() == v1::SPEED_OUTCOME_FAILED && r->error().empty()) {
    fuzz::Fail("a failed speed result without a reason");
  }
  // As RunSpeedTest sends it: the parsed figures, its own times.
  v1::Result result;
  result.set_seq(1);
  *result.mutable_produced_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(fuzz::kNowUnixS);
  v1::SpeedResult& s = *result.mutable_speed();
  s.set_outcome(r->outcome());
  s.set_error(r->error());
  s.set_duration_s(r->duration_s());
  *s.mutable_forward() = r->forward();
  *s.mutable_reverse_figures() = r->reverse_figures();
  absl::Status valid = collector::ValidateResult(result, fuzz::kNowUnixS,
                                                 collector::DefaultLimits());
  if (!valid.ok()) {
    fuzz::Fail("the collector refuses a parsed speed result: " +
               std::string(valid.message()));
  }
  return 0;
}
