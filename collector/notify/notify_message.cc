#include "collector/notify/notify_message.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/escape.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace netvigil::collector {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

Value Str(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}

Value Num(double d) {
  Value v;
  v.set_number_value(d);
  return v;
}

std::string Lower(const std::string& enum_name, size_t prefix) {
  return absl::AsciiStrToLower(
      enum_name.size() > prefix ? enum_name.substr(prefix) : enum_name);
}

std::string SeverityName(v1::Severity s) {
  return Lower(v1::Severity_Name(s), 9);  // SEVERITY_
}

std::string ScopeName(v1::AlertScope s) {
  return Lower(v1::AlertScope_Name(s), 12);  // ALERT_SCOPE_
}

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::ToString(t);
}

std::string ToJson(const Struct& s) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(s, &out);
  return out;
}

// The fields README "Notifications" documents for one event.
Struct EventFields(const OutboxRow& row, const std::vector<int64_t>& folded,
                   const std::string& web_url) {
  const v1::Alert& a = row.event.alert();
  Struct s;
  auto& f = *s.mutable_fields();
  f["event_id"] = Str(EventIdOf(row.event_id));
  f["event"] = Str(row.news);
  f["alert_id"] = Num(static_cast<double>(a.id()));
  f["kind"] = Str(a.kind());
  f["scope"] = Str(ScopeName(a.scope()));
  f["severity"] = Str(SeverityName(a.severity()));
  Value hosts;
  for (const std::string& h : a.hosts()) {
    *hosts.mutable_list_value()->add_values() = Str(h);
  }
  if (!hosts.has_list_value()) hosts.mutable_list_value();
  f["hosts"] = hosts;
  f["summary"] = Str(a.summary());
  f["opened_at"] = Str(Rfc3339(a.first_seen()));
  f["at"] = Str(Rfc3339(row.event.at()));
  if (a.has_resolved_at()) f["resolved_at"] = Str(Rfc3339(a.resolved_at()));
  Value link;
  auto& lf = *link.mutable_struct_value()->mutable_fields();
  lf["cli"] = Str(absl::StrCat("netvigil alerts --id ", a.id()));
  if (!web_url.empty()) {
    std::string base = web_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    lf["web"] = Str(absl::StrCat(base, "/alerts/", a.id()));
  }
  f["link"] = link;
  Value fl;
  fl.mutable_list_value();
  for (int64_t id : folded) {
    *fl.mutable_list_value()->add_values() = Str(EventIdOf(id));
  }
  f["folded_event_ids"] = fl;
  return s;
}

// "opened warning new_listener on h1: <summary>", escaped, one line.
std::string OneLine(const OutboxRow& row) {
  const v1::Alert& a = row.event.alert();
  return Escape(absl::StrCat(row.news, " ", SeverityName(a.severity()), " ",
                             a.kind(), " on ", absl::StrJoin(a.hosts(), ","),
                             ": ", a.summary()));
}

}  // namespace

std::string EventIdOf(int64_t alert_event_id) {
  return absl::StrCat("netvigil-event-", alert_event_id);
}

NotifyMessage EventMessage(const OutboxRow& row,
                           const std::vector<int64_t>& folded,
                           const std::string& web_url) {
  NotifyMessage m;
  m.event_id = EventIdOf(row.event_id);
  const v1::Alert& a = row.event.alert();
  m.subject = Escape(absl::StrCat("[netvigil] ", row.news, ": ", a.kind(),
                                  " on ", absl::StrJoin(a.hosts(), ",")));
  if (m.subject.size() > 200) m.subject.resize(200);
  m.json = ToJson(EventFields(row, folded, web_url));
  m.text = absl::StrCat(OneLine(row), "\n\nalert #", a.id(), " (",
                        ScopeName(a.scope()), "), opened at ",
                        Rfc3339(a.first_seen()),
                        "\nshow it: netvigil alerts --id ", a.id(), "\n");
  if (!web_url.empty()) absl::StrAppend(&m.text, "web: ", web_url, "\n");
  absl::StrAppend(&m.text, "event id: ", m.event_id, "\n");
  return m;
}

NotifyMessage DigestMessage(const std::vector<OutboxRow>& rows,
                            const std::string& web_url) {
  NotifyMessage m;
  const int64_t first = rows.empty() ? 0 : rows.front().event_id;
  const int64_t last = rows.empty() ? 0 : rows.back().event_id;
  m.event_id = absl::StrCat("netvigil-digest-", first, "-", last);
  m.subject = absl::StrCat("[netvigil] ", rows.size(), " alerts opened");
  Struct s;
  auto& f = *s.mutable_fields();
  f["event_id"] = Str(m.event_id);
  f["event"] = Str("digest");
  f["count"] = Num(static_cast<double>(rows.size()));
  f["summary"] = Str(m.subject.substr(12));
  Value events;
  events.mutable_list_value();
  m.text = absl::StrCat(m.subject.substr(12), ":\n\n");
  for (const OutboxRow& r : rows) {
    *events.mutable_list_value()->add_values()->mutable_struct_value() =
        EventFields(r, {}, web_url);
    absl::StrAppend(&m.text, "#", r.event.alert().id(), " ", OneLine(r), "\n");
  }
  f["events"] = events;
  absl::StrAppend(&m.text,
                  "\nshow them: netvigil alerts\nevent id: ", m.event_id, "\n");
  m.json = ToJson(s);
  return m;
}

NotifyMessage TestMessage(const std::string& channel, absl::Time now) {
  NotifyMessage m;
  m.event_id = absl::StrCat("netvigil-test-", absl::ToUnixMicros(now));
  m.subject = Escape(absl::StrCat("[netvigil] test message for ", channel));
  Struct s;
  auto& f = *s.mutable_fields();
  f["event_id"] = Str(m.event_id);
  f["event"] = Str("test");
  f["channel"] = Str(channel);
  f["summary"] = Str("netvigil-collector notify test: this channel works");
  f["at"] = Str(absl::FormatTime(absl::RFC3339_full, now, absl::UTCTimeZone()));
  m.json = ToJson(s);
  m.text = absl::StrCat(
      "netvigil-collector notify test: this channel works.\nevent id: ",
      m.event_id, "\n");
  return m;
}

}  // namespace netvigil::collector
