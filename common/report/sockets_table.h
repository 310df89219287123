// The table `netvigil-agent probe sockets` and `netvigil probe HOST sockets`
// print for a socket snapshot, like `ss -tanup`'s. Thread-safe (pure).
#ifndef NETVIGIL_COMMON_REPORT_SOCKETS_TABLE_H_
#define NETVIGIL_COMMON_REPORT_SOCKETS_TABLE_H_

#include <string>

#include "netvigil/v1/probes.pb.h"

namespace netvigil::report {

// A table like `ss -tanup`'s (without the queue columns); an IPv6 wildcard
// that also takes IPv4 is "*:PORT" and one that takes IPv6 only "[::]:PORT",
// as ss prints them.
std::string FormatSocketsTable(const v1::SocketSnapshot& snapshot);

}  // namespace netvigil::report

#endif  // NETVIGIL_COMMON_REPORT_SOCKETS_TABLE_H_
