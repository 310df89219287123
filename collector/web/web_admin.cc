#include "collector/web/web_admin.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "collector/web/web_auth.h"

namespace netvigil::collector::web {

std::string WebPasswordFile(const CollectorConfig& config) {
  if (!config.web_password_file.empty()) return config.web_password_file;
  return absl::StrCat(config.state_dir, "/web-password");
}

void RegisterWebCommands(CLI::App& app, const std::string* config_path) {
  auto* cmd = app.add_subcommand("web-password", "the web dashboard's login");
  cmd->require_subcommand(1);
  auto* set = cmd->add_subcommand(
      "set",
      "read a password (one line) from stdin and store its hash in "
      "web.password_file (default <state_dir>/web-password), mode 0600");
  set->callback([config_path] {
    auto c = LoadCollectorConfig(*config_path);
    if (!c.ok()) {
      std::fprintf(stderr, "netvigil-collector: %s\n",
                   std::string(c.status().message()).c_str());
      std::exit(1);
    }
    std::string password;
    // One line, no echo handling: pipe it in or type it at a terminal.
    if (!std::getline(std::cin, password)) {
      std::fprintf(stderr, "netvigil-collector: no password on stdin\n");
      std::exit(1);
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    const std::string path = WebPasswordFile(*c);
    absl::Status s = SetWebPassword(path, password);
    if (!s.ok()) {
      std::fprintf(stderr, "netvigil-collector: %s\n",
                   std::string(s.message()).c_str());
      std::exit(1);
    }
    std::printf("web password hash written to %s\n", path.c_str());
    std::exit(0);
  });
}

}  // namespace netvigil::collector::web
