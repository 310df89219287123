// `netvigil-collector db init`: sets up the collector's database on a local
// PostgreSQL. Run as root, it does its work in a child process that has
// dropped to the `postgres` OS user, so it reaches the server with peer
// authentication over the UNIX socket and needs no password anywhere.
// Thread-compatible; InitDatabase is idempotent (safe to run again after an
// upgrade: it applies new migrations and grants on new tables).
#ifndef NETVIGIL_COLLECTOR_ADMIN_DB_ADMIN_H_
#define NETVIGIL_COLLECTOR_ADMIN_DB_ADMIN_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace netvigil::collector {

struct DbInitOptions {
  // Folder of the server's UNIX socket.
  std::string socket_dir = "/var/run/postgresql";
  // OS user and database role that peer authentication maps to a superuser.
  std::string admin_user = "postgres";
  // The collector's role (the OS user its service runs as) and its database.
  std::string role = "netvigil";
  std::string database = "netvigil";
  // Read-only role for dashboards (Grafana's PostgreSQL data source).
  std::string readonly_role = "netvigil_ro";
};

// Creates the roles and the database (owned by `role`) when missing, applies
// the collector's migrations as `role` so that it owns every table, and gives
// `readonly_role` SELECT on all tables, present and future, but the secret
// ones (iperf_auth, enrollment_tokens). Runs with the calling process's
// credentials.
absl::Status InitDatabase(const DbInitOptions& options);

// As InitDatabase, but when called as root in a child process running as
// `admin_user` (peer authentication needs the OS user to match the role).
absl::Status InitDatabaseAsAdmin(const DbInitOptions& options);

// Adds `db init` to the collector's command line. The command exits the
// process through CLI11 (exit code 0 on success, 1 with a message on
// stderr otherwise).
void RegisterDbCommands(CLI::App& app);

}  // namespace netvigil::collector

#endif  // NETVIGIL_COLLECTOR_ADMIN_DB_ADMIN_H_
