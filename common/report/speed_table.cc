#include "common/report/speed_table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/escape.h"

namespace netvigil::report {
namespace {

std::string Rate(double bps) {
  if (bps >= 1e9) return absl::StrFormat("%.2f Gbit/s", bps / 1e9);
  if (bps >= 1e6) return absl::StrFormat("%.2f Mbit/s", bps / 1e6);
  return absl::StrFormat("%.2f Kbit/s", bps / 1e3);
}

void Row(std::string& out, const char* direction, const v1::SpeedFigures& f,
         bool udp) {
  if (udp) {
    absl::StrAppendFormat(
        &out, "%-16s %14s %14s %10.3f %8llu/%-8llu %6.2f%%\n", direction,
        Rate(f.sent_bps()), Rate(f.received_bps()), f.jitter_ms(),
        static_cast<unsigned long long>(f.lost_packets()),
        static_cast<unsigned long long>(f.packets()), f.lost_percent());
  } else {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %8llu\n", direction,
                          Rate(f.sent_bps()), Rate(f.received_bps()),
                          static_cast<unsigned long long>(f.retransmits()));
  }
}

}  // namespace

std::string FormatSpeedTable(const v1::SpeedResult& r) {
  std::string out =
      absl::StrFormat("%s %s port %u, %s, %.1f s\n",
                      r.server().empty() ? "server" : Printable(r.server()),
                      Printable(r.server_address()), r.server_port(),
                      r.udp() ? "UDP" : "TCP", r.duration_s());
  if (r.outcome() != v1::SPEED_OUTCOME_OK) {
    absl::StrAppend(&out, "FAILED: ", Printable(r.error()), "\n");
    return out;
  }
  if (r.udp()) {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %10s %17s %7s\n", "direction",
                          "sent", "received", "jitter ms", "lost/total",
                          "loss");
  } else {
    absl::StrAppendFormat(&out, "%-16s %14s %14s %8s\n", "direction", "sent",
                          "received", "retr");
  }
  if (r.has_forward()) Row(out, "client->server", r.forward(), r.udp());
  if (r.has_reverse_figures()) {
    Row(out, "server->client", r.reverse_figures(), r.udp());
  }
  return out;
}

}  // namespace netvigil::report
