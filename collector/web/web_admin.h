// `netvigil-collector web-password set`: reads the dashboard's password
// from stdin and stores its hash (web_auth.h). Thread-compatible.
#ifndef NETVIGIL_COLLECTOR_WEB_WEB_ADMIN_H_
#define NETVIGIL_COLLECTOR_WEB_WEB_ADMIN_H_

#include <string>

#include "CLI/CLI.hpp"
#include "common/collector_config.h"

namespace netvigil::collector::web {

// web.password_file, else <state_dir>/web-password.
std::string WebPasswordFile(const CollectorConfig& config);

// Adds `web-password set` to the command line; it reads the configuration
// from *config_path when it runs and exits the process (0, or 1 with a
// message on stderr).
void RegisterWebCommands(CLI::App& app, const std::string* config_path);

}  // namespace netvigil::collector::web

#endif  // NETVIGIL_COLLECTOR_WEB_WEB_ADMIN_H_
