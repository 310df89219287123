#include "agent/spool/sqlite_vfs.h"

#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace netvigil::agent::spool {
namespace {

// SQLite allocates szOsFile bytes per open file and hands them to xOpen;
// this object is built in them, sqlite3_file first as SQLite requires.
struct VfsFile {
  sqlite3_file base;
  SqliteVfs* owner;
  std::unique_ptr<File> file;
  std::unique_ptr<FileLock> lock;
  std::string path;
  bool main_db;
  bool delete_on_close;
  // A file this VFS created: its folder entry is made durable with its
  // first fsync.
  bool dir_sync_pending;
};

VfsFile* Get(sqlite3_file* f) { return reinterpret_cast<VfsFile*>(f); }
SqliteVfs* Owner(sqlite3_vfs* vfs) {
  return static_cast<SqliteVfs*>(vfs->pAppData);
}
sqlite3_vfs* Default() { return sqlite3_vfs_find(nullptr); }

int Fail(SqliteVfs* owner, const absl::Status& st, int code) {
  owner->SetLastError(st);
  if (absl::IsResourceExhausted(st)) return SQLITE_FULL;
  return code;
}

int Close(sqlite3_file* f) {
  VfsFile* v = Get(f);
  v->file.reset();
  v->lock.reset();
  int rc = SQLITE_OK;
  if (v->delete_on_close) {
    absl::Status st = v->owner->fs().Unlink(v->path);
    if (!st.ok() && !absl::IsNotFound(st)) {
      rc = Fail(v->owner, st, SQLITE_IOERR_DELETE);
    }
  }
  v->~VfsFile();
  return rc;
}

int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  VfsFile* v = Get(f);
  absl::StatusOr<size_t> n =
      v->file->Read(static_cast<uint64_t>(off), static_cast<char*>(buf),
                    static_cast<size_t>(amt));
  if (!n.ok()) return Fail(v->owner, n.status(), SQLITE_IOERR_READ);
  if (*n < static_cast<size_t>(amt)) {
    // SQLite requires the rest zeroed on a short read.
    memset(static_cast<char*>(buf) + *n, 0, static_cast<size_t>(amt) - *n);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  VfsFile* v = Get(f);
  absl::Status st =
      v->file->Write(static_cast<uint64_t>(off),
                     absl::string_view(static_cast<const char*>(buf),
                                       static_cast<size_t>(amt)));
  if (!st.ok()) return Fail(v->owner, st, SQLITE_IOERR_WRITE);
  return SQLITE_OK;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  VfsFile* v = Get(f);
  absl::Status st = v->file->Truncate(static_cast<uint64_t>(size));
  if (!st.ok()) return Fail(v->owner, st, SQLITE_IOERR_TRUNCATE);
  return SQLITE_OK;
}

int Sync(sqlite3_file* f, int /*flags*/) {
  VfsFile* v = Get(f);
  absl::Status st = v->file->Sync();
  if (!st.ok()) return Fail(v->owner, st, SQLITE_IOERR_FSYNC);
  if (v->dir_sync_pending) {
    st = v->owner->fs().SyncDir(DirName(v->path));
    if (!st.ok()) return Fail(v->owner, st, SQLITE_IOERR_DIR_FSYNC);
    v->dir_sync_pending = false;
  }
  return SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  VfsFile* v = Get(f);
  absl::StatusOr<uint64_t> n = v->file->Size();
  if (!n.ok()) return Fail(v->owner, n.status(), SQLITE_IOERR_FSTAT);
  *size = static_cast<sqlite3_int64>(*n);
  return SQLITE_OK;
}

int Lock(sqlite3_file* f, int level) {
  VfsFile* v = Get(f);
  if (!v->main_db || v->lock != nullptr || level == SQLITE_LOCK_NONE) {
    return SQLITE_OK;
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock = v->owner->fs().Lock(v->path);
  if (!lock.ok()) {
    return Fail(
        v->owner, lock.status(),
        absl::IsUnavailable(lock.status()) ? SQLITE_BUSY : SQLITE_IOERR_LOCK);
  }
  v->lock = std::move(*lock);
  return SQLITE_OK;
}

int Unlock(sqlite3_file* f, int level) {
  VfsFile* v = Get(f);
  if (level == SQLITE_LOCK_NONE) v->lock.reset();
  return SQLITE_OK;
}

int CheckReservedLock(sqlite3_file* /*f*/, int* out) {
  // The lock is exclusive from the first shared request: no one else can
  // hold a reserved lock while this connection can ask.
  *out = 0;
  return SQLITE_OK;
}

int FileControl(sqlite3_file* /*f*/, int /*op*/, void* /*arg*/) {
  return SQLITE_NOTFOUND;
}

int SectorSize(sqlite3_file* /*f*/) { return 4096; }

int DeviceCharacteristics(sqlite3_file* /*f*/) {
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

const sqlite3_io_methods kIoMethods = {
    1,  // iVersion 1: no shared memory; WAL needs locking_mode=EXCLUSIVE.
    Close,       Read,       Write,
    Truncate,    Sync,       FileSize,
    Lock,        Unlock,     CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics,
    nullptr,     nullptr,    nullptr,
    nullptr,     nullptr,    nullptr,
};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags,
         int* out_flags) {
  f->pMethods = nullptr;  // SQLite calls no xClose when xOpen fails
  SqliteVfs* owner = Owner(vfs);
  if (name == nullptr) {
    owner->SetLastError(absl::FailedPreconditionError(
        "a temporary file was asked for (temp_store should be MEMORY)"));
    return SQLITE_CANTOPEN;
  }
  const std::string path = name;
  FileSystem::Mode mode = FileSystem::Mode::kWrite;
  if (flags & SQLITE_OPEN_READONLY) mode = FileSystem::Mode::kRead;
  if (flags & SQLITE_OPEN_CREATE) mode = FileSystem::Mode::kCreate;
  bool created = false;
  if (mode == FileSystem::Mode::kCreate) {
    absl::StatusOr<bool> exists = owner->fs().Exists(path);
    if (!exists.ok()) return Fail(owner, exists.status(), SQLITE_CANTOPEN);
    created = !*exists;
  }
  absl::StatusOr<std::unique_ptr<File>> file = owner->fs().Open(path, mode);
  if (!file.ok()) return Fail(owner, file.status(), SQLITE_CANTOPEN);
  VfsFile* v = new (f) VfsFile{};
  v->owner = owner;
  v->file = std::move(*file);
  v->path = path;
  v->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  v->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  v->dir_sync_pending = created;
  v->base.pMethods = &kIoMethods;
  if (out_flags != nullptr) *out_flags = flags;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  SqliteVfs* owner = Owner(vfs);
  absl::Status st = owner->fs().Unlink(name);
  if (absl::IsNotFound(st)) return SQLITE_IOERR_DELETE_NOENT;
  if (!st.ok()) return Fail(owner, st, SQLITE_IOERR_DELETE);
  if (sync_dir) {
    st = owner->fs().SyncDir(DirName(name));
    if (!st.ok()) return Fail(owner, st, SQLITE_IOERR_DIR_FSYNC);
  }
  return SQLITE_OK;
}

int Access(sqlite3_vfs* vfs, const char* name, int /*flags*/, int* out) {
  SqliteVfs* owner = Owner(vfs);
  absl::StatusOr<bool> exists = owner->fs().Exists(name);
  if (!exists.ok()) return Fail(owner, exists.status(), SQLITE_IOERR_ACCESS);
  *out = *exists ? 1 : 0;
  return SQLITE_OK;
}

int FullPathname(sqlite3_vfs* /*vfs*/, const char* name, int n, char* out) {
  // The spool's paths are used as given: SQLite only derives "-wal" from it.
  size_t len = strlen(name);
  if (len + 1 > static_cast<size_t>(n)) return SQLITE_CANTOPEN;
  memcpy(out, name, len + 1);
  return SQLITE_OK;
}

// Not file-system calls: the default VFS's.
void* DlOpen(sqlite3_vfs*, const char* p) {
  return Default()->xDlOpen(Default(), p);
}
void DlError(sqlite3_vfs*, int n, char* out) {
  Default()->xDlError(Default(), n, out);
}
void (*DlSym(sqlite3_vfs*, void* h, const char* s))(void) {
  return Default()->xDlSym(Default(), h, s);
}
void DlClose(sqlite3_vfs*, void* h) { Default()->xDlClose(Default(), h); }
int Randomness(sqlite3_vfs*, int n, char* out) {
  return Default()->xRandomness(Default(), n, out);
}
int Sleep(sqlite3_vfs*, int us) { return Default()->xSleep(Default(), us); }
int CurrentTime(sqlite3_vfs*, double* t) {
  return Default()->xCurrentTime(Default(), t);
}
int GetLastError(sqlite3_vfs*, int n, char* out) {
  return Default()->xGetLastError(Default(), n, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) {
  return Default()->xCurrentTimeInt64(Default(), t);
}

}  // namespace

SqliteVfs::SqliteVfs(FileSystem& fs)
    : fs_(fs),
      name_(
          absl::StrCat("netvigil-spool-", reinterpret_cast<uintptr_t>(this))) {
  memset(&vfs_, 0, sizeof(vfs_));
  vfs_.iVersion = 2;
  vfs_.szOsFile = sizeof(VfsFile);
  vfs_.mxPathname = 1024;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = Open;
  vfs_.xDelete = Delete;
  vfs_.xAccess = Access;
  vfs_.xFullPathname = FullPathname;
  vfs_.xDlOpen = DlOpen;
  vfs_.xDlError = DlError;
  vfs_.xDlSym = DlSym;
  vfs_.xDlClose = DlClose;
  vfs_.xRandomness = Randomness;
  vfs_.xSleep = Sleep;
  vfs_.xCurrentTime = CurrentTime;
  vfs_.xGetLastError = GetLastError;
  vfs_.xCurrentTimeInt64 = CurrentTimeInt64;
}

absl::StatusOr<std::unique_ptr<SqliteVfs>> SqliteVfs::Register(FileSystem& fs) {
  if (Default() == nullptr) {
    return absl::InternalError("sqlite has no default VFS");
  }
  std::unique_ptr<SqliteVfs> vfs(new SqliteVfs(fs));
  int rc = sqlite3_vfs_register(&vfs->vfs_, /*makeDflt=*/0);
  if (rc != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("sqlite3_vfs_register: ", sqlite3_errstr(rc)));
  }
  return vfs;
}

SqliteVfs::~SqliteVfs() { sqlite3_vfs_unregister(&vfs_); }

std::string SqliteVfs::TakeLastError() {
  absl::MutexLock l(&mu_);
  return std::exchange(last_error_, std::string());
}

void SqliteVfs::SetLastError(const absl::Status& status) {
  absl::MutexLock l(&mu_);
  last_error_ = std::string(status.message());
}

}  // namespace netvigil::agent::spool
