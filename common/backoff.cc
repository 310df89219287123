#include "common/backoff.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

namespace netvigil {

Backoff::Backoff(Options options, std::function<double()> uniform01)
    : options_(options), uniform01_(std::move(uniform01)) {
  if (!uniform01_) {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    uniform01_ = [gen] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(*gen);
    };
  }
}

absl::Duration Backoff::Next() {
  const double growth = std::pow(options_.multiplier, std::min(attempt_, 62));
  absl::Duration ceiling = options_.initial * growth;
  if (ceiling > options_.max || ceiling < absl::ZeroDuration()) {
    ceiling = options_.max;
  }
  ++attempt_;
  const double u = std::clamp(uniform01_(), 0.0, 1.0);
  return ceiling / 2 + (ceiling / 2) * u;
}

}  // namespace netvigil
