// IsOk() and StatusIs(code) for absl::Status and absl::StatusOr<T>: Debian's
// Abseil ships no test-only matchers. Thread-safe (stateless).
#ifndef NETVIGIL_TESTS_TESTING_STATUS_MATCHERS_H_
#define NETVIGIL_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace netvigil::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, substring,
           "has status code " + absl::StatusCodeToString(code) +
               " and a message containing '" + std::string(substring) + "'") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         s.message().find(substring) != absl::string_view::npos;
}

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_STATUS_MATCHERS_H_
