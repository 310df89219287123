// The version every binary reports. Thread-safe (a constant).
#ifndef NETVIGIL_COMMON_VERSION_H_
#define NETVIGIL_COMMON_VERSION_H_

namespace netvigil {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace netvigil

#endif  // NETVIGIL_COMMON_VERSION_H_
