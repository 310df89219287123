// The notification channels' edges with real child processes (a command's
// timeout ends its whole process group; sendmail's headers cannot be
// injected into) and the notify: config's refusals.
#include "collector/notify/notify_channel.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "collector/notify/child_process.h"
#include "collector/notify/notify_message.h"
#include "common/collector_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

class TempDir {
 public:
  TempDir() {
    char d[] = "/tmp/netvigil-notify-XXXXXX";
    path_ = mkdtemp(d);
  }
  ~TempDir() { (void)!system(("rm -rf " + path_).c_str()); }
  std::string Write(const std::string& name, const std::string& text,
                    mode_t mode = 0644) {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    chmod(p.c_str(), mode);
    return p;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(path_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ChildProcessTest, ExitStatusStdoutAndFirstStderrLineEscaped) {
  absl::StatusOr<ChildResult> r = RunChild(
      {"/bin/sh", "-c",
       "cat; printf 'bad \\033[31m thing\\nsecond line\\n' >&2; exit 3"},
      "hello", absl::Seconds(10));
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_status, 3);
  EXPECT_EQ(r->stdout_head, "hello");
  EXPECT_EQ(DescribeChild(*r, absl::Seconds(10)),
            "exit status 3; stderr: bad \\x1B[31m thing");
}

TEST(ChildProcessTest, AProgramThatCannotRunIsAnError) {
  EXPECT_THAT(RunChild({"/nonexistent/prog"}, "", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "No such file or directory"));
}

TEST(ChildProcessTest, TheTimeoutEndsTheWholeGroupEvenIfSigtermIsIgnored) {
  TempDir dir;
  const std::string pids = dir.path() + "/pids";
  // The shell ignores SIGTERM; its background child would outlive it.
  const absl::Time start = absl::Now();
  absl::StatusOr<ChildResult> r = RunChild(
      {"/bin/sh", "-c",
       "trap '' TERM; sleep 300 & echo $$ $! > " + pids + "; wait; sleep 300"},
      "", absl::Milliseconds(500), absl::Milliseconds(500));
  ASSERT_THAT(r, IsOk());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_THAT(DescribeChild(*r, absl::Milliseconds(500)),
              HasSubstr("killed after the 500ms timeout"));
  std::ifstream in(pids);
  int shell = 0, child = 0;
  in >> shell >> child;
  ASSERT_GT(child, 0);
  // The background sleep was in the group: gone (or a zombie for init).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string s;
    std::getline(stat, s);
    gone = !stat.good() || s.find(") Z") != std::string::npos;
    if (!gone) usleep(20'000);
  }
  EXPECT_TRUE(gone);
}

TEST(SendmailChannelTest, AlertTextCannotAddAHeader) {
  TempDir dir;
  const std::string out = dir.path() + "/mail";
  NotifyChannelConfig c;
  c.name = "mail";
  c.type = "sendmail";
  c.sendmail_path = dir.Write(
      "sendmail",
      "#!/bin/sh\n[ \"$1 $2\" = '-t -i' ] || exit 9\ncat > " + out + "\n",
      0755);
  c.to = {"me@home.arpa"};
  auto ch = MakeChannel(c);
  ASSERT_THAT(ch, IsOk());
  OutboxRow row;
  row.event_id = 7;
  row.news = "opened";
  row.event.mutable_alert()->set_id(3);
  row.event.mutable_alert()->set_kind("new_listener");
  row.event.mutable_alert()->add_hosts("h1\r\nBcc: evil@example.com");
  row.event.mutable_alert()->set_summary("x\nBcc: evil2@example.com");
  absl::StatusOr<std::string> answer = (*ch)->Send(EventMessage(row, {}, ""));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(*answer, "sendmail: exit status 0");
  const std::string mail = dir.Read("mail");
  const std::string head = mail.substr(0, mail.find("\n\n"));
  for (absl::string_view line : absl::StrSplit(head, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "Bcc")) << line;
    EXPECT_THAT(std::string(line), Not(HasSubstr("\r")));
  }
  EXPECT_THAT(head, HasSubstr("Subject: [netvigil] opened: new_listener on "
                              "h1\\r\\nBcc: evil@example.com"));
  EXPECT_THAT(head, HasSubstr("X-Netvigil-Event-Id: netvigil-event-7"));
  EXPECT_THAT(head, HasSubstr("To: me@home.arpa"));
}

TEST(CommandChannelTest, ANonZeroExitIsARefusalWithItsStderr) {
  NotifyChannelConfig c;
  c.name = "cmd";
  c.type = "command";
  c.argv = {"/bin/sh", "-c", "cat >/dev/null; echo nope >&2; exit 4"};
  auto ch = MakeChannel(c);
  ASSERT_THAT(ch, IsOk());
  EXPECT_THAT(
      (*ch)->Send(TestMessage("cmd", absl::Now())),
      StatusIs(absl::StatusCode::kUnavailable, "exit status 4; stderr: nope"));
}

TEST(NotifyChannelTest, AMissingSecretIsNamedNotShown) {
  NotifyChannelConfig c;
  c.name = "hook";
  c.type = "webhook";
  c.url = "https://example.net/";
  c.header_name = "Authorization";
  c.header_value.env = "NETVIGIL_TEST_NO_SUCH_VARIABLE";
  EXPECT_THAT(MakeChannel(c),
              StatusIs(absl::StatusCode::kNotFound,
                       "NETVIGIL_TEST_NO_SUCH_VARIABLE is not set"));
}

struct BadConfig {
  std::string yaml;
  std::string error;
};

class NotifyConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(NotifyConfigTest, IsRefusedNamingTheField) {
  auto c = ParseCollectorConfig(GetParam().yaml, "c.yaml");
  EXPECT_THAT(c,
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    All, NotifyConfigTest,
    ::testing::Values(
        BadConfig{"notify:\n  channels:\n    - {name: a, type: command, "
                  "argv: [/bin/true], bogus: 1}\n",
                  "notify.channels[0].bogus"},
        BadConfig{"notify:\n  bogus: 1\n", "notify.bogus"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: webhook, url: "
                  "\"http://192.168.1.5/x\"}\n",
                  "loopback address only"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: pager}\n",
                  "expected webhook, command or sendmail"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: command, "
                  "argv: [sh, -c, x]}\n",
                  "absolute path"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: sendmail, to: "
                  "[\"a@b\\r\\nBcc: c@d\"]}\n",
                  "one mail address"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: command, argv: "
                  "[/bin/true]}\n    - {name: a, type: command, argv: "
                  "[/bin/true]}\n",
                  "duplicate channel name 'a'"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: webhook, url: "
                  "\"https://h/\", hmac: {secret_file: /a, secret_env: B}}\n",
                  "not both"},
        BadConfig{"notify:\n  channels:\n    - {name: a, type: webhook, url: "
                  "\"https://h/\", min_severity: loud}\n",
                  "expected info, warning or critical"}));

TEST(NotifyConfigTest, AFullChannelListParses) {
  auto c = ParseCollectorConfig(
      "notify:\n  min_interval: 1m\n  channels:\n"
      "    - {name: a, type: webhook, url: \"https://h.example/x\", kinds: "
      "[new_listener], min_severity: warning, header: {name: Authorization, "
      "secret_env: T}, hmac: {secret_file: /k}}\n"
      "    - {name: b, type: webhook, url: \"http://127.0.0.1:9/\"}\n"
      "    - {name: c, type: sendmail, to: [me@home.arpa]}\n",
      "c.yaml");
  ASSERT_THAT(c, IsOk());
  ASSERT_EQ(c->notify.channels.size(), 3u);
  EXPECT_EQ(c->notify.min_interval, absl::Minutes(1));
  EXPECT_EQ(c->notify.channels[0].min_severity, v1::SEVERITY_WARNING);
  EXPECT_EQ(c->notify.channels[0].header_value.env, "T");
  EXPECT_EQ(c->notify.channels[2].sendmail_path, "/usr/sbin/sendmail");
}

}  // namespace
}  // namespace netvigil::collector
