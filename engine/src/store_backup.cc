// Backups, restores and erasure: the store file copied compactly (LMDB's
// MDB_CP_COMPACT), framed for a backup, or swapped in place of the store's own file.
//
// A backup file (docs/formats.md, "Backups"):
//   0   16  magic "samsync-backup" and two zero bytes
//   16   4  format version, big-endian (1)
//   20   4  flags, big-endian: bit 0 set when the store is city-wide (the sync server's)
//   24   8  length of the data that follows, big-endian
//   32  32  SHA-256 of that data
//   64   …  the compacted LMDB data file (data.mdb), its values sealed as in the store
//
// Erasure swaps the store's file. LMDB keeps its reader table in lock.mdb and learns
// that it is the first (only) process to open a store by taking an exclusive POSIX
// lock on its first byte, then shares it. ForgetPerson closes its environment and takes
// that same exclusive lock: it fails (EAGAIN) while any other process has the store
// open, and while held, no other process can open it (they wait on the lock). Under it
// the erasure is written through an environment opened without locking (MDB_NOLOCK),
// the compact copy is made and renamed over data.mdb, and then the store's own
// environment is opened again from the same process, which LMDB sees as the first
// opener: it rebuilds lock.mdb for the new file before anyone else can get in.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include "file_io.h"
#include "store_impl.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;

constexpr std::array<uint8_t, 16> kBackupMagic = {'s', 'a', 'm', 's', 'y', 'n', 'c', '-',
                                                  'b', 'a', 'c', 'k', 'u', 'p', 0, 0};
constexpr uint32_t kBackupVersion = 1;
constexpr size_t kBackupHeaderBytes = 64;
constexpr uint32_t kBackupFlagCityWide = 1;

// Beside data.mdb while ForgetPerson swaps it.
constexpr char kCompactName[] = "data.mdb.compact";
constexpr char kOldName[] = "data.mdb.old";

std::string ErasedKey(const std::array<uint8_t, 16>& person_key) {
  return "erased/" + std::string(reinterpret_cast<const char*>(person_key.data()), person_key.size());
}

Status SyncFd(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return Status::Io("cannot sync " + path + ": " + file_io::Errno());
  return Status::Ok();
}

// SHA-256 of `length` bytes of `fd` from `offset`; kCorruption if the file ends first.
Result<Hash> HashRange(int fd, uint64_t offset, uint64_t length, const std::string& path) {
  Sha256Hasher hasher;
  std::vector<uint8_t> buffer(1 << 20);
  while (length > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(length, buffer.size()));
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Io("cannot read " + path + ": " + file_io::Errno());
    if (n == 0) return Status::Corruption(path + " ends early");
    hasher.Update({buffer.data(), static_cast<size_t>(n)});
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return hasher.Finish();
}

// Writes the compacted copy of `env` to `fd` at its current offset: the pages of one
// read transaction (its own), live pages only. Writers are not held up.
Status CompactCopy(const lmdb::Env& env, int fd, const std::string& path) {
  int rc = mdb_env_copyfd2(env.get(), fd, MDB_CP_COMPACT);
  if (rc != 0) return lmdb::ToStatus(rc, "cannot copy the store to " + path);
  return Status::Ok();
}

// Overwrites a file with zeros (best effort on the medium: copy-on-write file systems
// and SSDs may keep the old blocks) and deletes it.
Status ZeroAndRemove(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Io("cannot open " + path + " to erase it: " + file_io::Errno());
  }
  lmdb::FdOwner owner(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::Io("cannot read the size of " + path + ": " + file_io::Errno());
  std::vector<uint8_t> zeros(1 << 20, 0);
  for (uint64_t done = 0; done < static_cast<uint64_t>(st.st_size);) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), static_cast<uint64_t>(st.st_size) - done));
    SAMSYNC_RETURN_IF_ERROR(file_io::WriteAll(fd, {zeros.data(), n}, path));
    done += n;
  }
  SAMSYNC_RETURN_IF_ERROR(SyncFd(fd, path));
  owner.Close();
  if (::unlink(path.c_str()) != 0) return Status::Io("cannot delete " + path + ": " + file_io::Errno());
  return Status::Ok();
}

// Takes LMDB's "first opener" lock of the store in `dir` without waiting: fails with
// kInvalidInput while any other process has the store open. The caller's own
// environment must be closed (this process's locks would not conflict).
Result<lmdb::FdOwner> LockExclusively(const std::string& dir) {
  std::string path = (fs::path(dir) / "lock.mdb").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::Io("cannot open " + path + ": " + file_io::Errno());
  lmdb::FdOwner owner(fd);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 1;  // the byte LMDB's mdb_env_excl_lock takes
  int rc;
  while ((rc = ::fcntl(fd, F_SETLK, &lock)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    if (errno == EAGAIN || errno == EACCES) {
      return Status::Invalid("another program has this store open (a sync, a server, another samsync): close it and "
                             "run the command again; nothing was changed by this step");
    }
    return Status::Io("cannot lock " + path + ": " + file_io::Errno());
  }
  return owner;
}

struct OpenedEnv {
  lmdb::Env env;
  Tables tables;
};

Result<OpenedEnv> OpenEnv(const std::string& dir, uint64_t map_size, bool no_lock) {
  OpenedEnv opened;
  SAMSYNC_ASSIGN_OR_RETURN(opened.env, lmdb::Env::Open(dir, map_size, kStoreMaxTables, false, no_lock));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(opened.env, true));
  SAMSYNC_ASSIGN_OR_RETURN(opened.tables, OpenStoreTables(txn, false));
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());  // keeps the table handles open
  return opened;
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

Status RemoveForgetLeftovers(const std::string& dir) {
  fs::path folder(dir);
  std::error_code ec;
  fs::remove(folder / (std::string(kCompactName) + ".partial"), ec);
  if (ec) return Status::Io("cannot remove a half-written copy in " + dir + ": " + ec.message());
  return ZeroAndRemove((folder / kOldName).string());
}

Result<Store::BackupInfo> Store::Backup(const std::string& path) const {
  SAMSYNC_ASSIGN_OR_RETURN(int raw_fd, file_io::CreatePartial(path, "a backup", "backup"));
  lmdb::FdOwner out(raw_fd);
  std::string partial = path + ".partial";
  auto write = [&]() -> Result<BackupInfo> {
    std::array<uint8_t, kBackupHeaderBytes> header{};
    SAMSYNC_RETURN_IF_ERROR(file_io::WriteAll(out.get(), header, partial));  // filled in below
    SAMSYNC_RETURN_IF_ERROR(CompactCopy(impl_->env, out.get(), partial));
    off_t end = ::lseek(out.get(), 0, SEEK_END);
    if (end < static_cast<off_t>(kBackupHeaderBytes)) return Status::Io("cannot size " + partial + ": " + file_io::Errno());
    BackupInfo info;
    info.file_bytes = static_cast<uint64_t>(end);
    info.data_bytes = info.file_bytes - kBackupHeaderBytes;
    {
      int in = ::open(partial.c_str(), O_RDONLY | O_CLOEXEC);
      if (in < 0) return Status::Io("cannot read back " + partial + ": " + file_io::Errno());
      lmdb::FdOwner reader(in);
      SAMSYNC_ASSIGN_OR_RETURN(info.data_sha256, HashRange(in, kBackupHeaderBytes, info.data_bytes, partial));
    }
    std::copy(kBackupMagic.begin(), kBackupMagic.end(), header.begin());
    PutU32(header.data() + 16, kBackupVersion);
    PutU32(header.data() + 20, impl_->city_wide ? kBackupFlagCityWide : 0);
    PutU64(header.data() + 24, info.data_bytes);
    std::copy(info.data_sha256.bytes.begin(), info.data_sha256.bytes.end(), header.begin() + 32);
    if (::pwrite(out.get(), header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
      return Status::Io("cannot write " + partial + ": " + file_io::Errno());
    }
    SAMSYNC_RETURN_IF_ERROR(SyncFd(out.get(), partial));
    return info;
  };
  auto info = write();
  out.Close();
  if (info.ok()) {
    Status renamed = file_io::RenameNoReplace(partial, path, "a backup");
    if (renamed.ok()) {
      fs::path folder = fs::path(path).parent_path();
      SAMSYNC_RETURN_IF_ERROR(file_io::SyncFolder(folder.empty() ? fs::path(".") : folder));
      return info;
    }
    info = renamed;
  }
  ::unlink(partial.c_str());
  return info.status();
}

Result<std::unique_ptr<Store>> Store::Restore(const std::string& path, const std::string& dir, const KeySource& key,
                                              const Clock& clock, const RestoreOptions& options) {
  fs::path target = fs::path(dir).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  std::error_code ec;
  if (target.empty()) return Status::Invalid("restore needs a store folder to create (--store DIR)");
  if (fs::exists(fs::symlink_status(target, ec))) {
    return Status::Invalid(dir + " already exists: a restore creates a new store folder and never writes into one");
  }
  fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) return Status::NotFound("the folder " + parent.string() + " does not exist");
  if (key.kind == KeySource::Kind::kKeyFile) {
    SAMSYNC_RETURN_IF_ERROR(ReadKeyFile(key.key_file).status());  // a missing key file, named as such
  }

  int raw_in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_in < 0) {
    if (errno == ENOENT) return Status::NotFound("no backup file " + path);
    return Status::Io("cannot open " + path + ": " + file_io::Errno());
  }
  lmdb::FdOwner in(raw_in);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Status::Invalid(path + " is not a samsync backup");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  std::array<uint8_t, kBackupHeaderBytes> header{};
  if (size < kBackupHeaderBytes ||
      ::pread(in.get(), header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()) ||
      !std::equal(kBackupMagic.begin(), kBackupMagic.end(), header.begin())) {
    return Status::Invalid(path + " is not a samsync backup");
  }
  uint32_t version = GetU32(header.data() + 16);
  if (version != kBackupVersion) {
    return Status::Invalid(path + " is a backup of format version " + std::to_string(version) +
                           ", not the one this samsync reads (" + std::to_string(kBackupVersion) + ")");
  }
  bool city_wide = (GetU32(header.data() + 20) & kBackupFlagCityWide) != 0;
  uint64_t length = GetU64(header.data() + 24);
  if (length != size - kBackupHeaderBytes) {
    return Status::Corruption(path + " is cut short or extended: it holds " + std::to_string(size - kBackupHeaderBytes) +
                              " bytes of data, its header says " + std::to_string(length) + "; nothing was restored");
  }
  if (options.city_wide && *options.city_wide != city_wide) {
    return Status::Invalid(path + (city_wide ? " is a backup of the city's sync server store, not of a district's"
                                             : " is a backup of a district's store, not of the city's sync server"));
  }
  SAMSYNC_ASSIGN_OR_RETURN(Hash sha, HashRange(in.get(), kBackupHeaderBytes, length, path));
  if (!std::equal(sha.bytes.begin(), sha.bytes.end(), header.begin() + 32)) {
    return Status::Corruption(path + " is damaged: its SHA-256 does not match its header; nothing was restored");
  }

  // Build the store beside its final place, and rename it in only once it opens.
  std::array<uint8_t, 8> random{};
  randombytes_buf(random.data(), random.size());
  std::string suffix = Sha256(random).ToHex().substr(0, 12);
  fs::path temp = parent / ("." + target.filename().string() + ".restore-" + suffix);
  if (::mkdir(temp.c_str(), 0700) != 0) return Status::Io("cannot create " + temp.string() + ": " + file_io::Errno());
  auto build = [&]() -> Status {
    std::string data = (temp / "data.mdb").string();
    int raw_out = ::open(data.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (raw_out < 0) return Status::Io("cannot create " + data + ": " + file_io::Errno());
    lmdb::FdOwner out(raw_out);
    std::vector<uint8_t> buffer(1 << 20);
    for (uint64_t offset = kBackupHeaderBytes; offset < size;) {
      ssize_t n = ::pread(in.get(), buffer.data(), static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - offset)),
                          static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::Io("cannot read " + path + ": " + file_io::Errno());
      SAMSYNC_RETURN_IF_ERROR(file_io::WriteAll(out.get(), {buffer.data(), static_cast<size_t>(n)}, data));
      offset += static_cast<uint64_t>(n);
    }
    SAMSYNC_RETURN_IF_ERROR(SyncFd(out.get(), data));
    out.Close();
    {
      auto opened = Store::Open(temp.string(), key, clock);
      if (!opened.ok()) {
        const Status& s = opened.status();
        if (s.code() == Code::kWrongKey) {
          return Status::WrongKey("the backup " + path +
                                  " does not open with this passphrase or key file (it opens with the one the store "
                                  "had when the backup was taken)");
        }
        return Status(s.code() == Code::kIoError ? Code::kCorruption : s.code(),
                      path + " does not hold a usable store: " + s.message());
      }
      if ((*opened)->city_wide() != city_wide) return Status::Corruption(path + "'s header does not match its store");
    }
    fs::remove(temp / "lock.mdb", ec);  // LMDB makes it anew; it describes no reader now
    SAMSYNC_RETURN_IF_ERROR(file_io::SyncFolder(temp));
    SAMSYNC_RETURN_IF_ERROR(file_io::RenameNoReplace(temp.string(), target.string(), "a store"));
    return file_io::SyncFolder(parent);
  };
  Status built = build();
  if (!built.ok()) {
    fs::remove_all(temp, ec);
    return built;
  }
  return Store::Open(target.string(), key, clock);
}

Result<std::optional<Store::PersonErasure>> Store::ErasureOf(const ChildRef& ref) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  std::string key = ErasedKey(impl_->PersonKey(ref));
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(impl_->tables.meta, AsBytes(key)));
  if (!sealed) return std::optional<PersonErasure>();
  auto plain = impl_->Open("meta", AsBytes(key), *sealed);
  if (!plain.ok() || plain->span().size() != 8 + 32) {
    return Status::Corruption("an erasure record of the identity table fails authentication");
  }
  PersonErasure erasure;
  erasure.time_ms = static_cast<int64_t>(GetU64(plain->span().data()));
  std::copy_n(plain->span().data() + 8, 32, erasure.device.bytes.begin());
  return std::optional<PersonErasure>(erasure);
}

Status RewriteAlone(Store::Impl& impl, const std::function<Status(lmdb::Env&, const Tables&)>& change) {
  if (impl.read_only) return Status::Invalid("the store is open read-only");
  std::string data = (fs::path(impl.dir) / "data.mdb").string();
  std::string compact = (fs::path(impl.dir) / kCompactName).string();
  std::string old = (fs::path(impl.dir) / kOldName).string();
  uint64_t map_size = impl.env.map_size();

  // Close this process's environment, and hold the store alone (or give up with
  // nothing written, reopening it as it was).
  impl.env = lmdb::Env();
  impl.lock_hold.Close();
  impl.ForgetRosterRead();
  auto locked = LockExclusively(impl.dir);
  if (!locked.ok()) {
    auto reopened = OpenEnv(impl.dir, map_size, false);
    if (!reopened.ok()) return reopened.status();
    impl.env = std::move(reopened->env);
    impl.tables = reopened->tables;
    return locked.status();
  }
  lmdb::FdOwner lock = std::move(locked).value();
  auto rewrite = [&]() -> Status {
    SAMSYNC_RETURN_IF_ERROR(RemoveForgetLeftovers(impl.dir));
    SAMSYNC_ASSIGN_OR_RETURN(OpenedEnv alone, OpenEnv(impl.dir, map_size, /*no_lock=*/true));
    SAMSYNC_RETURN_IF_ERROR(change(alone.env, alone.tables));
    // The compact copy holds live pages only: what `change` deleted or replaced is in
    // none of them.
    SAMSYNC_ASSIGN_OR_RETURN(int raw_fd, file_io::CreatePartial(compact, "a compact copy", "rewrite of the store"));
    lmdb::FdOwner out(raw_fd);
    std::string partial = compact + ".partial";
    SAMSYNC_RETURN_IF_ERROR(CompactCopy(alone.env, out.get(), partial));
    SAMSYNC_RETURN_IF_ERROR(SyncFd(out.get(), partial));
    out.Close();
    alone.env = lmdb::Env();
    // data.mdb stays a whole store at every step: the old file gets a second name, the
    // copy replaces data.mdb in one rename, the old one is zeroed and deleted.
    if (::link(data.c_str(), old.c_str()) != 0) return Status::Io("cannot link " + old + ": " + file_io::Errno());
    if (::rename(partial.c_str(), data.c_str()) != 0) {
      return Status::Io("cannot rename " + partial + " to " + data + ": " + file_io::Errno());
    }
    SAMSYNC_RETURN_IF_ERROR(file_io::SyncFolder(impl.dir));
    SAMSYNC_RETURN_IF_ERROR(ZeroAndRemove(old));
    return file_io::SyncFolder(impl.dir);
  };
  Status rewritten = rewrite();
  // Open the store again while still holding the lock: LMDB sees the first opener and
  // rebuilds lock.mdb for the new file. `lock` must stay open as long as the
  // environment (closing it would drop the lock LMDB then shares).
  auto reopened = OpenEnv(impl.dir, map_size, false);
  impl.lock_hold = std::move(lock);
  if (!reopened.ok()) return reopened.status();
  impl.env = std::move(reopened->env);
  impl.tables = reopened->tables;
  return rewritten;
}

Result<Store::ForgetReport> Store::ForgetPerson(const ChildRef& ref) {
  Impl& impl = *impl_;
  if (impl.read_only) return Status::Invalid("the store is open read-only; nothing can be erased");
  ForgetReport report;
  SAMSYNC_ASSIGN_OR_RETURN(auto erased, ErasureOf(ref));
  bool present = HasPerson(ref);  // also after an erasure, if the child was added again
  report.already_erased = erased.has_value() && !present;
  if (!erased && !present) {
    return Status::NotFound("no child with reference " + ref.ToText() + " in this store's identity table");
  }
  std::string data = (fs::path(impl.dir) / "data.mdb").string();
  report.file_bytes_before = FileSize(data);
  report.erased_ms = report.already_erased ? erased->time_ms : impl.clock.NowMs();
  Status rewritten = RewriteAlone(impl, [&](lmdb::Env& env, const Tables& tables) -> Status {
    if (report.already_erased) return Status::Ok();  // only the compaction is left to do
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(env, false));
    auto person_key = impl.PersonKey(ref);
    SAMSYNC_RETURN_IF_ERROR(txn.Delete(tables.persons, person_key));
    std::array<uint8_t, 8 + 32> plain{};
    PutU64(plain.data(), static_cast<uint64_t>(report.erased_ms));
    std::copy(impl.device_key->public_key().bytes.begin(), impl.device_key->public_key().bytes.end(),
              plain.begin() + 8);
    std::string key = ErasedKey(person_key);
    std::vector<uint8_t> sealed;
    impl.Seal("meta", AsBytes(key), plain, sealed);
    SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.meta, AsBytes(key), sealed));
    return txn.Commit();
  });
  if (!rewritten.ok()) return rewritten;
  report.file_bytes_after = FileSize(data);
  return report;
}

}  // namespace samsync
