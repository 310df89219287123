#include "tests/testing/pg_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace netvigil::testing {
namespace {

std::string Script() {
  return std::string(NETVIGIL_SOURCE_DIR) + "/deploy/pgcluster.sh";
}

}  // namespace

absl::StatusOr<std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen failed: " + command);
  char buf[4096];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int rc = pclose(p);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("`", command, "` exited with status ", rc, ": ", out));
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

absl::StatusOr<PgCluster*> PgCluster::Start() {
  char dir[] = "/var/tmp/netvigil-pgtest-XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp failed");
  chmod(dir, 0755);
  auto* c = new PgCluster();
  c->dir_ = dir;
  const std::string pg = c->dir_ + "/pg";
  auto init = Shell(absl::StrCat(Script(), " init ", pg, " && ", Script(),
                                 " start ", pg, " 2>&1"));
  if (!init.ok()) {
    delete c;
    return init.status();
  }
  auto dsn = Shell(absl::StrCat(Script(), " dsn ", pg));
  if (!dsn.ok()) {
    delete c;
    return dsn.status();
  }
  c->dsn_ = *dsn;
  return c;
}

PgCluster::~PgCluster() {
  (void)Shell(absl::StrCat(Script(), " stop ", dir_, "/pg immediate"));
  (void)Shell(absl::StrCat("rm -rf ", dir_));
}

}  // namespace netvigil::testing
