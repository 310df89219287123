// The speed probe: runs Debian's `iperf3 -c ... --json` through a
// ProcessRunner and turns its JSON into a v1::SpeedResult. Every failure
// (busy, refused, timeout, no route, bad output, iperf3 missing) is a result
// with outcome FAILED and a reason, never dropped. Thread-safe (stateless;
// the runner and clock are thread-safe).
#ifndef NETVIGIL_AGENT_PROBES_SPEED_PROBE_H_
#define NETVIGIL_AGENT_PROBES_SPEED_PROBE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "netvigil/v1/agent.pb.h"
#include "netvigil/v1/probes.pb.h"

namespace netvigil::agent {

// Error prefixes RunSpeedTest puts in SpeedResult.error, so the collector's
// scheduler (and people) can tell a busy server, to retry later, from a
// dead one.
inline constexpr absl::string_view kSpeedErrorBusy = "server busy";
inline constexpr absl::string_view kSpeedErrorRefused = "connection refused";
inline constexpr absl::string_view kSpeedErrorNoRoute = "no route";
inline constexpr absl::string_view kSpeedErrorTimeout = "timeout";
inline constexpr absl::string_view kSpeedErrorNotAuthorised = "not authorised";

// Parses one `iperf3 -c --json` document. Pure. A document carrying iperf3's
// own "error" is a FAILED result (with the classified reason); a document
// that is not iperf3 JSON, or has no end summary, is InvalidArgument.
// Fills udp, reverse, bidirectional, server_address/port, started_at (from
// iperf3's timestamp), duration_s and the figures: `forward` is client to
// server, `reverse_figures` server to client (-R, or the second half of
// --bidir).
absl::StatusOr<v1::SpeedResult> ParseIperf3Json(absl::string_view json);

// What an agent's iperf3 client shows a peer's authenticating iperf3 server
// (see common/iperf_credentials.h). The password goes to iperf3 through its
// environment (IPERF3_PASSWORD), never its command line.
struct IperfClientAuth {
  std::string username;
  std::string password;
  std::string public_key_path;  // the mesh's RSA public key, PEM
};

// The iperf3 client command line for `test`; with `auth`, the options that
// authenticate it. Pure.
std::vector<std::string> Iperf3ClientArgv(
    const v1::SpeedTest& test, bool bidirectional = false,
    const IperfClientAuth* auth = nullptr);

// A bitrate as iperf3's -b takes it: a number with an optional suffix
// k/K, m/M, g/G or t/T (powers of 1000, as iperf3 counts rates): "500K",
// "100M", "1G", "2.5g". 0 is iperf3's default (unlimited for TCP, 1 Mbit/s
// for UDP). InvalidArgument, naming the text, for anything else (iperf3's
// "/burst" suffix is not taken) or above 1e13 bit/s. Pure.
absl::StatusOr<uint64_t> ParseIperfBitrate(absl::string_view text);

// How long RunSpeedTest lets iperf3 run beyond the test's own duration
// (connect, parameter exchange, the final summary) before ending it.
inline constexpr absl::Duration kSpeedTestSlack = absl::Seconds(15);

// Runs one client test and always returns a result. `client` is left empty
// for the caller (the agent knows its own name); started_at and finished_at
// come from `clock`. The call blocks for about the test's duration and must
// run on a thread that outlives it (see ProcessRunner::Start).
// With `auth`, the client authenticates (a peer agent's server); without,
// it does not (an external target, a stock server).
v1::SpeedResult RunSpeedTest(ProcessRunner& runner, const v1::SpeedTest& test,
                             Clock& clock, bool bidirectional = false,
                             const IperfClientAuth* auth = nullptr);

}  // namespace netvigil::agent

#endif  // NETVIGIL_AGENT_PROBES_SPEED_PROBE_H_
