#include "agent/spool/wal_header.h"

#include "absl/strings/str_cat.h"

namespace netvigil::agent::spool {

std::optional<std::string> WalTornDetail(absl::string_view header,
                                         uint64_t file_size) {
  if (file_size == 0) return std::nullopt;
  if (header.size() < kWalHeaderBytes || file_size < kWalHeaderBytes) {
    return absl::StrCat("wal header cut at ", file_size, " bytes");
  }
  auto be32 = [&](size_t i) {
    auto b = [&](size_t k) {
      return static_cast<uint32_t>(static_cast<unsigned char>(header[k]));
    };
    return (b(i) << 24) | (b(i + 1) << 16) | (b(i + 2) << 8) | b(i + 3);
  };
  const uint32_t magic = be32(0);
  const uint32_t page = be32(8);
  if ((magic != 0x377f0682 && magic != 0x377f0683) || page < 512 ||
      page > 65536) {
    return std::string("wal header unreadable");
  }
  const uint64_t frame = uint64_t{page} + 24;
  if ((file_size - kWalHeaderBytes) % frame != 0) {
    return absl::StrCat("wal of ", file_size, " bytes ends mid-frame");
  }
  return std::nullopt;
}

std::optional<std::string> WalLooksTorn(FileSystem& fs,
                                        const std::string& wal_path) {
  absl::StatusOr<std::unique_ptr<File>> f =
      fs.Open(wal_path, FileSystem::Mode::kRead);
  if (!f.ok()) return std::nullopt;
  absl::StatusOr<uint64_t> size = (*f)->Size();
  if (!size.ok()) return std::nullopt;
  char hdr[kWalHeaderBytes];
  absl::StatusOr<size_t> n = (*f)->Read(0, hdr, sizeof(hdr));
  if (!n.ok()) return std::nullopt;
  return WalTornDetail(absl::string_view(hdr, *n), *size);
}

}  // namespace netvigil::agent::spool
