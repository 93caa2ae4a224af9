#include "lmdb_env.h"

#include <unistd.h>

#include <atomic>
#include <cstring>

namespace samsync::lmdb {

Status ToStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_SUCCESS: return Status::Ok();
    case MDB_NOTFOUND: return Status::NotFound(std::move(message));
    case MDB_MAP_FULL:
      return Status::MapFull(std::string(what) + ": the store reached its size limit; nothing was written");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return Status::Corruption(std::move(message));
    default: return Status::Io(std::move(message));
  }
}

Result<Env> Env::Open(const std::string& dir, uint64_t map_size, unsigned max_dbs, bool read_only, bool no_lock) {
  Env env;
  int rc = mdb_env_create(&env.env_);
  if (rc != 0) return ToStatus(rc, "cannot create the LMDB environment");
  mdb_env_set_maxdbs(env.env_, max_dbs);
  mdb_env_set_mapsize(env.env_, map_size);
  // NOTLS: read transactions are not tied to threads (we open one store per thread
  // anyway, but it keeps reader slots from leaking through thread pools).
  unsigned flags = MDB_NOTLS | (read_only ? MDB_RDONLY : 0u) | (no_lock ? MDB_NOLOCK : 0u);
  rc = mdb_env_open(env.env_, dir.c_str(), flags, 0600);
  if (rc != 0) return ToStatus(rc, "cannot open the store in " + dir);
  return env;
}

uint64_t Env::map_size() const {
  MDB_envinfo info{};
  if (env_ == nullptr || mdb_env_info(env_, &info) != 0) return 0;
  return info.me_mapsize;
}

void FdOwner::Close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

Result<Txn> Txn::Begin(const Env& env, bool read_only) {
  Txn txn;
  int rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0u, &txn.txn_);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map beyond ours (it opened the store with a larger
    // OpenOptions.map_size_bytes and wrote): adopt its size and begin again.
    rc = mdb_env_set_mapsize(env.get(), 0);
    if (rc == 0) rc = mdb_txn_begin(env.get(), nullptr, read_only ? MDB_RDONLY : 0u, &txn.txn_);
  }
  if (rc != 0) return ToStatus(rc, "cannot begin a transaction");
  static std::atomic<uint64_t> serials{0};
  txn.serial_ = ++serials;
  return txn;
}

Status Txn::Commit() {
  auto hooks = std::move(before_commit_);
  before_commit_.clear();
  for (auto& hook : hooks) {
    Status written = hook(*this);
    if (!written.ok()) {
      Abort();
      return written;
    }
  }
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));  // frees the txn even on error
  return ToStatus(rc, "cannot commit");
}

Result<std::optional<Bytes>> Txn::Get(MDB_dbi dbi, Bytes key) const {
  MDB_val k = Val(key), v{};
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<Bytes>();
  if (rc != 0) return ToStatus(rc, "cannot read");
  return std::optional<Bytes>(View(v));
}

Status Txn::Put(MDB_dbi dbi, Bytes key, Bytes value, unsigned flags) {
  MDB_val k = Val(key), v = Val(value);
  return ToStatus(mdb_put(txn_, dbi, &k, &v, flags), "cannot write");
}

Status Txn::Delete(MDB_dbi dbi, Bytes key) {
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  return ToStatus(rc, "cannot delete");
}

Result<Cursor> Cursor::Open(const Txn& txn, MDB_dbi dbi) {
  Cursor cursor;
  int rc = mdb_cursor_open(txn.get(), dbi, &cursor.cursor_);
  if (rc != 0) return ToStatus(rc, "cannot open a cursor");
  return cursor;
}

Result<bool> Cursor::Seek(Bytes key) {
  key_ = Val(key);
  int rc = mdb_cursor_get(cursor_, &key_, &value_, key.empty() ? MDB_FIRST : MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return ToStatus(rc, "cannot read");
  return true;
}

Result<bool> Cursor::Next() {
  int rc = mdb_cursor_get(cursor_, &key_, &value_, MDB_NEXT);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return ToStatus(rc, "cannot read");
  return true;
}

}  // namespace samsync::lmdb
