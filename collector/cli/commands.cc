#include "collector/cli/commands.h"

#include <cstdio>

#include "absl/strings/str_join.h"
#include "collector/cli/format.h"
#include "google/protobuf/util/json_util.h"

namespace netvigil::cli {

std::string ToJson(const google::protobuf::Message& msg) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out.empty() || out.back() != '\n' ? out + "\n" : out;
}

std::string RenderAgents(const v1::ListAgentsResponse& resp, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::AgentInfo& a : resp.agents()) {
    rows.push_back({a.name(),
                    a.addresses().empty() ? "-" : absl::StrJoin(a.addresses(), ","),
                    a.version().empty() ? "-" : a.version(),
                    a.online() ? "online" : "offline",
                    HumanAgo(a.last_seen(), now)});
  }
  if (rows.empty()) return "no agents have connected yet\n";
  return FormatTable({"NAME", "ADDRESS", "VERSION", "STATE", "LAST SEEN"},
                     rows);
}

int RunAgents(const ClientOptions& options, bool json) {
  auto stub = MakeStub(options);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options);
  v1::ListAgentsResponse resp;
  grpc::Status s = stub->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
  if (!s.ok()) return ReportError(s, options);
  const std::string out = json ? ToJson(resp) : RenderAgents(resp, absl::Now());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace netvigil::cli
