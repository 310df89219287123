// The mtr --report style text of one path run, as `netvigil-agent probe
// path`, `netvigil path` and `netvigil probe HOST path` print it.
// Thread-safe (pure).
#ifndef NETVIGIL_COMMON_REPORT_PATH_REPORT_H_
#define NETVIGIL_COMMON_REPORT_PATH_REPORT_H_

#include <string>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::report {

// One run as mtr --report prints it: a header, then per hop
// Loss% Snt Rcv Last Avg Best Wrst StDev, extra addresses of a hop on lines
// of their own, and the run's error (if any) last. The header's `HOST:` is
// `host`: the agent that ran it (the CLI), or this machine's name (the
// agent's standalone probe, which looks it up: a report stays pure).
std::string FormatPathReport(const v1::PathRun& run, const std::string& host);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_PATH_REPORT_H_
