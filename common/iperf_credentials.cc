#include "common/iperf_credentials.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace netvigil {
namespace {

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};

absl::StatusOr<std::string> BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) {
    return absl::InternalError("OpenSSL wrote no PEM");
  }
  return std::string(data, static_cast<size_t>(n));
}

std::string Hex(const unsigned char* data, size_t n) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(data), n));
}

}  // namespace

absl::StatusOr<IperfKeyPair> NewIperfKeyPair(int bits) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) <= 0) {
    return absl::InternalError("OpenSSL cannot set up RSA key generation");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) <= 0) {
    return absl::InternalError("OpenSSL RSA key generation failed");
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> key(raw);
  std::unique_ptr<BIO, BioFree> priv(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioFree> pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    return absl::InternalError("OpenSSL cannot write the RSA key as PEM");
  }
  IperfKeyPair out;
  absl::StatusOr<std::string> p = BioText(priv.get());
  if (!p.ok()) return p.status();
  out.private_pem = std::move(*p);
  p = BioText(pub.get());
  if (!p.ok()) return p.status();
  out.public_pem = std::move(*p);
  return out;
}

absl::StatusOr<std::string> RandomBytes(size_t bytes) {
  std::string out(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(bytes)) != 1) {
    return absl::InternalError("OpenSSL's random generator failed");
  }
  return out;
}

std::string DeriveIperfPassword(absl::string_view secret,
                                absl::string_view agent) {
  const std::string message = absl::StrCat("iperf3:", agent);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &n);
  return Hex(mac, n);
}

std::string IperfPasswordSha256(absl::string_view username,
                                absl::string_view password) {
  const std::string salted = absl::StrCat("{", username, "}", password);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(salted.data(), salted.size(), digest, &n, EVP_sha256(), nullptr);
  return Hex(digest, n);
}

bool ValidIperfUsername(absl::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '#') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::string> AuthorizedUsersFile(
    const std::vector<v1::IperfUser>& users) {
  std::string out = "# netvigil: iperf3 users issued by the collector\n";
  for (const v1::IperfUser& u : users) {
    if (!ValidIperfUsername(u.username())) {
      return absl::InvalidArgumentError(
          absl::StrCat("iperf3 username '", absl::CHexEscape(u.username()),
                       "' is not allowed"));
    }
    const std::string& h = u.password_sha256();
    bool hex = h.size() == 64;
    for (char c : h) hex = hex && absl::ascii_isxdigit(c);
    if (!hex) {
      return absl::InvalidArgumentError(absl::StrCat(
          "iperf3 user '", u.username(), "' has no SHA-256 password hash"));
    }
    absl::StrAppend(&out, u.username(), ",", absl::AsciiStrToLower(h), "\n");
  }
  return out;
}

}  // namespace netvigil
