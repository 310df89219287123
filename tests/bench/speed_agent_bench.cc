// The agent's speed parts as a small program for tests/bench/speed_bench.sh:
//   speed_agent_bench server PORT           IperfServer until SIGTERM/SIGINT
//   speed_agent_bench client ADDR PORT SECS RunSpeedTest, prints bits/s
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/iperf_server.h"
#include "agent/probes/speed_probe.h"
#include "agent/sys/process_runner.h"
#include "common/clock.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  using namespace netvigil;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "server" && argc == 3) {
    spdlog::set_level(spdlog::level::warn);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    // Blocked here so every thread inherits the mask and sigwait gets them.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::unique_ptr<agent::ProcessRunner> runner =
        agent::MakeRealProcessRunner();
    agent::IperfServer server(*runner, RealClock(),
                              static_cast<uint16_t>(std::atoi(argv[2])));
    server.Start();
    int sig = 0;
    sigwait(&set, &sig);
    server.Stop();
    return 0;
  }
  if (mode == "client" && argc == 5) {
    v1::SpeedTest t;
    t.set_peer_agent("bench");
    t.set_address(argv[2]);
    t.set_port(static_cast<uint32_t>(std::atoi(argv[3])));
    t.mutable_duration()->set_seconds(std::atoi(argv[4]));
    std::unique_ptr<agent::ProcessRunner> runner =
        agent::MakeRealProcessRunner();
    v1::SpeedResult r = agent::RunSpeedTest(*runner, t, RealClock());
    if (r.outcome() != v1::SPEED_OUTCOME_OK) {
      std::fprintf(stderr, "speed test failed: %s\n", r.error().c_str());
      return 1;
    }
    std::printf("%.0f\n", r.forward().received_bps());
    return 0;
  }
  std::fprintf(stderr, "usage: %s server PORT | client ADDR PORT SECONDS\n",
               argv[0]);
  return 2;
}
