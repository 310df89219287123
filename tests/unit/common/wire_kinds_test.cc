// common/wire_kinds.cc: every kind maps to its enum value and back, by the
// naming rule, and nothing else does.
#include "common/wire_kinds.h"

#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace netvigil {
namespace {

// The analyzer's kinds, read from collector/analysis/rules/condition.h's
// `constexpr char kX[] = "name";` lines, so a kind added there without its
// AlertKind value (or a value without its kind) fails here.
std::set<std::string> ConditionKinds() {
  std::ifstream in(std::string(NETVIGIL_SOURCE_DIR) +
                   "/collector/analysis/rules/condition.h");
  EXPECT_TRUE(in) << "condition.h not found";
  const std::regex kind(R"re(^constexpr char k\w+\[\] = "([a-z0-9_]+)";)re");
  std::set<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, kind)) out.insert(m[1]);
  }
  return out;
}

TEST(WireKindsTest, EveryConditionKindMapsBothWays) {
  const std::set<std::string> kinds = ConditionKinds();
  ASSERT_GE(kinds.size(), 11u);
  for (const std::string& name : kinds) {
    const v1::AlertKind k = AlertKindFromName(name);
    EXPECT_NE(k, v1::ALERT_KIND_UNSPECIFIED)
        << "condition.h's '" << name << "' has no ALERT_KIND_ value in "
        << "proto/netvigil/v1/alerts.proto";
    EXPECT_EQ(AlertKindName(k), name);
  }
  const std::vector<std::string> names = AlertKindNames();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), kinds)
      << "an AlertKind value without its kind in condition.h, or the other "
         "way round";
  EXPECT_EQ(names.size(), kinds.size());  // no name twice
}

TEST(WireKindsTest, EveryEnumValueHasOneName) {
  const auto* d = v1::AlertKind_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const auto k = static_cast<v1::AlertKind>(d->value(i)->number());
    if (k == v1::ALERT_KIND_UNSPECIFIED) continue;
    EXPECT_EQ(AlertKindFromName(AlertKindName(k)), k) << d->value(i)->name();
  }
  EXPECT_EQ(AlertKindFromName("path_loss"), v1::ALERT_KIND_PATH_LOSS);
  EXPECT_EQ(AlertKindName(v1::ALERT_KIND_NEW_FILE_PROCESS), "new_file_process");
}

// The store's key_kind column (common/model/facts.h's KindName) and the
// path transport's kind() names.
TEST(WireKindsTest, SocketAndPathKinds) {
  for (const char* name : {"listener", "remote", "inbound"}) {
    const v1::SocketKeyKind k = SocketKeyKindFromName(name);
    EXPECT_NE(k, v1::SOCKET_KEY_KIND_UNSPECIFIED) << name;
    EXPECT_EQ(SocketKeyKindName(k), name);
  }
  EXPECT_EQ(SocketKeyKindFromName("listener"), v1::SOCKET_KEY_KIND_LISTENER);
  EXPECT_EQ(PathSocketKindFromName("raw"), v1::PATH_SOCKET_KIND_RAW);
  EXPECT_EQ(PathSocketKindFromName("dgram"), v1::PATH_SOCKET_KIND_DGRAM);
  EXPECT_EQ(PathSocketKindName(v1::PATH_SOCKET_KIND_RAW), "raw");
  EXPECT_EQ(PathSocketKindName(v1::PATH_SOCKET_KIND_DGRAM), "dgram");
}

// One spelling per kind: what is not a stable name maps to UNSPECIFIED, and
// UNSPECIFIED or a number this build does not know to "".
TEST(WireKindsTest, OtherNamesAndNumbersAreNoKind) {
  for (const char* name :
       {"", "unspecified", "UNSPECIFIED", "PATH_LOSS", "Path_Loss",
        "path_loss ", " path_loss", "path-loss", "_path_loss",
        "alert_kind_path_loss", "path_loss\n", "nosuchkind"}) {
    EXPECT_EQ(AlertKindFromName(name), v1::ALERT_KIND_UNSPECIFIED)
        << "'" << name << "'";
  }
  EXPECT_EQ(AlertKindFromName(std::string("path_loss\0x", 11)),
            v1::ALERT_KIND_UNSPECIFIED);
  EXPECT_EQ(SocketKeyKindFromName("LISTENER"), v1::SOCKET_KEY_KIND_UNSPECIFIED);
  EXPECT_EQ(PathSocketKindFromName("icmp"), v1::PATH_SOCKET_KIND_UNSPECIFIED);
  EXPECT_EQ(AlertKindName(v1::ALERT_KIND_UNSPECIFIED), "");
  EXPECT_EQ(AlertKindName(static_cast<v1::AlertKind>(4242)), "");
  EXPECT_EQ(SocketKeyKindName(static_cast<v1::SocketKeyKind>(-1)), "");
  EXPECT_EQ(PathSocketKindName(v1::PATH_SOCKET_KIND_UNSPECIFIED), "");
}

}  // namespace
}  // namespace netvigil
