#include "collector/alerts/pg_alert_store.h"

#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "collector/store/history_writer.h"
#include "common/pg_time.h"
#include "google/protobuf/util/json_util.h"

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
      if (r.affected_rows() == 0) id = -1;
    }
    tx.commit();
  });
  if (!s.ok()) return s;
  if (id < 0) return absl::NotFoundError(absl::StrCat("no alert ", alert.id()));
  return id;
}

absl::Status PgAlertStore::AppendEvent(const v1::AlertEvent& event) {
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO alert_events (alert_id, type, at, payload)"
        " VALUES ($1, $2, to_timestamp($3 / 1e6), $4::jsonb)",
        event.alert().id(), static_cast<int>(event.type()),
        ProtoTimeToEpochMicros(event.at()), ToJson(event));
    tx.commit();
  });
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
    for (const auto& row :
         tx.exec("SELECT agent, kind, key, value FROM analysis_state")) {
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                     row[2].as<std::string>(), row[3].as<std::string>()});
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
        "INSERT INTO analysis_state (agent, kind, key, value, updated_at)"
        " VALUES ($1, $2, $3, $4, now())"
        " ON CONFLICT (agent, kind, key)"
        " DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        row.agent, row.kind, row.key, row.value);
    tx.commit();
  });
}

absl::Status PgAlertStore::PutStates(
    const std::vector<AnalysisStateRow>& rows) {
  if (rows.empty()) return absl::OkStatus();
  if (!pg_.ready()) return absl::UnavailableError("store not migrated");
  // The last row wins for a key given twice (ON CONFLICT may not touch a
  // row twice in one statement).
  std::map<std::tuple<std::string, std::string, std::string>, std::string>
      latest;
  for (const AnalysisStateRow& r : rows) {
    latest[{r.agent, r.kind, r.key}] = r.value;
  }
  std::vector<std::string> agent, kind, key, value;
  for (const auto& [k, v] : latest) {
    agent.push_back(std::get<0>(k));
    kind.push_back(std::get<1>(k));
    key.push_back(std::get<2>(k));
    value.push_back(v);
  }
  return pg_.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "INSERT INTO analysis_state (agent, kind, key, value, updated_at)"
        " SELECT a, k, y, v, now()"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
        "  AS c(a, k, y, v)"
        " ON CONFLICT (agent, kind, key)"
        " DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        PgTextArray(agent), PgTextArray(kind), PgTextArray(key),
        PgTextArray(value));
    tx.commit();
  });
}

}  // namespace netvigil::collector
