#include "common/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace netvigil::pki {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Ext = std::unique_ptr<X509_EXTENSION,
                            Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// The last OpenSSL error as text, and the queue cleared.
std::string SslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

absl::Status Fail(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", SslError()));
}

Bio MemBio(absl::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioText(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, n > 0 ? n : 0);
}

absl::StatusOr<Key> ReadKey(absl::string_view pem) {
  Bio b = MemBio(pem);
  Key k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!k) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM private key");
  }
  return k;
}

absl::StatusOr<Cert> ReadCert(absl::string_view pem) {
  Bio b = MemBio(pem);
  Cert c(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!c) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return c;
}

std::string CertPem(X509* c) {
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), c);
  return BioText(b.get());
}

bool IsP256(EVP_PKEY* k) {
  if (!EVP_PKEY_is_a(k, "EC")) return false;
  char group[64] = {0};
  size_t len = 0;
  if (!EVP_PKEY_get_group_name(k, group, sizeof(group), &len)) return false;
  return std::string(group, len) == "prime256v1";
}

absl::Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

absl::Status SetSubject(X509_NAME* name, const CertSpec& spec) {
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(
        name, field, MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(value.data()),
        static_cast<int>(value.size()), -1, 0);
  };
  if (spec.common_name.empty() || spec.common_name.size() > 64) {
    return absl::InvalidArgumentError(
        "a certificate's name must be 1 to 64 characters");
  }
  if (!add("O", "netvigil") || !add("OU", spec.role) ||
      !add("CN", spec.common_name)) {
    return Fail("subject");
  }
  return absl::OkStatus();
}

absl::Status AddExt(X509* cert, X509* issuer, int nid,
                    const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return Fail(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// Builds and signs a certificate for `subject_key` (public half) issued by
// `issuer` (null: self-signed) with `issuer_key`.
absl::StatusOr<std::string> Build(EVP_PKEY* subject_key, X509* issuer,
                                  EVP_PKEY* issuer_key, const CertSpec& spec,
                                  bool ca) {
  if (spec.not_after <= spec.not_before) {
    return absl::InvalidArgumentError("not_after must be after not_before");
  }
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  // 16 random bytes, top bit clear so the INTEGER stays positive.
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return Fail("random serial");
  raw[0] &= 0x7f;
  raw[0] |= 0x01;  // never zero, never shortened
  Bignum bn(BN_bin2bn(raw, sizeof(raw), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) {
    return Fail("serial");
  }
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                     absl::ToTimeT(spec.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                     absl::ToTimeT(spec.not_after))) {
    return Fail("validity");
  }
  NV_RETURN_IF_ERROR(SetSubject(X509_get_subject_name(cert.get()), spec));
  X509_set_issuer_name(cert.get(), issuer != nullptr
                                       ? X509_get_subject_name(issuer)
                                       : X509_get_subject_name(cert.get()));
  if (!X509_set_pubkey(cert.get(), subject_key)) return Fail("public key");
  X509* iss = issuer != nullptr ? issuer : cert.get();
  NV_RETURN_IF_ERROR(
      AddExt(cert.get(), iss, NID_subject_key_identifier, "hash"));
  if (ca) {
    NV_RETURN_IF_ERROR(AddExt(cert.get(), iss, NID_basic_constraints,
                              "critical,CA:TRUE,pathlen:0"));
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always"));
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE"));
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature"));
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_ext_key_usage,
               spec.role == kRoleServer ? "serverAuth" : "clientAuth"));
  }
  std::vector<std::string> san;
  for (const auto& d : spec.dns_names) san.push_back(absl::StrCat("DNS:", d));
  for (const auto& a : spec.ip_addresses) san.push_back(absl::StrCat("IP:", a));
  if (!san.empty()) {
    NV_RETURN_IF_ERROR(
        AddExt(cert.get(), iss, NID_subject_alt_name, absl::StrJoin(san, ",")));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return Fail("signing");
  }
  return CertPem(cert.get());
}

absl::StatusOr<std::pair<Cert, Key>> ReadCa(absl::string_view ca_cert_pem,
                                            absl::string_view ca_key_pem) {
  NV_ASSIGN_OR_RETURN(Cert ca, ReadCert(ca_cert_pem));
  NV_ASSIGN_OR_RETURN(Key key, ReadKey(ca_key_pem));
  if (X509_check_private_key(ca.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the CA key does not belong to the CA certificate");
  }
  return std::make_pair(std::move(ca), std::move(key));
}

}  // namespace

absl::StatusOr<std::string> NewPrivateKey() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) return Fail("EC P-256 key generation");
  Bio b(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(b.get(), k.get(), nullptr, nullptr, 0, nullptr,
                                nullptr)) {
    return Fail("writing the key");
  }
  return BioText(b.get());
}

absl::StatusOr<std::string> MakeCsr(absl::string_view key_pem,
                                    absl::string_view common_name) {
  NV_ASSIGN_OR_RETURN(Key key, ReadKey(key_pem));
  Req req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  CertSpec spec;
  spec.common_name = std::string(common_name);
  spec.role = kRoleAgent;
  NV_RETURN_IF_ERROR(SetSubject(X509_REQ_get_subject_name(req.get()), spec));
  if (!X509_REQ_set_pubkey(req.get(), key.get()) ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return Fail("signing the request");
  }
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(b.get(), req.get());
  return BioText(b.get());
}

absl::StatusOr<std::string> SelfSignedCa(absl::string_view key_pem,
                                         const CertSpec& spec) {
  NV_ASSIGN_OR_RETURN(Key key, ReadKey(key_pem));
  return Build(key.get(), nullptr, key.get(), spec, /*ca=*/true);
}

absl::StatusOr<std::string> IssueForKey(absl::string_view ca_cert_pem,
                                        absl::string_view ca_key_pem,
                                        absl::string_view subject_key_pem,
                                        const CertSpec& spec) {
  NV_ASSIGN_OR_RETURN(auto ca, ReadCa(ca_cert_pem, ca_key_pem));
  NV_ASSIGN_OR_RETURN(Key subject, ReadKey(subject_key_pem));
  return Build(subject.get(), ca.first.get(), ca.second.get(), spec, false);
}

absl::StatusOr<std::string> SignCsr(absl::string_view ca_cert_pem,
                                    absl::string_view ca_key_pem,
                                    absl::string_view csr_pem,
                                    const CertSpec& spec) {
  NV_ASSIGN_OR_RETURN(auto ca, ReadCa(ca_cert_pem, ca_key_pem));
  Bio b = MemBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate request");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the certificate request's signature does not verify");
  }
  if (!IsP256(pub)) {
    return absl::InvalidArgumentError(
        "the certificate request's key must be EC P-256");
  }
  return Build(pub, ca.first.get(), ca.second.get(), spec, false);
}

absl::StatusOr<CertInfo> ParseCert(absl::string_view cert_pem) {
  NV_ASSIGN_OR_RETURN(Cert c, ReadCert(cert_pem));
  CertInfo info;
  X509_NAME* subject = X509_get_subject_name(c.get());
  auto field = [&](int nid) {
    int i = X509_NAME_get_index_by_NID(subject, nid, -1);
    if (i < 0) return std::string();
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) return std::string();
    std::string out(reinterpret_cast<char*>(utf8), n);
    OPENSSL_free(utf8);
    return out;
  };
  info.common_name = field(NID_commonName);
  info.role = field(NID_organizationalUnitName);
  Bignum bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c.get()), nullptr));
  if (bn) {
    char* hex = BN_bn2hex(bn.get());
    info.serial_hex = absl::AsciiStrToLower(hex);
    OPENSSL_free(hex);
  }
  unsigned char* der = nullptr;
  int n = i2d_X509(c.get(), &der);
  if (n > 0) {
    info.sha256 =
        FingerprintOfDer(absl::string_view(reinterpret_cast<char*>(der), n));
    OPENSSL_free(der);
  }
  info.not_before = FromAsn1(X509_get0_notBefore(c.get()));
  info.not_after = FromAsn1(X509_get0_notAfter(c.get()));
  info.is_ca = X509_check_ca(c.get()) != 0;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(c.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      info.dns_names.emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
          ASN1_STRING_length(g->d.dNSName));
    } else if (g->type == GEN_IPADD) {
      const int len = g->d.iPAddress->length;
      char text[INET6_ADDRSTRLEN] = {0};
      if ((len == 4 || len == 16) &&
          inet_ntop(len == 4 ? AF_INET : AF_INET6, g->d.iPAddress->data, text,
                    sizeof(text)) != nullptr) {
        info.ip_addresses.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  ERR_clear_error();
  return info;
}

absl::Status VerifyIssuedBy(absl::string_view cert_pem,
                            absl::string_view ca_pem, absl::Time now) {
  NV_ASSIGN_OR_RETURN(Cert cert, ReadCert(cert_pem));
  NV_ASSIGN_OR_RETURN(Cert ca, ReadCert(ca_pem));
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(
      X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>
      ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::PermissionDeniedError(
        absl::StrCat("certificate not valid for this CA: ",
                     X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

bool KeyMatchesCert(absl::string_view key_pem, absl::string_view cert_pem) {
  auto key = ReadKey(key_pem);
  auto cert = ReadCert(cert_pem);
  if (!key.ok() || !cert.ok()) return false;
  const bool ok = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return ok;
}

std::string FingerprintOfDer(absl::string_view der) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
  std::vector<std::string> parts;
  for (unsigned char b : md) {
    parts.push_back(absl::AsciiStrToUpper(absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(&b), 1))));
  }
  return absl::StrJoin(parts, ":");
}

std::string NormalizeFingerprint(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (absl::StartsWith(t, "sha256:")) t = t.substr(7);
  std::string hex;
  for (char ch : t) {
    if (ch == ':') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(ch))) return "";
    hex += ch;
  }
  if (hex.size() != 2 * SHA256_DIGEST_LENGTH) return "";
  std::vector<std::string> parts;
  for (size_t i = 0; i < hex.size(); i += 2) {
    parts.push_back(absl::AsciiStrToUpper(hex.substr(i, 2)));
  }
  return absl::StrJoin(parts, ":");
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), sizeof(md)));
}

absl::StatusOr<std::string> RandomToken(int n) {
  std::string raw(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), n) != 1) {
    return Fail("random token");
  }
  return absl::WebSafeBase64Escape(raw);
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view content,
                             int mode) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  }
  // The umask could have taken bits away, never added: make it exact.
  fchmod(fd, mode);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t w = write(fd, content.data() + done, content.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string err = strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return absl::UnavailableError(
          absl::StrCat("cannot write ", tmp, ": ", err));
    }
    done += w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = strerror(errno);
    unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace netvigil::pki
