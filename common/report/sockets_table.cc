#include "common/report/sockets_table.h"

#include "absl/strings/str_cat.h"
#include "common/report/table.h"

namespace netvigil::report {
namespace {

// ss's "address:port" into `out` (cleared first): IPv6 in brackets, "*" for
// port 0, "%dev" when bound. Like ss, an IPv6 wildcard that also takes IPv4
// (IPV6_V6ONLY off) is "*", and "[::]" only when it takes IPv6 alone.
void Endpoint(const std::string& address, uint32_t port,
              const v1::SocketEntry& e, const std::string& interface,
              std::string* out) {
  out->clear();
  if (e.family() == 6 && e.has_v6_only() && !e.v6_only() && address == "::") {
    out->push_back('*');
  } else if (e.family() == 6) {
    absl::StrAppend(out, "[", address, "]");
  } else {
    out->append(address);
  }
  if (!interface.empty()) absl::StrAppend(out, "%", interface);
  if (port == 0) {
    out->append(":*");
  } else {
    absl::StrAppend(out, ":", port);
  }
}

}  // namespace

std::string FormatSocketsTable(const v1::SocketSnapshot& snapshot) {
  std::string out;
  // About 120 bytes a row: one allocation instead of a doubling series.
  out.reserve(128 * (static_cast<size_t>(snapshot.sockets_size()) + 1));
  // "%-5s %-10s %-40s %-40s %s\n", written with plain appends.
  static constexpr TableColumn kColumns[] = {{5}, {10}, {40}, {40}, {0}};
  auto row = [&out](std::initializer_list<absl::string_view> cells) {
    AppendRow(&out, kColumns, cells);
    out.push_back('\n');
  };
  row({"Netid", "State", "Local Address:Port", "Peer Address:Port", "Process"});
  std::string local, peer, users;  // Reused from row to row.
  for (const v1::SocketEntry& e : snapshot.sockets()) {
    users.clear();
    if (e.processes_size() > 0) {
      users = "users:(";
      for (int i = 0; i < e.processes_size(); ++i) {
        const v1::ProcessRef& p = e.processes(i);
        absl::StrAppend(&users, i > 0 ? "," : "", "(\"", p.name(),
                        "\",pid=", p.pid(), ")");
      }
      users += ")";
    }
    Endpoint(e.local_address(), e.local_port(), e, e.interface(), &local);
    Endpoint(e.remote_address(), e.remote_port(), e, "", &peer);
    row({e.proto() == v1::TRANSPORT_TCP ? "tcp" : "udp", e.state(), local, peer,
         users});
  }
  return out;
}

}  // namespace netvigil::report
