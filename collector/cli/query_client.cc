#include "collector/cli/query_client.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace netvigil::cli {

std::string DefaultSocket() {
  const char* env = std::getenv("NETVIGIL_QUERY_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/netvigil/query.sock";
}

std::unique_ptr<v1::Query::Stub> MakeStub(const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  if (!options.collector.empty() && options.tls) {
    PinServerName(*options.tls, args);
    return v1::Query::NewStub(grpc::CreateCustomChannel(
        options.collector, ClientCredentials(*options.tls), args));
  }
  auto channel =
      grpc::CreateCustomChannel(absl::StrCat("unix:", options.socket),
                                grpc::InsecureChannelCredentials(), args);
  return v1::Query::NewStub(channel);
}

std::string Target(const ClientOptions& options) {
  return options.collector.empty() ? absl::StrCat("unix:", options.socket)
                                   : options.collector;
}

void SetDeadline(grpc::ClientContext& ctx, const ClientOptions& options) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options.timeout));
}

int ReportError(const grpc::Status& status, const ClientOptions& options) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // The transport's own failures mean nobody is listening; a message
      // from the collector itself (database down) is passed on as it is.
      if (status.error_message().find("database") != std::string::npos) {
        std::fprintf(stderr, "netvigil: %s\n", status.error_message().c_str());
        return kExitUnavailable;
      }
      std::fprintf(stderr, "netvigil: cannot reach the collector at %s (%s)\n",
                   Target(options).c_str(), status.error_message().c_str());
      return kExitUnreachable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::fprintf(stderr,
                   "netvigil: the collector at %s did not answer within "
                   "%s\n",
                   Target(options).c_str(),
                   absl::FormatDuration(options.timeout).c_str());
      return kExitUnreachable;
    case grpc::StatusCode::NOT_FOUND:
      std::fprintf(stderr, "netvigil: %s\n", status.error_message().c_str());
      return kExitNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
      std::fprintf(stderr, "netvigil: %s\n", status.error_message().c_str());
      return kExitInvalid;
    default:
      std::fprintf(stderr, "netvigil: %s (code %d)\n",
                   status.error_message().c_str(),
                   static_cast<int>(status.error_code()));
      return kExitFailure;
  }
}

}  // namespace netvigil::cli
