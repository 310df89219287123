#include "common/tls_client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace netvigil {

absl::StatusOr<ClientTls> LoadClientTls(const std::string& dir) {
  ClientTls t;
  NV_ASSIGN_OR_RETURN(t.ca_pem, pki::ReadFile(dir + "/ca.crt"));
  NV_ASSIGN_OR_RETURN(t.cert_pem, pki::ReadFile(dir + "/client.crt"));
  NV_ASSIGN_OR_RETURN(t.key_pem, pki::ReadFile(dir + "/client.key"));
  NV_ASSIGN_OR_RETURN(std::string name, pki::ReadFile(dir + "/server_name"));
  t.server_name = std::string(absl::StripAsciiWhitespace(name));
  if (!pki::KeyMatchesCert(t.key_pem, t.cert_pem)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/client.key does not belong to ", dir, "/client.crt"));
  }
  return t;
}

absl::Status SaveClientTls(const std::string& dir, const ClientTls& tls) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir, ": ", strerror(errno)));
  }
  NV_RETURN_IF_ERROR(
      pki::WriteFileAtomic(dir + "/client.key", tls.key_pem, 0600));
  // The certificates are not secret, but every file of the agent's state
  // is its user's only (0600, the folder 0700): one rule to check.
  NV_RETURN_IF_ERROR(
      pki::WriteFileAtomic(dir + "/client.crt", tls.cert_pem, 0600));
  NV_RETURN_IF_ERROR(pki::WriteFileAtomic(dir + "/ca.crt", tls.ca_pem, 0600));
  NV_RETURN_IF_ERROR(
      pki::WriteFileAtomic(dir + "/server_name", tls.server_name + "\n", 0600));
  // Enrolled as root into a service's state folder (the package's agent
  // runs as `netvigil`): the files belong to the folder's owner, or the
  // service could not read its own key.
  struct stat st;
  if (geteuid() == 0 && stat(dir.c_str(), &st) == 0 && st.st_uid != 0) {
    for (const char* f :
         {"client.key", "client.crt", "ca.crt", "server_name"}) {
      const std::string path = dir + "/" + f;
      if (chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot give ", path, " to the owner of ", dir, ": ",
                         strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(
    const ClientTls& tls) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = tls.ca_pem;
  o.pem_private_key = tls.key_pem;
  o.pem_cert_chain = tls.cert_pem;
  return grpc::SslCredentials(o);
}

void PinServerName(const ClientTls& tls, grpc::ChannelArguments& args) {
  if (!tls.server_name.empty()) {
    args.SetSslTargetNameOverride(tls.server_name);
  }
}

}  // namespace netvigil
