// Fuzzes what the collector does with an agent's message before and while
// storing it: the bytes are one v1.AgentMessage as it arrives on the stream;
// hello and results go through validation, and a result that passes is
// mapped as the store maps it (socket and file facts, PostgreSQL array
// literals). Properties: no crash or sanitizer report; a message that passes
// validation holds nothing PostgreSQL refuses (else the agent would resend
// it forever); the array literals give back exactly their elements.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "collector/ingest/validation.h"
#include "collector/store/history_mapping.h"
#include "common/model/facts.h"
#include "netvigil/v1/agent.pb.h"
#include "tests/fuzz/fuzz_support.h"

namespace netvigil::fuzz {
namespace {

// Reads back a one-dimensional PostgreSQL array literal of quoted elements,
// as array_in does: backslash escapes the next byte inside quotes.
std::vector<std::string> ReadTextArray(const std::string& lit) {
  std::vector<std::string> out;
  if (lit.size() < 2 || lit.front() != '{' || lit.back() != '}') {
    Fail("array literal not in braces: " + lit);
  }
  size_t i = 1;
  const size_t end = lit.size() - 1;
  while (i < end) {
    if (lit[i] != '"') Fail("unquoted element in " + lit);
    std::string v;
    for (++i;; ++i) {
      if (i >= end) Fail("unterminated element in " + lit);
      if (lit[i] == '\\') {
        if (++i >= end) Fail("dangling backslash in " + lit);
        v += lit[i];
      } else if (lit[i] == '"') {
        ++i;
        break;
      } else {
        v += lit[i];
      }
    }
    out.push_back(std::move(v));
    if (i < end) {
      if (lit[i] != ',') Fail("no comma after an element in " + lit);
      ++i;
      if (i == end) Fail("trailing comma in " + lit);
    }
  }
  return out;
}

void CheckTextArray(const std::vector<std::string>& v) {
  if (ReadTextArray(collector::PgTextArray(v)) != v) {
    Fail("PgTextArray does not read back as its elements");
  }
}

void CheckIntArray(const std::vector<int64_t>& v) {
  const std::string lit = collector::PgIntArray(v);
  std::vector<int64_t> back;
  if (lit != "{}") {
    std::string digits;
    for (size_t i = 1; i < lit.size(); ++i) {
      if (lit[i] == ',' || lit[i] == '}') {
        int64_t x;
        if (!absl::SimpleAtoi(digits, &x)) Fail("not a number in " + lit);
        back.push_back(x);
        digits.clear();
      } else {
        digits += lit[i];
      }
    }
  }
  if (back != v) Fail("PgIntArray does not read back as its elements");
}

// The facts of a snapshot, as the store keys them, and every text and
// number of them through the array literals the store sends them in.
void MapSockets(const v1::SocketSnapshot& snap) {
  std::vector<std::string> texts;
  std::vector<int64_t> numbers;
  for (const auto& [k, info] : model::SocketFactsOf(snap)) {
    texts.insert(texts.end(), {model::KindName(k.kind), k.local_address,
                               k.remote_address, k.owner, info.process_name});
    numbers.insert(numbers.end(), {k.proto, k.local_port, k.remote_port});
  }
  CheckTextArray(texts);
  CheckIntArray(numbers);
}

void MapFiles(const v1::FileSnapshot& snap) {
  std::vector<std::string> texts;
  std::vector<int64_t> numbers;
  for (const auto& [k, info] : model::FileFactsOf(snap)) {
    texts.insert(texts.end(), {k.owner, k.path, info.process_name});
    numbers.insert(numbers.end(), {k.kind, info.uid, info.deleted});
  }
  CheckTextArray(texts);
  CheckIntArray(numbers);
}

}  // namespace
}  // namespace netvigil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace netvigil;
  v1::AgentMessage msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  const collector::Limits& limits = collector::DefaultLimits();
  switch (msg.msg_case()) {
    case v1::AgentMessage::kHello:
      if (collector::ValidateHello(msg.hello(), limits).ok()) {
        fuzz::CheckStorable(msg.hello());
      }
      break;
    case v1::AgentMessage::kHeartbeat:
      (void)collector::ValidateHeartbeat(msg.heartbeat(), limits);
      break;
    case v1::AgentMessage::kResult: {
      const v1::Result& r = msg.result();
      if (!collector::ValidateResult(r, fuzz::kNowUnixS, limits).ok()) break;
      fuzz::CheckStorable(r);
      if (r.has_sockets()) fuzz::MapSockets(r.sockets());
      if (r.has_files()) fuzz::MapFiles(r.files());
      break;
    }
    default:
      break;
  }
  return 0;
}
