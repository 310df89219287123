#include "agent/probes/files_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/probes/file_probe.h"
#include "google/protobuf/util/json_util.h"

namespace netvigil::agent {

void RegisterFilesProbeCommand(CLI::App& probe) {
  CLI::App* cmd = probe.add_subcommand(
      "files", "List processes holding files under folders, like lsof +D");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--dir", *dirs,
                  "Watched folder (repeatable; default /home and /root)");
  cmd->add_flag("--json", *json, "Print the snapshot as proto3 JSON");
  cmd->callback([dirs, json] {
    std::vector<std::string> watched = *dirs;
    if (watched.empty()) watched = {"/home", "/root"};
    absl::StatusOr<v1::FileSnapshot> snap =
        FileProbe::CreateReal()->Collect(watched);
    if (!snap.ok()) {
      std::cerr << "netvigil-agent probe files: " << snap.status() << "\n";
      throw CLI::RuntimeError(1);
    }
    if (!*json) {
      std::cout << FormatFilesTable(*snap);
      return;
    }
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    auto st = google::protobuf::util::MessageToJsonString(*snap, &out, options);
    if (!st.ok()) {
      std::cerr << "netvigil-agent probe files: " << st.ToString() << "\n";
      throw CLI::RuntimeError(1);
    }
    std::cout << out;
  });
}

}  // namespace netvigil::agent
