// collector/cli/commands.cc: what the commands check before they ask.
#include "collector/cli/commands.h"

#include "absl/strings/str_join.h"
#include "common/wire_kinds.h"
#include "gtest/gtest.h"

namespace netvigil::cli {
namespace {

// `alerts --kind` refuses a kind it does not know as a usage error (exit 2)
// that names every kind, before it asks anything: the options point at no
// collector, so a request would fail as unreachable instead.
TEST(AlertKindsTest, AnUnknownKindIsAUsageErrorNamingTheKinds) {
  ClientOptions options;
  options.socket = "/nonexistent/netvigil-query.sock";
  options.timeout = absl::Milliseconds(200);
  const absl::Status s =
      RunAlerts(options, false, false, "nosuchkind", "", "", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("no alert kind 'nosuchkind'"),
            absl::string_view::npos)
      << s;
  EXPECT_NE(s.message().find(absl::StrJoin(AlertKindNames(), ", ")),
            absl::string_view::npos)
      << s;
  EXPECT_NE(s.message().find("new_listener"), absl::string_view::npos) << s;
  // Capitals are not the kind's spelling.
  EXPECT_EQ(
      RunAlerts(options, false, false, "NEW_LISTENER", "", "", false).code(),
      absl::StatusCode::kInvalidArgument);
}

// A known kind passes the check and goes on to ask (here: nobody answers).
TEST(AlertKindsTest, AKnownKindIsAsked) {
  ClientOptions options;
  options.socket = "/nonexistent/netvigil-query.sock";
  options.timeout = absl::Milliseconds(200);
  const absl::Status s =
      RunAlerts(options, false, false, "new_listener", "", "", false);
  EXPECT_NE(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace netvigil::cli
