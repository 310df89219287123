// Kinds at the proto boundary: the stable lower-case names used inside
// netvigil (alert log lines, PostgreSQL columns, fail2ban's filter, what
// people type) and the proto enums that carry them on the wire. The one
// place they are mapped, by a rule rather than a table: a value's name is
// its enum's prefix and the stable name in capitals (ALERT_KIND_PATH_LOSS
// <-> "path_loss"), so a new enum value is mapped the moment it exists.
// Thread-safe (pure functions over the generated descriptors).
#ifndef NETVIGIL_COMMON_WIRE_KINDS_H_
#define NETVIGIL_COMMON_WIRE_KINDS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "netvigil/v1/alerts.pb.h"
#include "netvigil/v1/probes.pb.h"
#include "netvigil/v1/query.pb.h"

namespace netvigil {

// Name -> enum: the value, or UNSPECIFIED for a name that is not one (an
// empty name, capitals, "unspecified", a kind this build does not know).
v1::AlertKind AlertKindFromName(absl::string_view name);
v1::SocketKeyKind SocketKeyKindFromName(absl::string_view name);
v1::PathSocketKind PathSocketKindFromName(absl::string_view name);

// Enum -> name: "" for UNSPECIFIED and for a number this build does not
// know (proto3 enums are open: a newer peer may send one).
std::string AlertKindName(v1::AlertKind kind);
std::string SocketKeyKindName(v1::SocketKeyKind kind);
std::string PathSocketKindName(v1::PathSocketKind kind);

// Every alert kind's name in the enum's order, UNSPECIFIED left out: the
// list `netvigil alerts --kind` accepts and names when it refuses one.
std::vector<std::string> AlertKindNames();

}  // namespace netvigil

#endif  // NETVIGIL_COMMON_WIRE_KINDS_H_
