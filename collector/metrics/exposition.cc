#include "collector/metrics/exposition.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace netvigil::collector::metrics {
namespace {

bool ValidName(absl::string_view name, bool colon_ok) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok =
        absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' ||
        (colon_ok && c == ':') ||
        (i > 0 && absl::ascii_isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  // Names starting with __ are reserved for Prometheus's own labels.
  return colon_ok || !absl::StartsWith(name, "__");
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  const std::string utf8 =
      IsValidUtf8(value) ? std::string(value) : ToValidUtf8(value);
  std::string out;
  out.reserve(utf8.size());
  for (char c : utf8) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Whole numbers (counters, bytes, bit rates) in plain digits: "10", not
  // %g's "1e+01".
  if (std::fabs(v) < 1e15 && v == std::trunc(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // The shortest form that reads back the same (most figures are short).
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string Render(const std::vector<Family>& families) {
  std::string out;
  for (const Family& f : families) {
    if (!ValidName(f.name, true)) continue;
    absl::StrAppend(&out, "# HELP ", f.name, " ", EscapeHelp(f.help), "\n",
                    "# TYPE ", f.name, " ", f.type, "\n");
    for (const Sample& s : f.samples) {
      std::string labels;
      for (const auto& [k, v] : s.labels) {
        if (!ValidName(k, false)) continue;
        absl::StrAppend(&labels, labels.empty() ? "" : ",", k, "=\"",
                        EscapeLabelValue(v), "\"");
      }
      absl::StrAppend(&out, f.name, s.suffix,
                      labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ",
                      FormatValue(s.value), "\n");
    }
  }
  return out;
}

}  // namespace netvigil::collector::metrics
