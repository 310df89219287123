// The agent's copy of the collector's iperf3 credentials: files iperf3 can
// read, private to the agent, and the options they give the server and the
// client.
#include "agent/iperf_credentials_files.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/iperf_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::agent {
namespace {

using ::netvigil::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string TempDir() {
  std::string t =
      std::filesystem::temp_directory_path() / "netvigil-iperfcred-XXXXXX";
  return mkdtemp(t.data());
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? (st.st_mode & 0777) : -1;
}

v1::IperfAuth Auth() {
  v1::IperfAuth a;
  a.set_rsa_private_key_pem(
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  a.set_rsa_public_key_pem(
      "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n");
  a.set_username("h1");
  a.set_password("pw-h1");
  return a;
}

v1::IperfUser User(const std::string& name, const std::string& password) {
  v1::IperfUser u;
  u.set_username(name);
  u.set_password_sha256(IperfPasswordSha256(name, password));
  return u;
}

TEST(IperfCredentialFilesTest, NothingWithoutTheCollectorsCredentials) {
  IperfCredentialFiles files(TempDir() + "/iperf3");
  EXPECT_FALSE(files.LoadKept());
  EXPECT_THAT(files.ServerArgs(), IsEmpty());
  EXPECT_FALSE(files.ClientAuth().has_value());
  // Users alone (a plan before the welcome's credentials) write nothing.
  ASSERT_THAT(files.SetUsers({User("h2", "x")}), IsOk());
  EXPECT_THAT(files.ServerArgs(), IsEmpty());
}

TEST(IperfCredentialFilesTest, WritesPrivateFilesAndTheOptionsThatUseThem) {
  const std::string dir = TempDir() + "/iperf3";
  IperfCredentialFiles files(dir);
  ASSERT_THAT(files.SetUsers({User("h2", "pw-h2")}), IsOk());
  const v1::IperfAuth auth = Auth();
  ASSERT_THAT(files.SetAuth(&auth), IsOk());
  EXPECT_EQ(Mode(dir), 0700);
  for (const std::string& p : {files.private_key_path(),
                               files.public_key_path(), files.users_path()}) {
    EXPECT_EQ(Mode(p), 0600) << p;
  }
  EXPECT_EQ(Read(files.private_key_path()), auth.rsa_private_key_pem());
  EXPECT_THAT(Read(files.users_path()),
              HasSubstr("h2," + IperfPasswordSha256("h2", "pw-h2") + "\n"));
  EXPECT_THAT(files.ServerArgs(),
              ElementsAre("--rsa-private-key-path", files.private_key_path(),
                          "--authorized-users-path", files.users_path()));
  ASSERT_TRUE(files.ClientAuth().has_value());
  EXPECT_EQ(files.ClientAuth()->username, "h1");
  EXPECT_EQ(files.ClientAuth()->password, "pw-h1");
  EXPECT_EQ(files.ClientAuth()->public_key_path, files.public_key_path());

  // A new agent joins: its user is added without new server options.
  ASSERT_THAT(files.SetUsers({User("h2", "pw-h2"), User("h3", "pw-h3")}),
              IsOk());
  EXPECT_THAT(Read(files.users_path()), HasSubstr("\nh3,"));

  // The next start finds the key pair and users, but not the password.
  IperfCredentialFiles again(dir);
  EXPECT_TRUE(again.LoadKept());
  EXPECT_EQ(again.ServerArgs(), files.ServerArgs());
  EXPECT_FALSE(again.ClientAuth().has_value());
}

TEST(IperfCredentialFilesTest, AnOlderCollectorsWelcomeRemovesThem) {
  const std::string dir = TempDir() + "/iperf3";
  IperfCredentialFiles files(dir);
  const v1::IperfAuth auth = Auth();
  ASSERT_THAT(files.SetAuth(&auth), IsOk());
  ASSERT_THAT(files.SetAuth(nullptr), IsOk());
  EXPECT_THAT(files.ServerArgs(), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(files.private_key_path()));
  EXPECT_FALSE(IperfCredentialFiles(dir).LoadKept());
}

TEST(IperfCredentialFilesTest, RefusesMaterialThatIsNotPemOrAUser) {
  IperfCredentialFiles files(TempDir() + "/iperf3");
  v1::IperfAuth bad = Auth();
  bad.set_rsa_private_key_pem("hello");
  EXPECT_FALSE(files.SetAuth(&bad).ok());
  bad = Auth();
  bad.set_username("a,b");
  EXPECT_FALSE(files.SetAuth(&bad).ok());
  EXPECT_THAT(files.ServerArgs(), IsEmpty());
}

}  // namespace
}  // namespace netvigil::agent
