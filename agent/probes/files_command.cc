#include "agent/probes/files_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/probes/file_probe.h"
#include "agent/probes/sockets_command.h"
#include "common/escape.h"
#include "common/report/files_table.h"

namespace netvigil::agent {

void RegisterFilesProbeCommand(CLI::App& probe, absl::Status* outcome) {
  CLI::App* cmd = probe.add_subcommand(
      "files", "List processes holding files under folders, like lsof +D");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("--dir", *dirs,
                  "Watched folder, absolute; a symlink is followed, a folder "
                  "that does not exist is an error (repeatable)")
      ->default_str("/home /root");
  cmd->add_flag("--json", *json, "Print the snapshot as proto3 JSON");
  cmd->callback([dirs, json, outcome] {
    std::vector<std::string> watched = *dirs;
    if (watched.empty()) watched = {"/home", "/root"};
    absl::StatusOr<v1::FileSnapshot> snap =
        FileProbe::CreateReal()->Collect(watched);
    if (snap.ok() && !snap->error().empty()) {
      // Not an empty table that reads "nothing there".
      *outcome = absl::FailedPreconditionError(absl::StrCat(
          "netvigil-agent probe files: ", Printable(snap->error())));
      return;
    }
    const v1::FileSnapshot empty;
    *outcome = PrintProbeSnapshot(
        "files", snap.status(), snap.ok() ? *snap : empty, *json,
        [&] { return report::FormatFilesTable(*snap); });
  });
}

}  // namespace netvigil::agent
