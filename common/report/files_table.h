// The table `netvigil-agent probe files` and `netvigil probe HOST files`
// print for an open-file snapshot, like lsof's. Thread-safe (pure).
#ifndef NETVIGIL_COMMON_REPORT_FILES_TABLE_H_
#define NETVIGIL_COMMON_REPORT_FILES_TABLE_H_

#include <string>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::report {

// A table like lsof's: COMMAND PID UID FD PATH, with FD as lsof writes it
// ("3r", "cwd", "txt", "mem") and deleted files marked "(deleted)". Rows of
// a process whose executable was deleted (outside the watched folders too)
// end with "[exe PATH (deleted)]".
std::string FormatFilesTable(const v1::FileSnapshot& snapshot);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_FILES_TABLE_H_
