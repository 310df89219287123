// The collector's accept loop on real loopback sockets in front of a real
// gRPC server (plain text, the default health service): deadlines for the
// first bytes, the caps per source and per listener, eviction of the
// heaviest source, refusal of what is not HTTP/2, and hand-over to gRPC.
// Sources are told apart by binding client sockets to 127.0.0.x.
#include "collector/connection_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "netvigil/v1/agent.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace netvigil::collector {
namespace {

using ::netvigil::testing::IsOk;

int Connect(const char* source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)), 0)
      << std::strerror(errno);
  return fd;
}

// True when the gate closed (or reset) `fd` within `wait`.
bool Closed(int fd, absl::Duration wait) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) <= 0) {
    return false;
  }
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

class ConnectionGateTest : public ::testing::Test {
 protected:
  void Start(ConnectionGateOptions o) {
    o.name = "test";
    o.tls = false;
    gate_ = std::make_unique<ConnectionGate>(o);
    absl::StatusOr<int> port = gate_->Listen("127.0.0.1:0");
    ASSERT_THAT(port, IsOk());
    port_ = *port;
    grpc::ServerBuilder b;
    b.RegisterService(&service_);  // every method UNIMPLEMENTED: enough
    b.experimental().SetInterceptorCreators(
        ConnectionGate::EstablishedNotifiers({gate_.get()}));
    gate_->Attach(b, grpc::InsecureServerCredentials());
    b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 2000);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    gate_->Start();
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
    if (gate_) gate_->Stop();
    if (server_) server_->Shutdown();
  }
  // A gRPC channel from 127.0.0.1 gets through the gate and its handshake.
  bool ChannelReady() {
    auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                  grpc::InsecureChannelCredentials());
    return ch->WaitForConnected(std::chrono::system_clock::now() +
                                std::chrono::seconds(5));
  }
  int Open(const char* source) {
    fds_.push_back(Connect(source, port_));
    return fds_.back();
  }

  v1::Agent::Service service_;
  std::unique_ptr<ConnectionGate> gate_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<int> fds_;
};

TEST_F(ConnectionGateTest, SilentConnectionsCloseAtTheFirstBytesDeadline) {
  ConnectionGateOptions o;
  o.first_record_timeout = absl::Milliseconds(300);
  Start(o);
  std::vector<int> silent = {Open("127.0.0.2"), Open("127.0.0.2"),
                             Open("127.0.0.3")};
  for (int fd : silent) EXPECT_TRUE(Closed(fd, absl::Seconds(3)));
  EXPECT_EQ(gate_->stats().timed_out, 3);
  EXPECT_TRUE(ChannelReady());
}

TEST_F(ConnectionGateTest, PartialPrefaceIsHeldThenClosed) {
  ConnectionGateOptions o;
  o.first_record_timeout = absl::Milliseconds(400);
  Start(o);
  int fd = Open("127.0.0.2");
  ASSERT_EQ(send(fd, "PRI * HTTP/2.0\r\n", 16, 0), 16);
  EXPECT_FALSE(Closed(fd, absl::Milliseconds(150)));
  EXPECT_TRUE(Closed(fd, absl::Seconds(3)));
  EXPECT_EQ(gate_->stats().handed_over, 0);
}

TEST_F(ConnectionGateTest, NotHttp2IsClosedAtOnce) {
  Start(ConnectionGateOptions{});
  int fd = Open("127.0.0.2");
  ASSERT_EQ(send(fd, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
  EXPECT_TRUE(Closed(fd, absl::Seconds(2)));
  EXPECT_EQ(gate_->stats().bad_first_bytes, 1);
}

TEST_F(ConnectionGateTest, PerSourceCapRefusesTheRestOfThatSourceOnly) {
  ConnectionGateOptions o;
  o.max_unfinished = 100;
  o.max_unfinished_per_source = 4;
  Start(o);
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) fds.push_back(Open("127.0.0.2"));
  int closed = 0;
  for (int fd : fds) closed += Closed(fd, absl::Milliseconds(500)) ? 1 : 0;
  EXPECT_EQ(closed, 2);
  EXPECT_EQ(gate_->stats().refused, 2);
  EXPECT_TRUE(ChannelReady());
}

TEST_F(ConnectionGateTest, AFullListenerEvictsTheHeaviestSourceForANewcomer) {
  ConnectionGateOptions o;
  o.max_unfinished = 8;
  o.max_unfinished_per_source = 8;
  Start(o);
  for (int i = 0; i < 8; ++i) Open("127.0.0.2");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(gate_->stats().refused, 0);
  // The same source gets nothing more...
  int more = Open("127.0.0.2");
  EXPECT_TRUE(Closed(more, absl::Seconds(1)));
  // ...but another source takes the place of the oldest of the heaviest.
  EXPECT_TRUE(ChannelReady());
  EXPECT_GE(gate_->stats().evicted, 1);
}

TEST_F(ConnectionGateTest, HandedConnectionsAreCountedUntilGrpcClosesThem) {
  ConnectionGateOptions o;
  o.grpc_handshake_timeout = absl::Milliseconds(500);
  Start(o);
  {
    auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                  grpc::InsecureChannelCredentials());
    ASSERT_TRUE(ch->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::seconds(5)));
    absl::SleepFor(absl::Milliseconds(400));
    EXPECT_EQ(gate_->stats().handed_over, 1);
    EXPECT_EQ(gate_->stats().open, 1);
  }
  // The channel is gone; the gate notices within its scan interval.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (gate_->stats().open != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(gate_->stats().open, 0);
}

TEST_F(ConnectionGateTest, AnRpcEndsTheUnfinishedCountAtOnce) {
  ConnectionGateOptions o;
  o.grpc_handshake_timeout = absl::Seconds(30);
  Start(o);
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                grpc::InsecureChannelCredentials());
  ASSERT_TRUE(ch->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(5)));
  absl::SleepFor(absl::Milliseconds(600));
  // Connected but no RPC yet: counted until one comes (or 30 s pass).
  EXPECT_EQ(gate_->stats().unfinished, 1);
  auto stub = v1::Agent::NewStub(ch);
  grpc::ClientContext ctx;
  v1::EnrollRequest req;
  v1::EnrollResponse resp;
  EXPECT_EQ(stub->Enroll(&ctx, req, &resp).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(gate_->stats().unfinished, 0);
  EXPECT_EQ(gate_->stats().open, 1);
}

TEST(ConnectionGateListenTest, PortInUseAndUnixSocketMode) {
  ConnectionGate a({}), b({});
  absl::StatusOr<int> port = a.Listen("127.0.0.1:0");
  ASSERT_THAT(port, IsOk());
  absl::StatusOr<int> again = b.Listen(absl::StrCat("127.0.0.1:", *port));
  EXPECT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()),
              ::testing::HasSubstr("in use"));
  EXPECT_FALSE(b.Listen("127.0.0.1:99999").ok());
  EXPECT_FALSE(b.Listen("no-port").ok());

  const std::string dir = ::testing::TempDir() + "/gate_unix";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/q.sock";
  std::filesystem::remove(path);
  ConnectionGate u({});
  ASSERT_THAT(u.Listen("unix:" + path, 0660), IsOk());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

}  // namespace
}  // namespace netvigil::collector
