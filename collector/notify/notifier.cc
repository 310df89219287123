#include "collector/notify/notifier.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/escape.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// Rows claimed in one round: a flood of alerts is one digest only when it
// is claimed whole.
constexpr size_t kClaimLimit = 1000;

}  // namespace

Notifier::Notifier(NotifyConfig config, Channels channels, AlertStore& store,
                   Clock& clock, std::function<double()> uniform01)
    : config_(std::move(config)),
      channels_(std::move(channels)),
      store_(store),
      clock_(clock),
      uniform01_(std::move(uniform01)) {
  // A claimed row is another sender's (or this one's after a crash) again
  // when its lease ends: long enough for a round that sends every message
  // at its channel's timeout would be absurd, so a minute plus three
  // timeouts of the slowest channel; a round longer than that may send a
  // message twice (at least once, README).
  absl::Duration slowest = absl::ZeroDuration();
  for (const auto& c : config_.channels) slowest = std::max(slowest, c.timeout);
  lease_ = config_.claim_lease > absl::ZeroDuration()
               ? config_.claim_lease
               : absl::Minutes(1) + 3 * slowest;
}

Notifier::~Notifier() { Stop(); }

OutboxOptions Notifier::OutboxOptionsFor(const NotifyConfig& config) {
  OutboxOptions o;
  o.gather = config.gather;
  for (const NotifyChannelConfig& c : config.channels) {
    NotifyRoute r;
    r.channel = c.name;
    r.kinds.insert(c.kinds.begin(), c.kinds.end());
    r.min_severity = c.min_severity;
    o.routes.push_back(std::move(r));
  }
  return o;
}

absl::StatusOr<Notifier::Channels> Notifier::BuildChannels(
    const NotifyConfig& config) {
  Channels out;
  for (const NotifyChannelConfig& c : config.channels) {
    absl::StatusOr<std::unique_ptr<NotifyChannel>> ch = MakeChannel(c);
    if (!ch.ok()) return ch.status();
    out[c.name] = std::move(*ch);
  }
  return out;
}

void Notifier::SetHealthListener(HealthListener listener) {
  absl::MutexLock l(&mu_);
  listener_ = std::move(listener);
}

absl::Status Notifier::ExpireUnknownChannels() {
  std::set<std::string> known;
  for (const auto& [name, ch] : channels_) known.insert(name);
  absl::StatusOr<std::map<std::string, int64_t>> gone =
      store_.ExpireUnknownChannels(known);
  if (!gone.ok()) return gone.status();
  for (const auto& [channel, n] : *gone) {
    spdlog::warn(
        "event=notify_channel_gone channel={} expired={} reason=\"no longer "
        "in notify.channels\"",
        LogValue(channel), n);
  }
  return absl::OkStatus();
}

absl::Duration Notifier::RetryDelay(int attempts) {
  Backoff b({config_.retry_initial, config_.retry_max, 2.0}, uniform01_);
  absl::Duration d = b.Next();
  for (int i = 1; i < std::min(attempts, 64); ++i) d = b.Next();
  return d;
}

void Notifier::OnSent(const std::string& channel) {
  Health& h = health_[channel];
  const bool report = h.reported_failing || !h.seen_success;
  h = Health();
  h.seen_success = true;
  if (!report) return;
  HealthListener l;
  {
    absl::MutexLock lock(&mu_);
    l = listener_;
  }
  if (l) l(channel, false, "");
}

void Notifier::OnFailed(const std::string& channel, const std::string& why) {
  Health& h = health_[channel];
  const absl::Time now = clock_.Now();
  if (h.failing_since == absl::InfiniteFuture()) h.failing_since = now;
  if (h.reported_failing || now - h.failing_since < config_.fail_alert_after) {
    return;
  }
  h.reported_failing = true;
  spdlog::error(
      "event=notify_channel_failing channel={} since={} error={}",
      LogValue(channel),
      absl::FormatTime(absl::RFC3339_sec, h.failing_since, absl::UTCTimeZone()),
      LogValue(why));
  HealthListener l;
  {
    absl::MutexLock lock(&mu_);
    l = listener_;
  }
  if (l) l(channel, true, why);
}

absl::StatusOr<int> Notifier::RunOnce() {
  const absl::Time now = clock_.Now();
  // A flood of alerts reaches the outbox over a few snapshots and
  // transactions: while events keep coming (the newest unsent one younger
  // than `gather`) wait, for at most 5 gathers, so that the flood is one
  // round and one digest.
  absl::StatusOr<absl::Time> newest = store_.NewestUnsent();
  if (!newest.ok()) return newest.status();
  if (*newest > now - config_.gather) {
    if (burst_since_ == absl::InfiniteFuture()) burst_since_ = now;
    if (now - burst_since_ < 5 * config_.gather) return 0;
  }
  burst_since_ = absl::InfiniteFuture();
  absl::StatusOr<std::vector<OutboxRow>> rows =
      store_.ClaimOutbox(now, lease_, kClaimLimit);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return 0;
  std::map<std::pair<std::string, int64_t>, absl::Time> recent;
  if (config_.min_interval > absl::ZeroDuration()) {
    auto r = store_.RecentlySent(now - config_.min_interval);
    if (!r.ok()) return r.status();
    recent = std::move(*r);
  }
  PlanOptions po;
  po.min_interval = config_.min_interval;
  po.digest_after = config_.digest_after;
  po.expire_after = config_.expire_after;
  po.web_url = config_.web_url;
  RoundPlan plan = PlanRound(*rows, recent, now, po);
  std::map<int64_t, const OutboxRow*> by_id;
  for (const OutboxRow& r : *rows) by_id[r.id] = &r;

  std::vector<OutboxUpdate> updates = plan.updates;
  for (const OutboxUpdate& u : plan.updates) {
    if (u.state != OutboxState::kExpired) continue;
    const OutboxRow& r = *by_id[u.id];
    spdlog::error(
        "event=notify_expired channel={} event_id={} alert_id={} attempts={} "
        "error={}",
        LogValue(r.channel), EventIdOf(r.event_id), r.alert_id, r.attempts - 1,
        LogValue(r.last_error));
  }
  std::map<std::string, std::string> failed;  // channel -> why, this round
  int sent = 0;
  for (const PlannedMessage& m : plan.messages) {
    auto retry = [&](const std::string& why) {
      for (int64_t id : m.row_ids) {
        OutboxUpdate u;
        u.id = id;
        u.state = OutboxState::kPending;
        u.next_attempt_at = now + RetryDelay(by_id[id]->attempts);
        u.last_error = why;
        updates.push_back(std::move(u));
      }
    };
    auto ch = channels_.find(m.channel);
    if (ch == channels_.end()) {
      // Routed by a collector with another config, still running or
      // before ExpireUnknownChannels: leave it to its lease.
      retry("channel not configured in this collector");
      continue;
    }
    if (auto f = failed.find(m.channel); f != failed.end()) {
      // One failure a round per channel: the rest wait their backoff
      // instead of each waiting out the timeout.
      retry(f->second);
      continue;
    }
    absl::StatusOr<std::string> answer = ch->second->Send(m.message);
    if (answer.ok()) {
      ++sent;
      const absl::Time at = clock_.Now();
      for (int64_t id : m.row_ids) {
        OutboxUpdate u;
        u.id = id;
        u.state = OutboxState::kSent;
        u.sent_at = at;
        updates.push_back(std::move(u));
      }
      spdlog::info(
          "event=notify_sent channel={} event_id={} events={} digest={} "
          "answer={}",
          LogValue(m.channel), m.message.event_id, m.row_ids.size(),
          m.digest ? "yes" : "no", LogValue(*answer));
      OnSent(m.channel);
    } else {
      const std::string why(answer.status().message());
      failed[m.channel] = why;
      retry(why);
      spdlog::warn(
          "event=notify_send_failed channel={} event_id={} events={} "
          "error={}",
          LogValue(m.channel), m.message.event_id, m.row_ids.size(),
          LogValue(why));
      OnFailed(m.channel, why);
    }
  }
  if (absl::Status s = store_.UpdateOutbox(updates); !s.ok()) {
    // The rows stay claimed until their lease ends, then are sent again:
    // at least once, never lost.
    return s;
  }
  return sent;
}

void Notifier::Loop() {
  bool expired = false;
  do {
    if (!expired) {
      absl::Status s = ExpireUnknownChannels();
      expired = s.ok();
      if (!s.ok() && std::string(s.message()) != last_error_) {
        last_error_ = std::string(s.message());
        spdlog::error("event=notify_store_error error={}",
                      LogValue(last_error_));
      }
      if (!expired) continue;
      // No channels: only the rows of channels that left the config had
      // to expire.
      if (channels_.empty()) return;
    }
    absl::StatusOr<int> n = RunOnce();
    if (!n.ok()) {
      if (std::string(n.status().message()) != last_error_) {
        last_error_ = std::string(n.status().message());
        spdlog::error("event=notify_store_error error={}",
                      LogValue(last_error_));
      }
    } else {
      last_error_.clear();
    }
  } while (!stop_.WaitForNotificationWithTimeout(config_.poll_interval));
}

void Notifier::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Notifier::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace netvigil::collector
