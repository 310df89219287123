#include "collector/cli/query_client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/escape.h"
#include "common/human_units.h"

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

namespace {

// Why nothing answers at the UNIX socket, found the way the CLI itself
// would connect, so the message names the cause rather than gRPC's words.
std::string SocketTrouble(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == EACCES) {
      return "permission denied on its folder (join the group netvigil, "
             "or use sudo)";
    }
    return "no such socket: is netvigil-collector running, and is this its "
           "listen.query_socket?";
  }
  if (!S_ISSOCK(st.st_mode)) return "that file is not a socket";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    ::close(fd);
    return "the socket's path is too long";
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc == 0) return "";  // Something listens: the trouble is elsewhere.
  if (err == EACCES) {
    return "permission denied (join the group netvigil, or use sudo)";
  }
  if (err == ECONNREFUSED) {
    return "nothing listens there: the collector is not running (it left "
           "its socket behind)";
  }
  return std::strerror(err);
}

// gRPC's own words for a transport that never reached a server, as opposed
// to an UNAVAILABLE status the collector sent (an agent not connected, its
// database down).
bool TransportFailure(const std::string& message) {
  // The collector's own words about its database may quote libpq's ("No
  // such file or directory", "Connection refused"): they are not ours.
  if (message.find("database") != std::string::npos) return false;
  for (const char* words :
       {"failed to connect", "Connection refused", "DNS resolution failed",
        "Socket closed", "handshake", "Connect Failed", "connections to all",
        "No such file", "Permission denied", "Broken pipe", "Connection reset",
        "ssl", "SSL", "Name resolution"}) {
    if (message.find(words) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status,
                      const ClientOptions& options) {
  // The collector's words may quote an agent's (a refusal's reason).
  const std::string message = Printable(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::UNAVAILABLE: {
      if (options.collector.empty()) {
        // Over the socket, try it the plain way: if something listens, the
        // UNAVAILABLE came from the collector and its words are for people.
        const std::string trouble = SocketTrouble(options.socket);
        if (!trouble.empty()) {
          return absl::UnavailableError(absl::StrCat(
              "cannot reach the collector at ", options.socket, ": ", trouble));
        }
        if (TransportFailure(message)) {
          return absl::UnavailableError(
              absl::StrCat("cannot reach the collector at ", options.socket,
                           ": it did not answer as a netvigil collector does"));
        }
      } else if (TransportFailure(message)) {
        return absl::UnavailableError(absl::StrCat(
            "cannot reach the collector at ", options.collector,
            ": no connection, or TLS refused (is listen.query_tcp set, the "
            "port open, and --tls-dir from `netvigil-collector pki admin`?)"));
      }
      return absl::FailedPreconditionError(message);
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      // The collector's own deadline (an agent that did not answer a
      // probe) has its message; gRPC's client deadline says only this.
      if (!message.empty() && message != "Deadline Exceeded") {
        return absl::FailedPreconditionError(message);
      }
      return absl::UnavailableError(absl::StrCat(
          "the collector at ", Target(options), " did not answer within ",
          HumanDuration(options.timeout), " (--timeout)"));
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      // Refused as asked: by the collector (a bad range) or by the agent (a
      // target not in its plan, a probe its plan disables).
      return absl::OutOfRangeError(message);
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnknownError(absl::StrCat(
          "the collector at ", Target(options), " refused: ", message));
    default:
      return absl::UnknownError(message.empty() ? "the request failed"
                                                : message);
  }
}

}  // namespace netvigil::cli
