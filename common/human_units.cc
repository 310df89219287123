#include "common/human_units.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace netvigil {

std::string HumanDuration(absl::Duration d) {
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    return "forever";
  }
  if (d < absl::ZeroDuration()) return absl::StrCat("-", HumanDuration(-d));
  if (d == absl::ZeroDuration()) return "0s";
  if (d < absl::Seconds(1)) {
    return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
  }
  if (d < absl::Seconds(10)) {
    // One decimal, but "4s" rather than "4.0s".
    const int64_t tenths =
        absl::ToInt64Milliseconds(d + absl::Milliseconds(50)) / 100;
    if (tenths % 10 == 0) return absl::StrCat(tenths / 10, "s");
    return absl::StrCat(tenths / 10, ".", tenths % 10, "s");
  }
  // Whole seconds from here on, rounded to the nearest.
  const int64_t s = absl::ToInt64Seconds(d + absl::Milliseconds(500));
  struct Unit {
    int64_t seconds;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (size_t i = 0; i < 4; ++i) {
    if (s < kUnits[i].seconds) continue;
    const int64_t big = s / kUnits[i].seconds;
    std::string out = absl::StrCat(big, kUnits[i].name);
    if (i + 1 < 4) {
      const int64_t small = (s % kUnits[i].seconds) / kUnits[i + 1].seconds;
      if (small != 0) absl::StrAppend(&out, small, kUnits[i + 1].name);
    }
    return out;
  }
  return "0s";
}

std::string HumanBitrate3(double bps) {
  if (!std::isfinite(bps) || bps < 0) return "?";
  static constexpr const char* kUnits[] = {"bit/s", "kbit/s", "Mbit/s",
                                           "Gbit/s", "Tbit/s"};
  size_t unit = 0;
  double v = bps;
  // Rounding first, so 999.96e6 is "1.00 Gbit/s", not "1000 Mbit/s".
  while (unit + 1 < 5 &&
         std::strtod(absl::StrFormat("%.3g", v).c_str(), nullptr) >= 1000) {
    v /= 1000;
    ++unit;
  }
  if (unit == 0) return absl::StrFormat("%.0f bit/s", v);
  const int decimals = v < 10 ? 2 : v < 100 ? 1 : 0;
  return absl::StrFormat("%.*f %s", decimals, v, kUnits[unit]);
}

}  // namespace netvigil
