// netvigil: asks the collector what it knows about the home network.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "collector/cli/commands.h"
#include "collector/cli/query_client.h"
#include "common/version.h"

int main(int argc, char** argv) {
  using namespace netvigil::cli;
  CLI::App app{"netvigil: what changed on the home network, where, and since "
               "when"};
  app.set_version_flag("--version", netvigil::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions options;
  options.socket = DefaultSocket();
  double timeout_s = 10;
  bool json = false;
  app.add_option("--socket", options.socket,
                 "the collector's Query socket ($NETVIGIL_QUERY_SOCKET)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds to wait for an answer")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", json, "print the proto3 JSON mapping");

  int rc = kExitOk;
  auto* agents = app.add_subcommand("agents", "list agents, online or not");
  agents->add_flag("--json", json, "print the proto3 JSON mapping");
  agents->callback([&] {
    options.timeout = absl::Seconds(timeout_s);
    rc = RunAgents(options, json);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return e.get_exit_code() == 0 ? 0 : (code == 0 ? 0 : kExitUsage);
  }
  return rc;
}
