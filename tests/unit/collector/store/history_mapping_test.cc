// collector/store/history_mapping.cc: results onto history rows, with no
// PostgreSQL linked (this test links only the mapping's library: the path
// rule in tests/CMakeLists.txt). The writer's own behaviour on a real
// database is history_writer_test's.
#include "collector/store/history_mapping.h"

#include <zlib.h>

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace netvigil::collector::history {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

model::SocketFact Listener(uint32_t port, const std::string& owner) {
  model::SocketFact f;
  f.kind = model::SocketFactKind::kListener;
  f.proto = v1::TRANSPORT_TCP;
  f.local_address = "0.0.0.0";
  f.local_port = port;
  f.owner = owner;
  return f;
}

TEST(PgArrayTest, QuotesAndEscapesEveryElement) {
  EXPECT_EQ(PgTextArray({}), "{}");
  EXPECT_EQ(PgTextArray({"a", "b c", "q\"x", "back\\slash", ""}),
            R"({"a","b c","q\"x","back\\slash",""})");
  EXPECT_EQ(PgIntArray({}), "{}");
  EXPECT_EQ(PgIntArray({1, -2, INT64_MAX}), "{1,-2,9223372036854775807}");
}

TEST(StateKindTest, EachProbeHasItsKindAndAGapNone) {
  v1::Result r;
  EXPECT_EQ(StateKind(r), nullptr);
  r.mutable_sockets();
  EXPECT_STREQ(StateKind(r), "sockets");
  r.mutable_files();
  EXPECT_STREQ(StateKind(r), "files");
  r.mutable_path();
  EXPECT_STREQ(StateKind(r), "path");
  r.mutable_speed();
  EXPECT_STREQ(StateKind(r), "speed");
  r.mutable_gap();
  EXPECT_EQ(StateKind(r), nullptr);
}

TEST(SnapshotTimeTest, TheSnapshotsTimeElseWhenProduced) {
  using google::protobuf::util::TimeUtil;
  v1::Result r;
  *r.mutable_produced_at() = TimeUtil::MicrosecondsToTimestamp(2'000'000);
  r.mutable_sockets();
  EXPECT_EQ(SnapshotTime(r), 2'000'000);
  *r.mutable_sockets()->mutable_taken_at() =
      TimeUtil::MicrosecondsToTimestamp(1'500'000);
  EXPECT_EQ(SnapshotTime(r), 1'500'000);
  *r.mutable_files()->mutable_taken_at() =
      TimeUtil::MicrosecondsToTimestamp(1'700'000);
  EXPECT_EQ(SnapshotTime(r), 1'700'000);
  r.mutable_path();
  EXPECT_EQ(SnapshotTime(r), 2'000'000);
}

// Three snapshots of one agent in one batch: a listener appears, a second
// one appears while the first goes, then the first comes back. The events
// come in order; the net change per fact says when it was first and last
// seen (a gone fact: at the snapshot before the one that missed it).
TEST(FactBookTest, EventsInOrderAndTheNetChangePerFact) {
  SocketBook book;
  const model::SocketFact a = Listener(22, "/usr/sbin/sshd");
  const model::SocketFact b = Listener(80, "/usr/sbin/nginx");
  book.present[7][a] = {"sshd", false};  // present before the batch
  book.Apply(7, 11, 1100, 1000, {{a, {"sshd", false}}, {b, {"nginx", false}}});
  book.Apply(7, 12, 1200, 1100, {{b, {"nginx", false}}});
  book.Apply(7, 13, 1300, 1200, {{a, {"sshd2", false}}, {b, {"nginx", false}}});

  std::vector<std::string> events;
  for (const auto& e : book.events) {
    events.push_back(std::to_string(e.seq) + " " + e.change + " " +
                     std::to_string(e.key.local_port) + " " +
                     e.info.process_name);
  }
  EXPECT_THAT(events, ElementsAre("11 appeared 80 nginx", "12 gone 22 sshd",
                                  "13 appeared 22 sshd2"));
  ASSERT_EQ(book.deltas.size(), 2u);
  const auto& da = book.deltas.at({7, a});
  EXPECT_TRUE(da.present);
  EXPECT_TRUE(da.set_last);  // went once: its last_seen is rewritten
  EXPECT_EQ(da.last_seen, 1100);
  EXPECT_EQ(da.info.process_name, "sshd2");
  const auto& db = book.deltas.at({7, b});
  EXPECT_TRUE(db.present);
  EXPECT_FALSE(db.set_last);
  EXPECT_EQ(db.first_seen, 1100);
  EXPECT_EQ(db.last_seen, 1100);
  EXPECT_EQ(book.present.at(7).size(), 2u);
}

TEST(FactBookTest, AnUnchangedSnapshotWritesNothing) {
  FileBook book;
  const model::FileFact f{"/usr/bin/vim", "/home/a/x", v1::FILE_ACCESS_FD};
  book.present[1][f] = {"vim", 1000, false, false};
  book.Apply(1, 2, 200, 100, {{f, {"vim", 1000, false, false}}});
  EXPECT_THAT(book.events, IsEmpty());
  EXPECT_THAT(book.deltas, IsEmpty());
}

TEST(ColumnsTest, SocketRowsCarryTheStoresKindNames) {
  SocketColumns c;
  model::SocketFact r;
  r.kind = model::SocketFactKind::kRemote;
  r.proto = v1::TRANSPORT_UDP;
  r.remote_address = "192.0.2.1";
  r.remote_port = 53;
  r.owner = "/usr/bin/dig";
  c.AddKey(3, Listener(22, "/usr/sbin/sshd"), {"sshd", false});
  c.AddKey(4, r, {"dig", false});
  EXPECT_THAT(c.agent, ElementsAre(3, 4));
  EXPECT_THAT(c.kind, ElementsAre("listener", "remote"));
  EXPECT_THAT(c.proto, ElementsAre(v1::TRANSPORT_TCP, v1::TRANSPORT_UDP));
  EXPECT_THAT(c.lport, ElementsAre(22, 0));
  EXPECT_THAT(c.raddr, ElementsAre("", "192.0.2.1"));
  EXPECT_THAT(c.exe, ElementsAre("/usr/sbin/sshd", "/usr/bin/dig"));
  EXPECT_THAT(c.name, ElementsAre("sshd", "dig"));
}

TEST(ColumnsTest, FileRowsPackBothDeletedFlagsInOneColumn) {
  FileColumns c;
  const model::FileFact f{"/usr/bin/x", "/home/a/f", v1::FILE_ACCESS_MMAP};
  c.AddKey(1, f, {"x", 0, false, false});
  c.AddKey(1, f, {"x", 0, true, false});
  c.AddKey(1, f, {"x", 0, false, true});
  c.AddKey(1, f, {"x", 0, true, true});
  EXPECT_THAT(c.deleted, ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(c.kind, ElementsAre(v1::FILE_ACCESS_MMAP, v1::FILE_ACCESS_MMAP,
                                  v1::FILE_ACCESS_MMAP, v1::FILE_ACCESS_MMAP));
}

// An entry serves only the snapshot it was made from, and is gone after
// one Take either way.
TEST(PresentFactsCacheTest, TakesOnlyTheSnapshotItHolds) {
  PresentFactsCache cache;
  std::map<int64_t, PresentFactsCache::Sockets> sockets;
  sockets[5].seq = 40;
  sockets[5].facts[Listener(22, "/usr/sbin/sshd")] = {"sshd", false};
  cache.Put(std::move(sockets), {});
  PresentFactsCache::Sockets out;
  EXPECT_FALSE(cache.TakeSockets(5, 41, out));
  EXPECT_FALSE(cache.TakeSockets(5, 40, out));  // dropped by the miss

  std::map<int64_t, PresentFactsCache::Sockets> again;
  again[5].seq = 40;
  again[5].facts[Listener(22, "/usr/sbin/sshd")] = {"sshd", false};
  cache.Put(std::move(again), {});
  ASSERT_TRUE(cache.TakeSockets(5, 40, out));
  EXPECT_EQ(out.facts.size(), 1u);
  PresentFactsCache::Files files;
  EXPECT_FALSE(cache.TakeFiles(5, 40, files));
}

// --- packed socket events (migration 0016) ---------------------------------

std::vector<PackedSocketEvent> SomeEvents() {
  std::vector<PackedSocketEvent> out;
  for (int i = 0; i < 40; ++i) {
    out.push_back({i % 3 ? "appeared" : "gone", "remote", 6, "", 0,
                   absl::StrCat("198.51.100.", i), 443 + i % 2,
                   "/usr/lib/firefox/firefox", "firefox"});
  }
  // Odd values survive too: empty strings, bytes that are not text, a
  // negative or huge number (the columns decide what is valid, not this).
  out.push_back({"appeared", "listener", -1, "::", 65535,
                 std::string("\0\xff\\q\"", 5), -7, "", "\n"});
  out.push_back({"gone", "inbound", int64_t{1} << 40, "0.0.0.0", 22, "",
                 std::numeric_limits<int64_t>::min(), "/usr/sbin/sshd",
                 "sshd"});
  return out;
}

TEST(PackSocketEventsTest, RoundTripsEveryFieldInOrder) {
  const std::vector<PackedSocketEvent> events = SomeEvents();
  const std::string packed = PackSocketEvents(events);
  auto back = UnpackSocketEvents(packed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, events);
  auto none = UnpackSocketEvents(PackSocketEvents({}));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(*none, IsEmpty());
}

TEST(PackSocketEventsTest, RepeatedTextIsStoredOnce) {
  const std::vector<PackedSocketEvent> events = SomeEvents();
  const std::string packed = PackSocketEventsPlain(events);
  // 40 events naming the same program: its path once, not forty times.
  size_t n = 0;
  for (size_t at = packed.find("/usr/lib/firefox/firefox");
       at != std::string::npos;
       at = packed.find("/usr/lib/firefox/firefox", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 1u);
  EXPECT_LT(packed.size(), 40u * 30) << "about 30 bytes an event or less";
}

TEST(PackSocketEventsTest, DeflatedWhenSmallerAndReadBackAsWritten) {
  // A desktop snapshot's events: distinct remote addresses, a few
  // programs, the same ports (what the sizing benchmark's desktop makes).
  std::vector<PackedSocketEvent> events;
  for (int i = 0; i < 30; ++i) {
    PackedSocketEvent e;
    e.change = i % 3 ? "appeared" : "gone";
    e.kind = "remote";
    e.proto = 6;
    e.local_address = "192.168.1.10";
    e.remote_address = absl::StrCat(23 + i * 7 % 200, ".", i * 37 % 256, ".",
                                    i * 11 % 256, ".", 1 + i * 53 % 254);
    e.remote_port = i % 4 ? 443 : 80;
    e.exe = i % 2 ? "/usr/lib/firefox/firefox" : "/usr/bin/ssh";
    e.process_name = i % 2 ? "firefox" : "ssh";
    events.push_back(e);
  }
  const std::string plain = PackSocketEventsPlain(events);
  const std::string packed = PackSocketEvents(events);
  EXPECT_EQ(plain[0], '\1');
  EXPECT_EQ(packed[0], '\2');
  EXPECT_LT(packed.size(), plain.size() * 3 / 4) << plain.size();
  auto back = UnpackSocketEvents(packed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, events);
  auto back_plain = UnpackSocketEvents(plain);
  ASSERT_TRUE(back_plain.ok()) << back_plain.status();
  EXPECT_EQ(*back_plain, events) << "format 1 (rows written before) reads";
  // Too small to gain: format 1.
  EXPECT_EQ(PackSocketEvents({events[0]})[0], '\1');
}
TEST(PackSocketEventsTest, ADeflatedValueIsCheckedBeforeItIsTrusted) {
  std::vector<PackedSocketEvent> events = SomeEvents();
  const std::string packed = PackSocketEvents(events);
  ASSERT_EQ(packed[0], '\2');
  // Bytes after the deflated stream.
  EXPECT_FALSE(UnpackSocketEvents(packed + "x").ok());
  // A stated length past the cap, or not what it inflates to.
  EXPECT_FALSE(UnpackSocketEvents(std::string("\2\xff\xff\xff\xff\x0f", 6) +
                                  packed.substr(3))
                   .ok());
  std::string longer = packed;
  longer[1] = static_cast<char>(longer[1] + 1);
  EXPECT_FALSE(UnpackSocketEvents(longer).ok());
  // A deflated value that holds another deflated value: one level only.
  std::string nested = PackSocketEventsPlain(events);
  nested[0] = '\2';
  uLongf bound = compressBound(nested.size());
  std::string z(bound, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &bound,
                      reinterpret_cast<const Bytef*>(nested.data()),
                      nested.size(), Z_DEFAULT_COMPRESSION),
            Z_OK);
  z.resize(bound);
  std::string twice(1, '\2');
  for (uint64_t n = nested.size();; n >>= 7) {
    if (n < 0x80) {
      twice += static_cast<char>(n);
      break;
    }
    twice += static_cast<char>((n & 0x7f) | 0x80);
  }
  EXPECT_FALSE(UnpackSocketEvents(twice + z).ok());
}
TEST(PackSocketEventsTest, AnythingElseIsAnErrorNotACrash) {
  const std::string packed = PackSocketEvents(SomeEvents());
  EXPECT_FALSE(UnpackSocketEvents("").ok());
  EXPECT_FALSE(UnpackSocketEvents(std::string(1, '\2')).ok()) << "format 2";
  // Every prefix is cut short; every longer value has bytes after.
  for (size_t n = 0; n < packed.size(); ++n) {
    EXPECT_FALSE(UnpackSocketEvents(packed.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(UnpackSocketEvents(packed + "x").ok());
  // A string index past the table, a count larger than the value, a varint
  // longer than ten bytes.
  EXPECT_FALSE(
      UnpackSocketEvents(std::string("\1\0\1\5\0\0\0\0\0\0\0\0", 12)).ok());
  EXPECT_FALSE(UnpackSocketEvents(std::string("\1\x7f", 2)).ok());
  EXPECT_FALSE(
      UnpackSocketEvents(std::string(1, '\1') + std::string(11, '\xff')).ok());
  // Every single-byte change either decodes or is an error: never a crash.
  for (size_t i = 0; i < packed.size(); ++i) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string bad = packed;
      bad[i] = static_cast<char>(b);
      (void)UnpackSocketEvents(bad);
    }
  }
}

}  // namespace
}  // namespace netvigil::collector::history
