#include "agent/probes/speed_probe.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/utf8.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace netvigil::agent {
namespace {

using json = nlohmann::json;
using google::protobuf::util::TimeUtil;

// Lookups that never throw: iperf3 versions differ in what they write, and
// a missing or mistyped field is a default, not a crash.
const json* Child(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}
double Num(const json* j, const char* key) {
  const json* v = j == nullptr ? nullptr : Child(*j, key);
  return v != nullptr && v->is_number() ? v->get<double>() : 0.0;
}
uint64_t Count(const json* j, const char* key) {
  const json* v = j == nullptr ? nullptr : Child(*j, key);
  if (v == nullptr) return 0;
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  if (v->is_number_integer()) {
    const int64_t x = v->get<int64_t>();
    return x < 0 ? 0 : static_cast<uint64_t>(x);
  }
  if (v->is_number_float()) {
    const double x = v->get<double>();
    if (!std::isfinite(x) || x <= 0) return 0;
    // Converting a double beyond the range of uint64_t is undefined.
    constexpr double kTwoTo64 = 18446744073709551616.0;
    return x >= kTwoTo64 ? UINT64_MAX : static_cast<uint64_t>(x);
  }
  return 0;
}
std::string Str(const json* j, const char* key) {
  const json* v = j == nullptr ? nullptr : Child(*j, key);
  // JSON strings are UTF-8 but may hold \u0000, which the collector refuses.
  return v != nullptr && v->is_string() ? ToValidUtf8(v->get<std::string>())
                                        : std::string();
}

// One direction from the sender's and the receiver's summaries.
v1::SpeedFigures Figures(const json* sent, const json* received, bool udp) {
  v1::SpeedFigures f;
  f.set_sent_bps(Num(sent, "bits_per_second"));
  f.set_received_bps(Num(received, "bits_per_second"));
  f.set_bytes_sent(Count(sent, "bytes"));
  f.set_bytes_received(Count(received, "bytes"));
  f.set_retransmits(Count(sent, "retransmits"));
  if (udp) {
    // Loss and jitter are measured where the datagrams arrive.
    f.set_jitter_ms(Num(received, "jitter_ms"));
    f.set_lost_percent(Num(received, "lost_percent"));
    f.set_lost_packets(Count(received, "lost_packets"));
    f.set_packets(Count(received, "packets"));
  }
  return f;
}

// Bounds of what a parsed result may carry: the collector refuses figures
// (bits/s, seconds) above 1e13 and errors above 4096 bytes
// (collector/ingest/validation.cc).
constexpr double kMaxPlausibleFigure = 1e13;
constexpr size_t kMaxIperf3ErrorBytes = 1024;

// "the server is busy running a test. try again later" -> "server busy: ...".
std::string ClassifyError(absl::string_view message) {
  const std::string lower = absl::AsciiStrToLower(message);
  absl::string_view kind = "iperf3";
  if (absl::StrContains(lower, "authorization failed")) {
    kind = kSpeedErrorNotAuthorised;
  } else if (absl::StrContains(lower, "busy")) {
    kind = kSpeedErrorBusy;
  } else if (absl::StrContains(lower, "connection refused")) {
    kind = kSpeedErrorRefused;
  } else if (absl::StrContains(lower, "no route") ||
             absl::StrContains(lower, "network is unreachable") ||
             absl::StrContains(lower, "host is unreachable")) {
    kind = kSpeedErrorNoRoute;
  } else if (absl::StrContains(lower, "timed out") ||
             absl::StrContains(lower, "timeout")) {
    kind = kSpeedErrorTimeout;
  }
  return absl::StrCat(kind, ": ", message);
}

// Host names and addresses only: nothing iperf3 could take for an option.
bool PlausibleHost(absl::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-') return false;
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != ':' && c != '-' && c != '_' && c != '%') {
      return false;
    }
  }
  return true;
}

absl::Duration TestDuration(const v1::SpeedTest& test) {
  if (!test.has_duration()) return absl::Seconds(10);
  return absl::Seconds(test.duration().seconds()) +
         absl::Nanoseconds(test.duration().nanos());
}

}  // namespace

absl::StatusOr<v1::SpeedResult> ParseIperf3Json(absl::string_view text) {
  const json doc = json::parse(text.begin(), text.end(), nullptr,
                               /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("iperf3 output is not a JSON object");
  }
  const json* start = Child(doc, "start");
  const json* end = Child(doc, "end");
  if (start == nullptr && end == nullptr && Child(doc, "error") == nullptr) {
    return absl::InvalidArgumentError(
        "JSON has none of iperf3's start, end or error");
  }
  v1::SpeedResult r;
  const json* test_start = start ? Child(*start, "test_start") : nullptr;
  const json* connecting = start ? Child(*start, "connecting_to") : nullptr;
  const json* stamp = start ? Child(*start, "timestamp") : nullptr;
  r.set_server_address(Str(connecting, "host"));
  r.set_server_port(static_cast<uint32_t>(Count(connecting, "port")));
  r.set_udp(Str(test_start, "protocol") == "UDP");
  r.set_reverse(Count(test_start, "reverse") != 0);
  // A start time protobuf cannot hold (after 9999) is left unset: it is not
  // a time, and the collector would refuse it.
  if (const uint64_t secs = Count(stamp, "timesecs"); secs > 0) {
    google::protobuf::Timestamp at;
    at.set_seconds(static_cast<int64_t>(std::min<uint64_t>(secs, INT64_MAX)));
    if (IsValidTimestamp(at)) *r.mutable_started_at() = at;
  }

  if (const std::string error = Str(&doc, "error"); !error.empty()) {
    r.set_outcome(v1::SPEED_OUTCOME_FAILED);
    r.set_error(ClassifyError(TruncateUtf8(error, kMaxIperf3ErrorBytes)));
    return r;
  }
  if (end == nullptr) {
    return absl::InvalidArgumentError("iperf3 JSON has no end summary");
  }
  const json* sum_sent = Child(*end, "sum_sent");
  const json* sum_received = Child(*end, "sum_received");
  // Older iperf3 wrote UDP results only as end.sum.
  if (sum_sent == nullptr && sum_received == nullptr) {
    sum_sent = sum_received = Child(*end, "sum");
  }
  if (sum_sent == nullptr || !sum_sent->is_object()) {
    return absl::InvalidArgumentError("iperf3 JSON has no end.sum_sent");
  }
  const json* bidir_sent = Child(*end, "sum_sent_bidir_reverse");
  const json* bidir_received = Child(*end, "sum_received_bidir_reverse");
  r.set_bidirectional(bidir_sent != nullptr || bidir_received != nullptr);
  r.set_duration_s(Num(sum_sent, "seconds"));

  v1::SpeedFigures main = Figures(sum_sent, sum_received, r.udp());
  if (r.reverse() && !r.bidirectional()) {
    *r.mutable_reverse_figures() = main;
  } else {
    *r.mutable_forward() = main;
  }
  if (r.bidirectional()) {
    *r.mutable_reverse_figures() = Figures(bidir_sent, bidir_received, r.udp());
  }
  // The server's half of the figures is whatever the far end says; a result
  // the collector refuses would be resent forever, so nonsense is bad output.
  for (double v : {r.forward().sent_bps(), r.forward().received_bps(),
                   r.reverse_figures().sent_bps(),
                   r.reverse_figures().received_bps(), r.duration_s()}) {
    if (!(v >= 0 && v <= kMaxPlausibleFigure)) {
      return absl::InvalidArgumentError(
          absl::StrCat("iperf3 JSON has an implausible figure ", v));
    }
  }
  for (const v1::SpeedFigures* f : {&r.forward(), &r.reverse_figures()}) {
    if (!(f->jitter_ms() >= 0 && f->jitter_ms() <= kMaxPlausibleFigure) ||
        !(f->lost_percent() >= 0 && f->lost_percent() <= 100)) {
      return absl::InvalidArgumentError(
          "iperf3 JSON has an implausible jitter or loss");
    }
  }
  r.set_outcome(v1::SPEED_OUTCOME_OK);
  return r;
}

absl::StatusOr<uint64_t> ParseIperfBitrate(absl::string_view text) {
  const std::string shown(text.substr(0, 64));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bitrate '", ToValidUtf8(shown), "' ", why));
  };
  absl::string_view number = absl::StripAsciiWhitespace(text);
  double scale = 1;
  if (!number.empty()) {
    switch (number.back()) {
      case 'k':
      case 'K':
        scale = 1e3;
        break;
      case 'm':
      case 'M':
        scale = 1e6;
        break;
      case 'g':
      case 'G':
        scale = 1e9;
        break;
      case 't':
      case 'T':
        scale = 1e12;
        break;
      default:
        break;
    }
    if (scale != 1) number.remove_suffix(1);
  }
  // Digits and at most one point: no sign, exponent, hex, inf or nan.
  if (number.empty() || number.size() > 32 ||
      number.find_first_not_of("0123456789.") != absl::string_view::npos ||
      std::count(number.begin(), number.end(), '.') > 1 || number == ".") {
    return bad("is not a number with an optional K, M, G or T suffix");
  }
  double value;
  if (!absl::SimpleAtod(number, &value)) {
    return bad("is not a number with an optional K, M, G or T suffix");
  }
  value *= scale;
  if (!(value <= kMaxPlausibleFigure)) return bad("is above 10 Tbit/s");
  return static_cast<uint64_t>(std::llround(value));
}

std::vector<std::string> Iperf3ClientArgv(const v1::SpeedTest& test,
                                          bool bidirectional,
                                          const IperfClientAuth* auth) {
  const int64_t seconds = std::max<int64_t>(
      1,
      absl::ToInt64Seconds(absl::Ceil(TestDuration(test), absl::Seconds(1))));
  std::vector<std::string> argv = {
      "iperf3", "-c", test.address(), "-p", absl::StrCat(test.port()), "--json",
      "-t", absl::StrCat(seconds),
      // Without it a filtered address hangs in connect() for minutes.
      "--connect-timeout", "5000"};
  if (test.reverse()) argv.push_back("-R");
  if (bidirectional) argv.push_back("--bidir");
  if (test.udp()) argv.push_back("-u");
  if (test.bitrate_bps() > 0) {
    argv.push_back("-b");
    argv.push_back(absl::StrCat(test.bitrate_bps()));
  }
  if (auth != nullptr) {
    argv.insert(argv.end(), {"--username", auth->username,
                             "--rsa-public-key-path", auth->public_key_path});
  }
  return argv;
}

v1::SpeedResult RunSpeedTest(ProcessRunner& runner, const v1::SpeedTest& test,
                             Clock& clock, bool bidirectional,
                             const IperfClientAuth* auth) {
  v1::SpeedResult r;
  r.set_server(test.peer_agent().empty() ? test.external_target()
                                         : test.peer_agent());
  r.set_external(!test.external_target().empty());
  r.set_server_address(test.address());
  r.set_server_port(test.port());
  r.set_udp(test.udp());
  r.set_reverse(test.reverse());
  r.set_bidirectional(bidirectional);
  r.set_schedule_id(test.schedule_id());
  *r.mutable_started_at() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock.Now()));
  auto finish = [&](v1::SpeedOutcome outcome, std::string error) {
    r.set_outcome(outcome);
    r.set_error(std::move(error));
    *r.mutable_finished_at() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock.Now()));
    if (outcome != v1::SPEED_OUTCOME_OK) {
      spdlog::warn(
          "speed_test_failed server={} address={} port={} error=\"{}\"",
          r.server(), r.server_address(), r.server_port(), r.error());
    }
    return r;
  };

  const absl::Duration duration = TestDuration(test);
  if (!PlausibleHost(test.address())) {
    return finish(
        v1::SPEED_OUTCOME_FAILED,
        absl::StrCat("invalid server address '", test.address(), "'"));
  }
  if (test.port() == 0 || test.port() > 65535) {
    return finish(v1::SPEED_OUTCOME_FAILED,
                  absl::StrCat("invalid server port ", test.port()));
  }
  if (duration <= absl::ZeroDuration() || duration > absl::Hours(1)) {
    return finish(
        v1::SPEED_OUTCOME_FAILED,
        absl::StrCat("invalid duration ", absl::FormatDuration(duration)));
  }

  std::vector<std::string> env;
  if (auth != nullptr) env.push_back("IPERF3_PASSWORD=" + auth->password);
  absl::StatusOr<pid_t> pid =
      runner.StartWithEnv(Iperf3ClientArgv(test, bidirectional, auth), env);
  if (!pid.ok()) {
    return finish(v1::SPEED_OUTCOME_FAILED,
                  absl::StrCat("cannot run iperf3: ", pid.status().message()));
  }
  const absl::Duration limit =
      absl::Ceil(duration, absl::Seconds(1)) + kSpeedTestSlack;
  absl::StatusOr<ProcessExit> exit = runner.Wait(*pid, limit);
  if (absl::IsDeadlineExceeded(exit.status())) {
    (void)runner.Terminate(*pid, absl::Seconds(2));
    (void)runner.Wait(*pid, absl::Seconds(5));
    return finish(
        v1::SPEED_OUTCOME_FAILED,
        absl::StrCat(kSpeedErrorTimeout, ": iperf3 did not finish within ",
                     absl::FormatDuration(limit)));
  }
  if (!exit.ok()) {
    return finish(
        v1::SPEED_OUTCOME_FAILED,
        absl::StrCat("waiting for iperf3: ", exit.status().message()));
  }
  absl::StatusOr<v1::SpeedResult> parsed = ParseIperf3Json(exit->stdout_text);
  if (!parsed.ok()) {
    std::string err =
        std::string(absl::StripAsciiWhitespace(exit->stderr_text));
    err = TruncateUtf8(ToValidUtf8(err), 300);  // A child writes any bytes.
    return finish(v1::SPEED_OUTCOME_FAILED,
                  absl::StrCat("bad iperf3 output: ", parsed.status().message(),
                               " (exit code ", exit->exit_code,
                               err.empty() ? "" : ", stderr: ", err, ")"));
  }
  r.set_duration_s(parsed->duration_s());
  r.set_bidirectional(parsed->bidirectional() || bidirectional);
  if (parsed->has_forward()) *r.mutable_forward() = parsed->forward();
  if (parsed->has_reverse_figures()) {
    *r.mutable_reverse_figures() = parsed->reverse_figures();
  }
  if (parsed->outcome() != v1::SPEED_OUTCOME_OK) {
    return finish(parsed->outcome(), parsed->error());
  }
  if (exit->exit_code != 0) {
    return finish(v1::SPEED_OUTCOME_FAILED,
                  absl::StrCat("iperf3 exited with code ", exit->exit_code,
                               exit->term_signal
                                   ? absl::StrCat(" signal ", exit->term_signal)
                                   : ""));
  }
  return finish(v1::SPEED_OUTCOME_OK, "");
}

}  // namespace netvigil::agent
