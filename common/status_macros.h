// Small helpers for absl::Status plumbing. Thread-safe (stateless).
#ifndef NETVIGIL_COMMON_STATUS_MACROS_H_
#define NETVIGIL_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define NV_CONCAT_INNER_(a, b) a##b
#define NV_CONCAT_(a, b) NV_CONCAT_INNER_(a, b)

// Returns from the calling function when `expr` (an absl::Status) is not OK.
#define NV_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status nv_status_ = (expr);      \
    if (!nv_status_.ok()) return nv_status_; \
  } while (0)

// `NV_ASSIGN_OR_RETURN(auto x, F());` assigns the value of an absl::StatusOr
// or returns its status.
#define NV_ASSIGN_OR_RETURN(lhs, expr) \
  NV_ASSIGN_OR_RETURN_IMPL_(NV_CONCAT_(nv_statusor_, __LINE__), lhs, expr)
#define NV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // NETVIGIL_COMMON_STATUS_MACROS_H_
