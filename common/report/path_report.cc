#include "common/report/path_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/escape.h"
#include "common/proto_time.h"
#include "common/wire_kinds.h"

namespace netvigil::report {
namespace {

constexpr int kHostColumn = 40;

std::string HopLabel(const v1::HopAddress& a) {
  if (a.hostname().empty()) return a.address();
  return absl::StrCat(a.hostname(), " (", a.address(), ")");
}

}  // namespace

std::string FormatPathReport(const v1::PathRun& run, const std::string& host) {
  std::string out;
  absl::Time started = FromProtoTime(run.started_at());
  absl::StrAppend(
      &out, "Start: ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%S%z", started, absl::UTCTimeZone()),
      "\n");
  // Names, reverse-DNS labels and errors go through the one escaping
  // (common/escape.h): a PTR record or a collector's target is any text.
  std::string target = Printable(run.target());
  if (!run.resolved_address().empty() &&
      run.resolved_address() != run.target()) {
    absl::StrAppend(&target, " (", Printable(run.resolved_address()), ")");
  }
  // A run stored before the kind was an enum has none: say nothing of it.
  const std::string socket = PathSocketKindName(run.socket_kind());
  absl::StrAppend(&out, "PATH: ", target, ", ", run.count(), " rounds every ",
                  absl::StrFormat("%.3g", run.interval_s()), " s, max TTL ",
                  run.max_ttl(), ", ", run.payload_bytes(), " bytes",
                  socket.empty() ? "" : absl::StrCat(", ", socket, " socket"),
                  "\n");
  absl::StrAppend(
      &out,
      absl::StrFormat("%-*s %6s %5s %5s %6s %6s %6s %6s %6s\n", kHostColumn,
                      "HOST: " + Printable(host), "Loss%", "Snt", "Rcv", "Last",
                      "Avg", "Best", "Wrst", "StDev"));
  for (const v1::PathHop& hop : run.hops()) {
    std::string first = hop.addresses_size() > 0
                            ? Printable(HopLabel(hop.addresses(0)))
                            : std::string("???");
    std::string label = absl::StrFormat("%3d.|-- %s", hop.ttl(), first);
    absl::StrAppend(
        &out,
        absl::StrFormat("%-*s %5.1f%% %5u %5u %6.1f %6.1f %6.1f %6.1f "
                        "%6.1f\n",
                        kHostColumn, label, hop.loss_percent(), hop.sent(),
                        hop.received(), hop.last_ms(), hop.avg_ms(),
                        hop.best_ms(), hop.worst_ms(), hop.stdev_ms()));
    for (int i = 1; i < hop.addresses_size(); ++i) {
      absl::StrAppend(&out, "    |  `|-- ",
                      Printable(HopLabel(hop.addresses(i))), " (",
                      hop.addresses(i).received(), " replies)\n");
    }
    for (const std::string& e : hop.errors()) {
      absl::StrAppend(&out, "    |   !! ", Printable(e), "\n");
    }
  }
  if (!run.error().empty()) {
    absl::StrAppend(&out, "ERROR: ", Printable(run.error()), "\n");
  }
  return out;
}

}  // namespace netvigil::report
