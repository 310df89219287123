#include "collector/alerts/pg_alert_store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/store/history_writer.h"
#include "common/pg_time.h"
#include "google/protobuf/util/json_util.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// NULL when the timestamp is unset.
std::optional<int64_t> MicrosOrNull(const google::protobuf::Timestamp& t,
                                    bool has) {
  if (!has) return std::nullopt;
  return ProtoTimeToEpochMicros(t);
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

constexpr const char* kSelect = "SELECT id, payload::text FROM alerts ";

absl::StatusOr<std::vector<v1::Alert>> Parse(const pqxx::result& r) {
  std::vector<v1::Alert> out;
  for (const auto& row : r) {
    v1::Alert a;
    google::protobuf::util::JsonParseOptions o;
    o.ignore_unknown_fields = true;
    auto s = google::protobuf::util::JsonStringToMessage(
        row[1].as<std::string>(), &a, o);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat("alert ", row[0].as<int64_t>(),
                                              ": bad payload: ", s.ToString()));
    }
    a.set_id(row[0].as<int64_t>());
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

absl::StatusOr<int64_t> PgAlertStore::SaveAlert(const v1::Alert& alert) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  int64_t id = alert.id();
  std::vector<std::string> hosts(alert.hosts().begin(), alert.hosts().end());
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const int64_t first = ProtoTimeToEpochMicros(alert.first_seen());
    const int64_t last = ProtoTimeToEpochMicros(alert.last_seen());
    auto resolved = MicrosOrNull(alert.resolved_at(), alert.has_resolved_at());
    auto acked_at =
        MicrosOrNull(alert.acknowledged_at(), alert.has_acknowledged_at());
    if (id == 0) {
      pqxx::row r = tx.exec_params1(
          "INSERT INTO alerts (kind, subject, severity, scope, hosts,"
          " remote_address, summary, first_seen, last_seen, resolved_at,"
          " acknowledged, acknowledged_at, acknowledged_by, payload)"
          " VALUES ($1, $2, $3, $4, $5::text[], $6, $7, to_timestamp($8 / 1e6),"
          " to_timestamp($9 / 1e6), to_timestamp($10 / 1e6), $11,"
          " to_timestamp($12 / 1e6), $13, $14::jsonb) RETURNING id",
          alert.kind(), alert.subject(), static_cast<int>(alert.severity()),
          static_cast<int>(alert.scope()), PgTextArray(hosts),
          alert.remote_address(), alert.summary(), first, last, resolved,
          alert.acknowledged(), acked_at, alert.acknowledged_by(),
          ToJson(alert));
      id = r[0].as<int64_t>();
    } else {
      pqxx::result r = tx.exec_params(
          "UPDATE alerts SET kind = $2, subject = $3, severity = $4,"
          " scope = $5, hosts = $6::text[], remote_address = $7, summary = $8,"
          " first_seen = to_timestamp($9 / 1e6),"
          " last_seen = to_timestamp($10 / 1e6),"
          " resolved_at = to_timestamp($11 / 1e6), acknowledged = $12,"
          " acknowledged_at = to_timestamp($13 / 1e6), acknowledged_by = $14,"
          " payload = $15::jsonb WHERE id = $1",
          id, alert.kind(), alert.subject(), static_cast<int>(alert.severity()),
          static_cast<int>(alert.scope()), PgTextArray(hosts),
          alert.remote_address(), alert.summary(), first, last, resolved,
          alert.acknowledged(), acked_at, alert.acknowledged_by(),
          ToJson(alert));
      if (r.affected_rows() == 0) {
        // A reserved id (ReserveAlertIds) not written yet: its first write.
        // The sequence gave it out, so no other alert has it.
        r = tx.exec_params(
            "INSERT INTO alerts (id, kind, subject, severity, scope, hosts,"
            " remote_address, summary, first_seen, last_seen, resolved_at,"
            " acknowledged, acknowledged_at, acknowledged_by, payload)"
            " SELECT $1::bigint, $2::text, $3::text, $4::smallint,"
            " $5::smallint, $6::text[], $7::text, $8::text,"
            " to_timestamp($9::bigint / 1e6), to_timestamp($10::bigint / 1e6),"
            " to_timestamp($11::bigint / 1e6), $12::boolean,"
            " to_timestamp($13::bigint / 1e6), $14::text, $15::jsonb"
            " WHERE $1::bigint <= (SELECT last_value FROM alerts_id_seq)",
            id, alert.kind(), alert.subject(),
            static_cast<int>(alert.severity()), static_cast<int>(alert.scope()),
            PgTextArray(hosts), alert.remote_address(), alert.summary(), first,
            last, resolved, alert.acknowledged(), acked_at,
            alert.acknowledged_by(), ToJson(alert));
        if (r.affected_rows() == 0) id = -1;
      }
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  if (id < 0) return absl::NotFoundError(absl::StrCat("no alert ", alert.id()));
  return id;
}

absl::StatusOr<std::vector<int64_t>> PgAlertStore::ReserveAlertIds(size_t n) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  std::vector<int64_t> ids;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    ids.clear();
    pqxx::work tx(c);
    for (const auto& row : tx.exec_params(
             "SELECT nextval('alerts_id_seq') FROM generate_series(1, $1)",
             static_cast<int64_t>(n))) {
      ids.push_back(row[0].as<int64_t>());
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  return ids;
}

absl::Status PgAlertStore::AppendEvent(const v1::AlertEvent& event) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  OutboxOptions options;
  {
    absl::MutexLock l(&mu_);
    options = outbox_options_;
  }
  const std::string payload = ToJson(event);
  const int64_t at = ProtoTimeToEpochMicros(event.at());
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // An update is news only when the severity rose above the alert's
    // last event's (proto3 JSON names the enum; an absent one is 0).
    v1::Severity previous = v1::SEVERITY_UNSPECIFIED;
    if (event.type() == v1::AlertEvent::TYPE_UPDATED &&
        !options.routes.empty()) {
      pqxx::result r = tx.exec_params(
          "SELECT coalesce(payload->'alert'->>'severity', '') FROM"
          " alert_events WHERE alert_id = $1 ORDER BY id DESC LIMIT 1",
          event.alert().id());
      if (!r.empty()) {
        v1::Severity s;
        if (v1::Severity_Parse(r[0][0].as<std::string>(), &s)) previous = s;
      }
    }
    const int64_t event_id =
        tx.exec_params1(
              "INSERT INTO alert_events (alert_id, type, at, payload)"
              " VALUES ($1, $2, to_timestamp($3 / 1e6), $4::jsonb)"
              " RETURNING id",
              event.alert().id(), static_cast<int>(event.type()), at,
              payload)[0]
            .as<int64_t>();
    const std::string news = NewsOf(event, previous);
    if (!news.empty()) {
      for (const std::string& channel : RouteEvent(options.routes, event)) {
        tx.exec_params(
            "INSERT INTO notify_outbox (event_id, channel, alert_id, news,"
            " payload, created_at, next_attempt_at)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, to_timestamp($6 / 1e6),"
            " to_timestamp($7 / 1e6))",
            event_id, channel, event.alert().id(), news, payload, at,
            at + absl::ToInt64Microseconds(options.gather));
      }
    }
    tx.commit();
  });
}

void PgAlertStore::SetOutboxOptions(OutboxOptions options) {
  absl::MutexLock l(&mu_);
  outbox_options_ = std::move(options);
}

absl::StatusOr<std::map<std::string, int64_t>>
PgAlertStore::ExpireUnknownChannels(const std::set<std::string>& known) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  std::vector<std::string> names(known.begin(), known.end());
  std::map<std::string, int64_t> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    out.clear();
    pqxx::work tx(c);
    for (const auto& row : tx.exec_params(
             "WITH e AS (UPDATE notify_outbox SET state = 'expired',"
             " last_error = 'channel no longer configured'"
             " WHERE state = 'pending' AND NOT (channel = ANY($1::text[]))"
             " RETURNING channel)"
             " SELECT channel, count(*) FROM e GROUP BY channel",
             PgTextArray(names))) {
      out[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<OutboxRow>> PgAlertStore::ClaimOutbox(
    absl::Time now, absl::Duration lease, size_t limit) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  std::vector<OutboxRow> out;
  std::vector<int64_t> bad;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    out.clear();
    bad.clear();
    pqxx::work tx(c);
    pqxx::result r = tx.exec_params(
        "UPDATE notify_outbox o SET attempts = o.attempts + 1,"
        " next_attempt_at = to_timestamp($2 / 1e6)"
        " FROM (SELECT id FROM notify_outbox WHERE state = 'pending'"
        "  AND next_attempt_at <= to_timestamp($1 / 1e6) ORDER BY id"
        "  LIMIT $3 FOR UPDATE SKIP LOCKED) d"
        " WHERE o.id = d.id"
        " RETURNING o.id, o.event_id, o.channel, o.alert_id, o.news,"
        " o.payload::text, o.attempts,"
        " (extract(epoch FROM o.created_at) * 1000000)::bigint, o.last_error",
        absl::ToUnixMicros(now), absl::ToUnixMicros(now + lease),
        static_cast<int64_t>(limit));
    for (const auto& row : r) {
      OutboxRow o;
      o.id = row[0].as<int64_t>();
      o.event_id = row[1].as<int64_t>();
      o.channel = row[2].as<std::string>();
      o.alert_id = row[3].as<int64_t>();
      o.news = row[4].as<std::string>();
      google::protobuf::util::JsonParseOptions jo;
      jo.ignore_unknown_fields = true;
      if (!google::protobuf::util::JsonStringToMessage(row[5].as<std::string>(),
                                                       &o.event, jo)
               .ok()) {
        // Not sendable (written by another version?): given up, said so.
        bad.push_back(o.id);
        continue;
      }
      o.attempts = row[6].as<int>();
      o.created_at = absl::FromUnixMicros(row[7].as<int64_t>());
      o.next_attempt_at = now + lease;
      o.last_error = row[8].as<std::string>();
      out.push_back(std::move(o));
    }
    for (int64_t id : bad) {
      tx.exec_params(
          "UPDATE notify_outbox SET state = 'expired',"
          " last_error = 'payload is not a v1.AlertEvent' WHERE id = $1",
          id);
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  for (int64_t id : bad) {
    spdlog::error("event=notify_expired row={} error=\"bad payload\"", id);
  }
  std::sort(out.begin(), out.end(),
            [](const OutboxRow& a, const OutboxRow& b) { return a.id < b.id; });
  return out;
}

absl::StatusOr<absl::Time> PgAlertStore::NewestUnsent() {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  absl::Time out = absl::InfinitePast();
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    pqxx::row r = tx.exec1(
        "SELECT (extract(epoch FROM max(created_at)) * 1000000)::bigint"
        " FROM notify_outbox WHERE state = 'pending' AND attempts = 0");
    out = r[0].is_null() ? absl::InfinitePast()
                         : absl::FromUnixMicros(r[0].as<int64_t>());
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status PgAlertStore::UpdateOutbox(
    const std::vector<OutboxUpdate>& updates) {
  if (updates.empty()) return absl::OkStatus();
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    for (const OutboxUpdate& u : updates) {
      std::optional<int64_t> next, sent;
      if (u.state == OutboxState::kPending) {
        next = absl::ToUnixMicros(u.next_attempt_at);
      }
      if (u.state == OutboxState::kSent) sent = absl::ToUnixMicros(u.sent_at);
      tx.exec_params(
          "UPDATE notify_outbox SET state = $2, last_error = $3,"
          " next_attempt_at = coalesce(to_timestamp($4 / 1e6),"
          " next_attempt_at), sent_at = to_timestamp($5 / 1e6)"
          " WHERE id = $1",
          u.id, OutboxStateName(u.state), u.last_error, next, sent);
    }
    tx.commit();
  });
}

absl::StatusOr<std::map<std::pair<std::string, int64_t>, absl::Time>>
PgAlertStore::RecentlySent(absl::Time since) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  std::map<std::pair<std::string, int64_t>, absl::Time> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    out.clear();
    pqxx::read_transaction tx(c);
    for (const auto& row :
         tx.exec_params("SELECT channel, alert_id,"
                        " (extract(epoch FROM max(sent_at)) * 1000000)::bigint"
                        " FROM notify_outbox WHERE state = 'sent'"
                        " AND sent_at >= to_timestamp($1 / 1e6) GROUP BY 1, 2",
                        absl::ToUnixMicros(since))) {
      out[{row[0].as<std::string>(), row[1].as<int64_t>()}] =
          absl::FromUnixMicros(row[2].as<int64_t>());
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<v1::Alert>> PgAlertStore::UnresolvedAlerts() {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  absl::StatusOr<std::vector<v1::Alert>> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    out = Parse(tx.exec(std::string(kSelect) +
                        "WHERE resolved_at IS NULL ORDER BY id"));
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Alert> PgAlertStore::GetAlert(int64_t id) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  absl::StatusOr<std::vector<v1::Alert>> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    out = Parse(tx.exec_params(std::string(kSelect) + "WHERE id = $1", id));
  });
  if (!s.ok()) return s;
  if (!out.ok()) return out.status();
  if (out->empty()) return absl::NotFoundError(absl::StrCat("no alert ", id));
  return out->front();
}

absl::StatusOr<std::vector<v1::Alert>> PgAlertStore::RecentAlerts(
    int64_t since_us, uint32_t limit) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  absl::StatusOr<std::vector<v1::Alert>> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    out = Parse(tx.exec_params(std::string(kSelect) +
                                   "WHERE last_seen >= to_timestamp($1 / 1e6)"
                                   " ORDER BY last_seen DESC, id DESC LIMIT $2",
                               since_us, static_cast<int64_t>(limit)));
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<AnalysisStateRow>> PgAlertStore::LoadState() {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  std::vector<AnalysisStateRow> out;
  absl::Status s = pg_.WithConnection([&](pqxx::connection& c) {
    out.clear();
    pqxx::read_transaction tx(c);
    // bytes travel as hex text (decode/encode): one text array carries
    // them in PutStates, and no bytea escaping is needed either way.
    for (const auto& row :
         tx.exec("SELECT agent, kind, key, value, encode(bytes, 'hex')"
                 " FROM analysis_state")) {
      AnalysisStateRow r{row[0].as<std::string>(), row[1].as<std::string>(),
                         row[2].as<std::string>(), row[3].as<std::string>(),
                         std::nullopt};
      if (!row[4].is_null()) {
        r.bytes = absl::HexStringToBytes(row[4].as<std::string>());
      }
      out.push_back(std::move(r));
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status PgAlertStore::PutState(const AnalysisStateRow& row) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO analysis_state (agent, kind, key, value, bytes,"
        " updated_at)"
        " VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN decode($6, 'hex') END,"
        " now())"
        " ON CONFLICT (agent, kind, key)"
        " DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes,"
        " updated_at = now()",
        row.agent, row.kind, row.key, row.value, row.bytes.has_value(),
        absl::BytesToHexString(row.bytes.value_or("")));
    tx.commit();
  });
}

absl::Status PgAlertStore::PutStates(
    const std::vector<AnalysisStateRow>& rows) {
  if (rows.empty()) return absl::OkStatus();
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  // The last row wins for a key given twice (ON CONFLICT may not touch a
  // row twice in one statement).
  std::map<std::tuple<std::string, std::string, std::string>,
           const AnalysisStateRow*>
      latest;
  for (const AnalysisStateRow& r : rows) latest[{r.agent, r.kind, r.key}] = &r;
  // bytes as hex text, "" for none: a message that encodes to no bytes at
  // all is "-" (decode gives '' for it, not NULL).
  std::vector<std::string> agent, kind, key, value, hex;
  for (const auto& [k, r] : latest) {
    agent.push_back(std::get<0>(k));
    kind.push_back(std::get<1>(k));
    key.push_back(std::get<2>(k));
    value.push_back(r->value);
    hex.push_back(!r->bytes.has_value() ? ""
                  : r->bytes->empty()   ? "-"
                                        : absl::BytesToHexString(*r->bytes));
  }
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO analysis_state (agent, kind, key, value, bytes,"
        " updated_at)"
        " SELECT a, k, y, v,"
        "  CASE WHEN b = '' THEN NULL WHEN b = '-' THEN ''::bytea"
        "  ELSE decode(b, 'hex') END, now()"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::text[]) AS c(a, k, y, v, b)"
        " ON CONFLICT (agent, kind, key)"
        " DO UPDATE SET value = EXCLUDED.value, bytes = EXCLUDED.bytes,"
        " updated_at = now()",
        PgTextArray(agent), PgTextArray(kind), PgTextArray(key),
        PgTextArray(value), PgTextArray(hex));
    tx.commit();
  });
}

}  // namespace netvigil::collector
