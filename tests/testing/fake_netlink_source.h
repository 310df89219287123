// FakeNetlinkSource: a NetlinkSource that replays recorded inet_diag dumps
// (tests/fixtures/sock_diag/*.bin), for unit tests. Thread-compatible.
#ifndef NETVIGIL_TESTS_TESTING_FAKE_NETLINK_SOURCE_H_
#define NETVIGIL_TESTS_TESTING_FAKE_NETLINK_SOURCE_H_

#include <linux/netlink.h>

#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "agent/sys/netlink_source.h"

namespace netvigil::testing {

class FakeNetlinkSource final : public agent::NetlinkSource {
 public:
  // The reply bytes for one (family, protocol); a dump not set replies with
  // an empty dump (NLMSG_DONE alone). `chunk_size` > 0 splits the reply at
  // message boundaries into chunks of about that many bytes, as recv() would.
  void Set(uint8_t family, uint8_t protocol, std::string bytes) {
    dumps_[{family, protocol}] = std::move(bytes);
  }
  void SetError(absl::Status error) { error_ = std::move(error); }
  void set_chunk_size(size_t n) { chunk_size_ = n; }

  absl::Status DumpInet(
      uint8_t family, uint8_t protocol,
      absl::FunctionRef<absl::Status(absl::string_view)> on_chunk) override {
    if (!error_.ok()) return error_;
    auto it = dumps_.find({family, protocol});
    std::string bytes = it != dumps_.end() ? it->second : EmptyDump();
    absl::string_view rest(bytes);
    while (!rest.empty()) {
      size_t take = rest.size();
      if (chunk_size_ > 0) take = MessagesUpTo(rest, chunk_size_);
      absl::Status st = on_chunk(rest.substr(0, take));
      if (!st.ok()) return st;
      rest.remove_prefix(take);
    }
    return absl::OkStatus();
  }

  static std::string EmptyDump() {
    nlmsghdr done{};
    done.nlmsg_len = NLMSG_LENGTH(sizeof(int));
    done.nlmsg_type = NLMSG_DONE;
    std::string out(NLMSG_ALIGN(done.nlmsg_len), '\0');
    std::memcpy(out.data(), &done, sizeof(done));
    return out;
  }

 private:
  // Bytes of the whole messages that fit in `limit` (at least one message).
  static size_t MessagesUpTo(absl::string_view bytes, size_t limit) {
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= bytes.size()) {
      nlmsghdr h;
      std::memcpy(&h, bytes.data() + off, sizeof(h));
      size_t next = off + NLMSG_ALIGN(h.nlmsg_len);
      if (h.nlmsg_len < sizeof(nlmsghdr) || next > bytes.size()) break;
      if (off > 0 && next > limit) break;
      off = next;
    }
    return off == 0 ? bytes.size() : off;
  }

  std::map<std::pair<uint8_t, uint8_t>, std::string> dumps_;
  absl::Status error_;
  size_t chunk_size_ = 0;
};

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FAKE_NETLINK_SOURCE_H_
