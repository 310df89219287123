#include "collector/analysis/rules/sockets.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace netvigil::collector::rules {
namespace {

const char* ProtoName(v1::Transport t) {
  return t == v1::TRANSPORT_UDP ? "udp" : "tcp";
}

// Alert keys of socket facts. Their spelling is the one analysis_state's
// known sets were written in, so a baseline survives an upgrade.
std::string ListenerKey(const model::SocketFact& f) {
  return absl::StrCat(ProtoName(f.proto), " ",
                      model::HostPort(f.local_address, f.local_port), " ",
                      f.owner);
}

std::string InboundKey(const model::SocketFact& f) {
  return absl::StrCat(ProtoName(f.proto), " ", f.owner, " :", f.local_port,
                      " <- ", f.remote_address);
}

std::string RemoteKey(const model::SocketFact& f, const AnalysisOptions& o) {
  return absl::StrCat(ProtoName(f.proto), " ", f.owner, " -> ",
                      PortClass(f.remote_port, o));
}

bool IsLan(const std::string& address, const model::OwnEndpoints& own) {
  return model::IsPrivateAddress(address) || own.agents.count(address) > 0;
}

std::string Shown(const std::string& owner) {
  return owner == "?" ? std::string("unknown process") : owner;
}

std::map<std::string, std::string> BaseDetails(const model::SocketFact& f) {
  return {{"proto", ProtoName(f.proto)},
          {"exe", f.owner},
          {"fact", model::FactText(f)}};
}

}  // namespace

// Named services group their ports; any other port below the ephemeral
// range is its own class; ports in the ephemeral range are one class
// ("dynamic": peer-to-peer and passive transfers use them at random).
std::string PortClass(uint32_t port, const AnalysisOptions& o) {
  struct Named {
    uint32_t lo, hi;
    const char* name;
  };
  static constexpr Named kNamed[] = {
      {80, 80, "web"},      {443, 443, "web"},    {8080, 8080, "web"},
      {8443, 8443, "web"},  {53, 53, "dns"},      {853, 853, "dns"},
      {123, 123, "ntp"},    {22, 22, "ssh"},      {25, 25, "mail"},
      {465, 465, "mail"},   {587, 587, "mail"},   {110, 110, "mail"},
      {995, 995, "mail"},   {143, 143, "mail"},   {993, 993, "mail"},
      {194, 194, "irc"},    {6660, 6669, "irc"},  {6697, 6697, "irc"},
      {5222, 5223, "xmpp"}, {5269, 5269, "xmpp"},
  };
  for (const Named& n : kNamed) {
    if (port >= n.lo && port <= n.hi) return n.name;
  }
  if (port >= o.ephemeral_port_min && port <= o.ephemeral_port_max) {
    return "dynamic";
  }
  return absl::StrCat("port ", port);
}

std::string RemoteKeyOfStored(const std::string& key,
                              const AnalysisOptions& o) {
  // Before the port classes a known remote was one endpoint: "tcp exe ->
  // 1.2.3.4:443" or "tcp exe -> [v6]:443". It teaches its class, so an
  // upgraded collector does not find every known program news again.
  const size_t arrow = key.rfind(" -> ");
  if (arrow == std::string::npos) return key;
  const size_t colon = key.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon < arrow ||
      !absl::SimpleAtoi(absl::string_view(key).substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return key;  // already a class ("web", "port 4444", "dynamic")
  }
  return absl::StrCat(key.substr(0, arrow + 4), PortClass(port, o));
}

SocketCandidates SocketCandidatesOf(const v1::SocketSnapshot& snap,
                                    const model::OwnEndpoints& own,
                                    const AnalysisOptions& o) {
  SocketCandidates out;
  // The one fact model decides what the same socket is; the rules below
  // only decide which facts are news (README, "What is news").
  model::FactOptions fo;
  fo.ephemeral_port_min = o.ephemeral_port_min;
  fo.ephemeral_port_max = o.ephemeral_port_max;
  out.facts = model::SocketFactsOf(snap, fo);
  out.sources.reserve(out.facts.size());
  for (const auto& [f, info] : out.facts) {
    // netvigil's own traffic is never news: by the agent's word (its link,
    // its iperf3 server and clients) or by what the collector knows (the
    // other end of a speed test: an agent's or a target's iperf3 port).
    if (info.agent_own || model::IsOwnTraffic(f, own)) continue;
    const size_t i = out.sources.size();
    switch (f.kind) {
      case model::SocketFactKind::kListener:
        out.listeners[ListenerKey(f)] = i;
        break;
      case model::SocketFactKind::kInbound:
        // A LAN peer of a listener is not news (the listener was); a peer
        // from outside the LAN is, per address.
        if (IsLan(f.remote_address, own)) continue;
        out.inbound[InboundKey(f)] = i;
        break;
      case model::SocketFactKind::kRemote:
        // Local IPC: the listener at the other end was the news.
        if (model::IsLoopbackAddress(f.remote_address)) continue;
        out.remotes[RemoteKey(f, o)] = i;
        break;
    }
    out.sources.push_back(&f);
  }
  return out;
}

Thing DescribeListener(const model::SocketFact& f) {
  const std::string where = model::HostPort(f.local_address, f.local_port);
  // Across hosts, a listener on the host's own address is the same
  // listener whatever that address is.
  const std::string shared_where =
      model::IsWildcardAddress(f.local_address) ||
              model::IsLoopbackAddress(f.local_address)
          ? where
          : model::HostPort("<host>", f.local_port);
  Thing t{absl::StrCat(ProtoName(f.proto), " ", shared_where, " ", f.owner),
          absl::StrCat("new listener ", ProtoName(f.proto), " ", where, " (",
                       Shown(f.owner), ")"),
          "", BaseDetails(f)};
  t.details["local_address"] = f.local_address;
  t.details["local_port"] = absl::StrCat(f.local_port);
  return t;
}

Thing DescribeInbound(const model::SocketFact& f) {
  Thing t{
      "",
      absl::StrCat("new peer ", f.remote_address,
                   " from outside the LAN connected to ", ProtoName(f.proto),
                   " port ", f.local_port, " (", Shown(f.owner), ")"),
      f.remote_address, BaseDetails(f)};
  t.details["local_port"] = absl::StrCat(f.local_port);
  t.details["remote_address"] = f.remote_address;
  return t;
}

Thing DescribeRemote(const model::SocketFact& f,
                     const absl::flat_hash_set<std::string>& known_remotes,
                     const AnalysisOptions& o) {
  const std::string endpoint =
      absl::StrCat(ProtoName(f.proto), " ",
                   model::HostPort(f.remote_address, f.remote_port));
  // Has this program talked out before (any class)?
  const std::string prefix =
      absl::StrCat(ProtoName(f.proto), " ", f.owner, " -> ");
  bool talked = false;
  for (const std::string& k : known_remotes) {
    if (absl::StartsWith(k, prefix)) {
      talked = true;
      break;
    }
  }
  const std::string cls = PortClass(f.remote_port, o);
  Thing t{"",
          talked ? absl::StrCat(Shown(f.owner),
                                " talks out on a port class "
                                "it never used (",
                                cls, "): ", endpoint)
                 : absl::StrCat("first outbound connection of ", Shown(f.owner),
                                " (", cls, "): ", endpoint),
          f.remote_address, BaseDetails(f)};
  t.details["port_class"] = cls;
  t.details["remote_address"] = f.remote_address;
  t.details["remote_port"] = absl::StrCat(f.remote_port);
  return t;
}

}  // namespace netvigil::collector::rules
