#include "common/logging.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "common/escape.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace netvigil {
namespace {

// The last line of defence for the logs: a message that still holds a
// control byte, invalid UTF-8 or a hidden code point (a call site that
// printed an agent's string without LogValue) is written through Escape, so
// no event can start a forged line in the collector's or the agent's log or
// drive a terminal. Messages without one, all of them when every call site
// is right, pass untouched; only such a line has its backslashes doubled.
class EscapingFormatter final : public spdlog::formatter {
 public:
  explicit EscapingFormatter(std::unique_ptr<spdlog::formatter> inner)
      : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    const absl::string_view payload(msg.payload.data(), msg.payload.size());
    if (!HasControls(payload)) {
      inner_->format(msg, dest);
      return;
    }
    const std::string escaped = Escape(payload);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->format(copy, dest);
    msg.color_range_start = copy.color_range_start;
    msg.color_range_end = copy.color_range_end;
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<EscapingFormatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

void InitLogging(const std::string& program, const std::string& level) {
  auto logger = spdlog::stderr_color_mt(program);
  // Under systemd the journal adds its own timestamps and program name.
  const char* pattern = getenv("JOURNAL_STREAM") != nullptr
                            ? "%l %v"
                            : "%Y-%m-%dT%H:%M:%S.%e %n %l %v";
  logger->set_formatter(std::make_unique<EscapingFormatter>(
      std::make_unique<spdlog::pattern_formatter>(pattern)));
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace netvigil
