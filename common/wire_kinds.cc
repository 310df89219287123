#include "common/wire_kinds.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace netvigil {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;

// The prefix every value name of `d` starts with: "ALERT_KIND_" for
// AlertKind (the style guide's rule, which the protos follow).
std::string Prefix(const EnumDescriptor* d) {
  std::string p;
  for (char c : d->name()) {
    if (absl::ascii_isupper(c) && !p.empty()) p += '_';
    p += absl::ascii_toupper(c);
  }
  return p + "_";
}

// Only lower-case letters, digits and '_' (no leading '_'), so that
// "PATH_LOSS", "Path_Loss" or "_x" are not kinds: a kind has one spelling.
bool IsStableName(absl::string_view name) {
  if (name.empty() || name.front() == '_') return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') {
      return false;
    }
  }
  return true;
}

int FromName(const EnumDescriptor* d, absl::string_view name) {
  if (!IsStableName(name)) return 0;
  const EnumValueDescriptor* v =
      d->FindValueByName(Prefix(d) + absl::AsciiStrToUpper(name));
  return v == nullptr ? 0 : v->number();
}

std::string ToName(const EnumDescriptor* d, int number) {
  if (number == 0) return "";
  const EnumValueDescriptor* v = d->FindValueByNumber(number);
  if (v == nullptr) return "";
  const std::string prefix = Prefix(d);
  if (!absl::StartsWith(v->name(), prefix)) return "";
  return absl::AsciiStrToLower(v->name().substr(prefix.size()));
}

}  // namespace

v1::AlertKind AlertKindFromName(absl::string_view name) {
  return static_cast<v1::AlertKind>(FromName(v1::AlertKind_descriptor(), name));
}

v1::SocketKeyKind SocketKeyKindFromName(absl::string_view name) {
  return static_cast<v1::SocketKeyKind>(
      FromName(v1::SocketKeyKind_descriptor(), name));
}

v1::PathSocketKind PathSocketKindFromName(absl::string_view name) {
  return static_cast<v1::PathSocketKind>(
      FromName(v1::PathSocketKind_descriptor(), name));
}

std::string AlertKindName(v1::AlertKind kind) {
  return ToName(v1::AlertKind_descriptor(), kind);
}

std::string SocketKeyKindName(v1::SocketKeyKind kind) {
  return ToName(v1::SocketKeyKind_descriptor(), kind);
}

std::string PathSocketKindName(v1::PathSocketKind kind) {
  return ToName(v1::PathSocketKind_descriptor(), kind);
}

std::vector<std::string> AlertKindNames() {
  const EnumDescriptor* d = v1::AlertKind_descriptor();
  std::vector<std::string> out;
  for (int i = 0; i < d->value_count(); ++i) {
    std::string name = ToName(d, d->value(i)->number());
    if (!name.empty()) out.push_back(std::move(name));
  }
  return out;
}

}  // namespace netvigil
