#include "collector/admin/db_admin.h"

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "collector/store/pg_store.h"
#include "spdlog/spdlog.h"

namespace netvigil::collector {
namespace {

// A libpq keyword/value string; values are quoted so paths with spaces work.
std::string Dsn(const DbInitOptions& o, const std::string& dbname,
                const std::string& role) {
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char ch : v) {
      if (ch == '\'' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "'";
  };
  std::string dsn = absl::StrCat(
      "host=", quote(o.socket_dir), " user=", quote(o.admin_user),
      " dbname=", quote(dbname), " application_name=netvigil-db-init");
  // The session runs as `role` from its first statement, so everything the
  // migrations create is owned by the collector's role, not the superuser.
  if (!role.empty())
    absl::StrAppend(&dsn, " options=", quote("-c role=" + role));
  return dsn;
}

bool Exists(pqxx::connection& c, const char* sql, const std::string& name) {
  pqxx::nontransaction tx(c);
  return !tx.exec_params(sql, name).empty();
}

absl::Status CreateRolesAndDatabase(const DbInitOptions& o) {
  PgStore admin(Dsn(o, "postgres", ""), 1);
  return admin.WithConnection([&](pqxx::connection& c) {
    for (const std::string& role : {o.role, o.readonly_role}) {
      if (Exists(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", role))
        continue;
      pqxx::nontransaction tx(c);
      tx.exec0("CREATE ROLE " + tx.quote_name(role) + " LOGIN");
      spdlog::info("db_role_created role={}", role);
    }
    const bool db_exists =
        Exists(c, "SELECT 1 FROM pg_database WHERE datname = $1", o.database);
    // CREATE DATABASE cannot run inside a transaction block.
    pqxx::nontransaction tx(c);
    if (!db_exists) {
      tx.exec0("CREATE DATABASE " + tx.quote_name(o.database) + " OWNER " +
               tx.quote_name(o.role) + " ENCODING 'UTF8' TEMPLATE template0");
      spdlog::info("db_created database={} owner={}", o.database, o.role);
    } else {
      tx.exec0("ALTER DATABASE " + tx.quote_name(o.database) + " OWNER TO " +
               tx.quote_name(o.role));
    }
    // Agents report process lists and file paths: only the two roles (and
    // superusers) may connect.
    tx.exec0("REVOKE ALL ON DATABASE " + tx.quote_name(o.database) +
             " FROM PUBLIC");
    tx.exec0("GRANT CONNECT ON DATABASE " + tx.quote_name(o.database) + " TO " +
             tx.quote_name(o.readonly_role));
  });
}

// Tables the dashboard role must never read: the iperf3 key pair and the
// secret agents' iperf3 passwords derive from, and pending enrollments.
// Migration 0011_least_privilege.sql revokes the same list; a new secret
// table joins both (tests/integration/least_privilege_test.py checks that
// the role reads only the history tables it knows).
constexpr const char* kSecretTables[] = {"iperf_auth", "enrollment_tokens"};

absl::Status GrantReadOnly(const DbInitOptions& o) {
  PgStore owner(Dsn(o, o.database, o.role), 1);
  return owner.WithConnection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const std::string ro = tx.quote_name(o.readonly_role);
    tx.exec0("GRANT USAGE ON SCHEMA public TO " + ro);
    tx.exec0("GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + ro);
    // Partitions and tables made later by the collector (role `role`).
    tx.exec0("ALTER DEFAULT PRIVILEGES FOR ROLE " + tx.quote_name(o.role) +
             " IN SCHEMA public GRANT SELECT ON TABLES TO " + ro);
    // History yes, secrets no: in the same transaction, so the role never
    // holds them, not even between two statements.
    for (const char* table : kSecretTables) {
      tx.exec0("REVOKE ALL ON TABLE " + tx.quote_name(table) + " FROM " + ro);
      tx.exec0("REVOKE ALL ON TABLE " + tx.quote_name(table) + " FROM PUBLIC");
    }
    tx.commit();
  });
}

}  // namespace

absl::Status InitDatabase(const DbInitOptions& o) {
  if (absl::Status s = CreateRolesAndDatabase(o); !s.ok()) return s;
  PgStore owner(Dsn(o, o.database, o.role), 1);
  if (absl::Status s = owner.Migrate(); !s.ok()) return s;
  return GrantReadOnly(o);
}

absl::Status InitDatabaseAsAdmin(const DbInitOptions& o) {
  if (geteuid() != 0) return InitDatabase(o);
  passwd* pw = getpwnam(o.admin_user.c_str());
  if (pw == nullptr) {
    return absl::NotFoundError(absl::StrCat("no OS user '", o.admin_user,
                                            "' (is PostgreSQL installed?)"));
  }
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    if (initgroups(o.admin_user.c_str(), gid) != 0 || setgid(gid) != 0 ||
        setuid(uid) != 0) {
      std::fprintf(stderr, "netvigil-collector: cannot become %s: %s\n",
                   o.admin_user.c_str(), std::strerror(errno));
      _exit(1);
    }
    // The socket folder and the server are reachable by the admin user;
    // the current folder (often /root) may not be.
    if (chdir("/") != 0) _exit(1);
    absl::Status s = InitDatabase(o);
    if (!s.ok()) {
      std::fprintf(stderr, "netvigil-collector: db init: %s\n",
                   std::string(s.message()).c_str());
    }
    std::fflush(nullptr);
    _exit(s.ok() ? 0 : 1);
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return absl::OkStatus();
  // The child has printed the reason.
  return absl::InternalError(absl::StrCat(
      "the step run as ", o.admin_user, " failed",
      WIFEXITED(wstatus) ? absl::StrCat(" (exit ", WEXITSTATUS(wstatus), ")")
                         : std::string(" (killed by a signal)")));
}

void RegisterDbCommands(CLI::App& app) {
  CLI::App* db = app.add_subcommand("db", "database administration");
  db->require_subcommand(1);
  CLI::App* init = db->add_subcommand(
      "init",
      "create the netvigil and netvigil_ro roles and the netvigil database on "
      "the local PostgreSQL (run as root: peer authentication as postgres) "
      "and apply migrations");
  auto options = std::make_shared<DbInitOptions>();
  init->add_option("--socket-dir", options->socket_dir,
                   "folder of PostgreSQL's UNIX socket")
      ->capture_default_str();
  init->add_option("--admin-user", options->admin_user,
                   "OS user and superuser role for peer authentication")
      ->capture_default_str();
  init->add_option("--role", options->role,
                   "the collector's role (the OS user its service runs as)")
      ->capture_default_str();
  init->add_option("--database", options->database, "database name")
      ->capture_default_str();
  init->add_option("--readonly-role", options->readonly_role,
                   "read-only role for dashboards")
      ->capture_default_str();
  init->callback([options] {
    absl::Status s = InitDatabaseAsAdmin(*options);
    if (!s.ok()) {
      std::fprintf(stderr, "netvigil-collector: db init: %s\n",
                   std::string(s.message()).c_str());
      // CLI11_PARSE turns this into the exit code without printing usage.
      throw CLI::RuntimeError(1);
    }
    std::printf(
        "database %s ready: owner %s, read-only role %s (set its password "
        "for dashboards: ALTER ROLE %s PASSWORD '...')\n",
        options->database.c_str(), options->role.c_str(),
        options->readonly_role.c_str(), options->readonly_role.c_str());
    std::fflush(stdout);
    throw CLI::Success();
  });
}

}  // namespace netvigil::collector
