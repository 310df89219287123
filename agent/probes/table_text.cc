#include "agent/probes/table_text.h"

namespace netvigil::agent {

void AppendLeft(std::string* out, absl::string_view text, size_t width) {
  out->append(text.data(), text.size());
  if (text.size() < width) out->append(width - text.size(), ' ');
}

void AppendRight(std::string* out, absl::string_view text, size_t width) {
  if (text.size() < width) out->append(width - text.size(), ' ');
  out->append(text.data(), text.size());
}

}  // namespace netvigil::agent
