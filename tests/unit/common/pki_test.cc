// The CA code on its own: keys, requests, certificates, fingerprints and the
// files they are kept in. Each test names what breaks when it fails.
#include "common/pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/tls_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::pki {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Ca {
  std::string key;
  std::string cert;
};

CertSpec Spec(const std::string& cn, const std::string& role,
              absl::Duration from = -absl::Hours(1),
              absl::Duration to = absl::Hours(24)) {
  CertSpec s;
  s.common_name = cn;
  s.role = role;
  const absl::Time now = absl::Now();
  s.not_before = now + from;
  s.not_after = now + to;
  return s;
}

Ca MakeCa(const std::string& name = "test CA") {
  Ca ca;
  ca.key = *NewPrivateKey();
  auto cert = SelfSignedCa(ca.key, Spec(name, kRoleCa));
  EXPECT_THAT(cert, IsOk());
  ca.cert = *cert;
  return ca;
}

// An agent certificate the way enrollment makes one.
std::string Enrol(const Ca& ca, const std::string& key, const std::string& name,
                  absl::Duration from, absl::Duration to) {
  auto csr = MakeCsr(key, name);
  EXPECT_THAT(csr, IsOk());
  auto cert = SignCsr(ca.cert, ca.key, *csr, Spec(name, kRoleAgent, from, to));
  EXPECT_THAT(cert, IsOk());
  return cert.ok() ? *cert : "";
}

TEST(PkiTest, CaIsACaAndSaysSo) {
  Ca ca = MakeCa();
  auto info = ParseCert(ca.cert);
  ASSERT_THAT(info, IsOk());
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->role, kRoleCa);
  EXPECT_EQ(info->common_name, "test CA");
  EXPECT_TRUE(KeyMatchesCert(ca.key, ca.cert));
  EXPECT_THAT(VerifyIssuedBy(ca.cert, ca.cert, absl::Now()), IsOk());
}

TEST(PkiTest, KeysAreP256AndPrivateKeyPemIsPkcs8) {
  auto key = NewPrivateKey();
  ASSERT_THAT(key, IsOk());
  EXPECT_THAT(*key, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  BIO* b = BIO_new_mem_buf(key->data(), static_cast<int>(key->size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  ASSERT_NE(k, nullptr);
  char group[64] = {0};
  size_t len = 0;
  ASSERT_TRUE(EVP_PKEY_get_group_name(k, group, sizeof(group), &len));
  EXPECT_STREQ(group, "prime256v1");
  EVP_PKEY_free(k);
}

TEST(PkiTest, SignedRequestGetsTheCasNameNotTheOneItAskedFor) {
  Ca ca = MakeCa();
  const std::string key = *NewPrivateKey();
  auto csr = MakeCsr(key, "mallory");
  ASSERT_THAT(csr, IsOk());
  auto cert = SignCsr(ca.cert, ca.key, *csr, Spec("alice", kRoleAgent));
  ASSERT_THAT(cert, IsOk());
  auto info = ParseCert(*cert);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->common_name, "alice");
  EXPECT_EQ(info->role, kRoleAgent);
  EXPECT_FALSE(info->is_ca);
  EXPECT_TRUE(KeyMatchesCert(key, *cert))
      << "the agent's own key, not a new one";
  EXPECT_FALSE(KeyMatchesCert(*NewPrivateKey(), *cert));
  EXPECT_THAT(VerifyIssuedBy(*cert, ca.cert, absl::Now()), IsOk());
}

TEST(PkiTest, AnotherCasCertificateDoesNotVerify) {
  Ca ours = MakeCa("ours");
  Ca theirs = MakeCa("theirs");
  const std::string cert =
      Enrol(theirs, *NewPrivateKey(), "alice", -absl::Hours(1), absl::Hours(1));
  EXPECT_THAT(VerifyIssuedBy(cert, ours.cert, absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(PkiTest, ExpiredAndNotYetValidCertificatesDoNotVerify) {
  Ca ca = MakeCa();
  const std::string expired =
      Enrol(ca, *NewPrivateKey(), "old", -absl::Hours(48), -absl::Hours(24));
  EXPECT_THAT(VerifyIssuedBy(expired, ca.cert, absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied, "expired"));
  const std::string future =
      Enrol(ca, *NewPrivateKey(), "new", absl::Hours(2), absl::Hours(48));
  EXPECT_THAT(VerifyIssuedBy(future, ca.cert, absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(VerifyIssuedBy(future, ca.cert, absl::Now() + absl::Hours(3)),
              IsOk());
}

TEST(PkiTest, ValidityIsWhatWasAskedFor) {
  Ca ca = MakeCa();
  const absl::Time now = absl::Now();
  CertSpec spec = Spec("alice", kRoleAgent);
  spec.not_before = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  spec.not_after = spec.not_before + kAgentValidity;
  auto cert = IssueForKey(ca.cert, ca.key, *NewPrivateKey(), spec);
  ASSERT_THAT(cert, IsOk());
  auto info = ParseCert(*cert);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->not_before, spec.not_before);
  EXPECT_EQ(info->not_after, spec.not_after);
}

TEST(PkiTest, SerialsAreRandom128BitAndDiffer) {
  Ca ca = MakeCa();
  const std::string key = *NewPrivateKey();
  auto a = ParseCert(Enrol(ca, key, "a", -absl::Hours(1), absl::Hours(1)));
  auto b = ParseCert(Enrol(ca, key, "a", -absl::Hours(1), absl::Hours(1)));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->serial_hex, b->serial_hex);
  EXPECT_EQ(a->serial_hex.size(), 32u);
  EXPECT_NE(a->sha256, b->sha256);
}

TEST(PkiTest, ServerCertificateCarriesItsNamesAndAddresses) {
  Ca ca = MakeCa();
  CertSpec spec = Spec("nas.home.arpa", kRoleServer);
  spec.dns_names = {"nas.home.arpa", "localhost"};
  spec.ip_addresses = {"192.168.1.10", "::1"};
  auto cert = IssueForKey(ca.cert, ca.key, *NewPrivateKey(), spec);
  ASSERT_THAT(cert, IsOk());
  auto info = ParseCert(*cert);
  ASSERT_THAT(info, IsOk());
  EXPECT_THAT(info->dns_names, ElementsAre("nas.home.arpa", "localhost"));
  EXPECT_THAT(info->ip_addresses, ElementsAre("192.168.1.10", "::1"));
  EXPECT_EQ(info->role, kRoleServer);
}

TEST(PkiTest, TamperedRequestIsRefused) {
  Ca ca = MakeCa();
  std::string csr = *MakeCsr(*NewPrivateKey(), "alice");
  // Change one character of the base64 body, in the signed part.
  const size_t at = csr.find('\n') + 40;
  csr[at] = csr[at] == 'A' ? 'B' : 'A';
  EXPECT_THAT(SignCsr(ca.cert, ca.key, csr, Spec("alice", kRoleAgent)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignCsr(ca.cert, ca.key, "junk", Spec("alice", kRoleAgent)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PkiTest, RequestWithAnotherKeyTypeIsRefused) {
  EVP_PKEY* k = EVP_EC_gen("P-384");
  ASSERT_NE(k, nullptr);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  const std::string key(data, n);
  BIO_free(b);
  EVP_PKEY_free(k);
  Ca ca = MakeCa();
  auto csr = MakeCsr(key, "alice");
  ASSERT_THAT(csr, IsOk());
  EXPECT_THAT(SignCsr(ca.cert, ca.key, *csr, Spec("alice", kRoleAgent)),
              StatusIs(absl::StatusCode::kInvalidArgument, "P-256"));
}

TEST(PkiTest, CaKeyMustMatchTheCaCertificate) {
  Ca ca = MakeCa();
  auto csr = MakeCsr(*NewPrivateKey(), "alice");
  EXPECT_THAT(SignCsr(ca.cert, *NewPrivateKey(), *csr, Spec("a", kRoleAgent)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PkiTest, FingerprintIsSha256InColonHex) {
  // SHA-256 of nothing.
  EXPECT_EQ(FingerprintOfDer("").substr(0, 11), "E3:B0:C4:42");
  EXPECT_EQ(FingerprintOfDer("").size(), 32u * 3 - 1);
  EXPECT_EQ(Sha256Hex("").substr(0, 8), "e3b0c442");
}

TEST(PkiTest, FingerprintAsTypedIsNormalised) {
  const std::string fp = FingerprintOfDer("x");
  std::string plain;
  for (char c : fp) {
    if (c != ':') plain += static_cast<char>(std::tolower(c));
  }
  EXPECT_EQ(NormalizeFingerprint(plain), fp);
  EXPECT_EQ(NormalizeFingerprint("sha256:" + plain), fp);
  EXPECT_EQ(NormalizeFingerprint("  " + fp + "\n"), fp);
  EXPECT_EQ(NormalizeFingerprint(plain.substr(2)), "");
  EXPECT_EQ(NormalizeFingerprint(plain + "00"), "");
  EXPECT_EQ(NormalizeFingerprint("zz" + plain.substr(2)), "");
}

TEST(PkiTest, TokensAreLongAndDiffer) {
  auto a = RandomToken(32);
  auto b = RandomToken(32);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_of("+/="), std::string::npos) << "URL-safe";
}

std::string TempDir() {
  char tmpl[] = "/tmp/pki_test.XXXXXX";
  return mkdtemp(tmpl);
}

TEST(PkiTest, KeyFilesAreWrittenMode0600WhateverTheUmask) {
  const std::string dir = TempDir();
  const mode_t old = umask(0);
  ASSERT_THAT(WriteFileAtomic(dir + "/k", "secret", 0600), IsOk());
  umask(old);
  struct stat st;
  ASSERT_EQ(stat((dir + "/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadFile(dir + "/k"), "secret");
  EXPECT_NE(access((dir + "/k.tmp." + std::to_string(getpid())).c_str(), F_OK),
            0);
}

TEST(PkiTest, ClientTlsRoundTripsAndRefusesAMismatchedKey) {
  Ca ca = MakeCa();
  ClientTls tls;
  tls.key_pem = *NewPrivateKey();
  tls.cert_pem =
      Enrol(ca, tls.key_pem, "alice", -absl::Hours(1), absl::Hours(1));
  tls.ca_pem = ca.cert;
  tls.server_name = "nas.home.arpa";
  const std::string dir = TempDir() + "/agent";
  ASSERT_THAT(SaveClientTls(dir, tls), IsOk());
  struct stat st;
  ASSERT_EQ(stat((dir + "/client.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = LoadClientTls(dir);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->server_name, "nas.home.arpa");
  EXPECT_EQ(back->cert_pem, tls.cert_pem);
  ASSERT_THAT(WriteFileAtomic(dir + "/client.key", *NewPrivateKey(), 0600),
              IsOk());
  EXPECT_THAT(LoadClientTls(dir),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace netvigil::pki
