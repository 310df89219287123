// Process-wide logging set-up: spdlog to stderr (and so to the journal under
// systemd), one line per event with key=value fields. Thread-safe.
#ifndef NETVIGIL_COMMON_LOGGING_H_
#define NETVIGIL_COMMON_LOGGING_H_

#include <string>

namespace netvigil {

// `level` is one of trace, debug, info, warn, error; unknown means info.
void InitLogging(const std::string& program, const std::string& level);

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_LOGGING_H_
