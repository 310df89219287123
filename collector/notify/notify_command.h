// `netvigil-collector notify test CHANNEL`: sends a test message through one
// configured channel and prints what it answered. Thread-compatible (runs
// on main's thread).
#ifndef NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_COMMAND_H_
#define NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"

namespace netvigil::collector {

// `config_path` is read when the command runs (it is --config's value).
void RegisterNotifyCommands(CLI::App& app, const std::string* config_path);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_NOTIFY_NOTIFY_COMMAND_H_
