// The varints and the bounded reader of the collector's own packed formats
// (socket events in history_mapping.cc, path runs in path_pack.cc): one
// encoding, written once. Pure; no state shared between calls.
#ifndef NETVIGIL_COLLECTOR_STORE_PACK_CODEC_H_
#define NETVIGIL_COLLECTOR_STORE_PACK_CODEC_H_

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace netvigil::collector::pack {

inline void PutVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void PutString(const std::string& s, std::string& out) {
  PutVarint(s.size(), out);
  out += s;
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Reads from a packed value, never past its end: each call says whether
// what it wanted was there.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  size_t left() const { return in_.size() - pos_; }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;  // more than ten bytes: not a varint
  }
  // A varint that fits a uint32 (the proto's counters).
  bool U32(uint32_t& v) {
    uint64_t x = 0;
    if (!Varint(x) || x > std::numeric_limits<uint32_t>::max()) return false;
    v = static_cast<uint32_t>(x);
    return true;
  }
  bool Bytes(size_t n, std::string& out) {
    if (n > left()) return false;
    out.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  // A length, then that many bytes (PutString).
  bool String(std::string& out) {
    uint64_t n = 0;
    return Varint(n) && Bytes(n, out);
  }
  bool Double(double& v) {
    if (left() < sizeof(v)) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof(v));
    pos_ += sizeof(v);
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace netvigil::collector::pack

#endif  // NETVIGIL_COLLECTOR_STORE_PACK_CODEC_H_
