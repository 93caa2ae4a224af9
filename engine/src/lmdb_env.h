// Private: RAII owners for LMDB handles and error mapping. Nothing of LMDB leaves
// engine/src.
#ifndef SAMSYNC_ENGINE_LMDB_H_
#define SAMSYNC_ENGINE_LMDB_H_

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "samsync/status.h"

namespace samsync::lmdb {

using Bytes = std::span<const uint8_t>;

// Maps an LMDB or errno code to a Status whose message starts with `what`.
Status ToStatus(int rc, std::string_view what);

inline MDB_val Val(Bytes bytes) {
  return MDB_val{bytes.size(), const_cast<uint8_t*>(bytes.data())};
}
// Valid until the end of the transaction that produced `val`.
inline Bytes View(const MDB_val& val) {
  return {static_cast<const uint8_t*>(val.mv_data), val.mv_size};
}

class Env {
 public:
  Env() = default;
  ~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
  }
  Env(Env&& o) noexcept : env_(std::exchange(o.env_, nullptr)) {}
  Env& operator=(Env&& o) noexcept {
    std::swap(env_, o.env_);
    return *this;
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  // Opens the environment in folder `dir`, which must exist. `no_lock` (MDB_NOLOCK)
  // leaves lock.mdb alone: only for a caller that already holds the store exclusively
  // (ForgetPerson, store_backup.cc).
  static Result<Env> Open(const std::string& dir, uint64_t map_size, unsigned max_dbs, bool read_only,
                          bool no_lock = false);
  MDB_env* get() const { return env_; }
  // The map size in use (what LMDB settled on: at least the file's size).
  uint64_t map_size() const;

 private:
  MDB_env* env_ = nullptr;
};

// A transaction that aborts unless committed. Stays on the thread that began it.
class Txn {
 public:
  Txn() = default;
  ~Txn() { Abort(); }
  Txn(Txn&& o) noexcept
      : txn_(std::exchange(o.txn_, nullptr)), serial_(o.serial_), before_commit_(std::move(o.before_commit_)) {}
  Txn& operator=(Txn&& o) noexcept {
    Abort();
    txn_ = std::exchange(o.txn_, nullptr);
    serial_ = o.serial_;
    before_commit_ = std::move(o.before_commit_);
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  static Result<Txn> Begin(const Env& env, bool read_only);
  // Runs the hooks BeforeCommit registered, in order, then commits; a failing hook
  // aborts the transaction and its error is returned.
  Status Commit();
  void Abort() {
    before_commit_.clear();
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
  }
  MDB_txn* get() const { return txn_; }
  // Unique to this transaction within the process (LMDB reuses its write txn's
  // memory, so get() does not tell two transactions apart).
  uint64_t serial() const { return serial_; }
  // What must be written last in this transaction, however it ends up committed
  // (state kept in memory while the transaction runs). Dropped on abort.
  void BeforeCommit(std::function<Status(Txn&)> hook) { before_commit_.push_back(std::move(hook)); }

  // kNotFound-free lookups: nullopt on a miss; the view lives until the txn ends.
  Result<std::optional<Bytes>> Get(MDB_dbi dbi, Bytes key) const;
  Status Put(MDB_dbi dbi, Bytes key, Bytes value, unsigned flags = 0);
  // Deleting a missing key is not an error.
  Status Delete(MDB_dbi dbi, Bytes key);

 private:
  MDB_txn* txn_ = nullptr;
  uint64_t serial_ = 0;
  std::vector<std::function<Status(Txn&)>> before_commit_;
};

// An owned file descriptor, closed on destruction. Closing any descriptor of a file
// drops every POSIX (fcntl) lock this process holds on it, LMDB's on lock.mdb included:
// a descriptor of lock.mdb taken beside an open environment must live as long as it.
class FdOwner {
 public:
  FdOwner() = default;
  explicit FdOwner(int fd) : fd_(fd) {}
  ~FdOwner() { Close(); }
  FdOwner(FdOwner&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FdOwner& operator=(FdOwner&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  FdOwner(const FdOwner&) = delete;
  FdOwner& operator=(const FdOwner&) = delete;
  int get() const { return fd_; }
  void Close();

 private:
  int fd_ = -1;
};

class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(Cursor&& o) noexcept : cursor_(std::exchange(o.cursor_, nullptr)) {}
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  Cursor& operator=(Cursor&&) = delete;

  static Result<Cursor> Open(const Txn& txn, MDB_dbi dbi);

  // Positions at the first key >= `key`; false at the end.
  Result<bool> Seek(Bytes key);
  Result<bool> Next();
  Bytes key() const { return View(key_); }
  Bytes value() const { return View(value_); }

 private:
  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{}, value_{};
};

}  // namespace samsync::lmdb

#endif  // SAMSYNC_ENGINE_LMDB_H_
