// Private: the store's tables and how values are sealed in them.
//
// Tables (LMDB named databases) and their keys:
//   meta        "header" → StoreHeader (plain: needed before the key is known)
//               "settings" → sealed StoreSettings
//   records     type tag (1) ‖ record id (16) → sealed Record
//   by_date     type tag (1) ‖ principal date yyyymmdd, big-endian (4) ‖ id (16) → empty
//   by_school   school id (16) ‖ type tag (1) ‖ record id (16) → empty
//   persons     BLAKE2b-128(person-index key, child ref) (16) → sealed Person
//   person_log  time-ordered id (16) → sealed PersonAccess
//   commits     device number (4, big-endian) ‖ seq (8, big-endian) → a SignedCommit's
//               bytes as signed, SealMessage (zstd)
//   heads       device signing key (32) → sealed DeviceHead (see EncodeHead)
//   commit_ids  commit id (32) → sealed device number ‖ seq
//   record_log  record id (16) ‖ device number (4) ‖ seq (8) → empty: commits that touched a record
//   clocks      type tag (1) ‖ record id (16) → RecordClock, SealMessage (packed): which writes hold each
//               field (merge.h); a deleted record's tombstone
//   conflicts   type tag (1) ‖ record id (16) → the element its conflicts add to the
//               state hash (32; merge.h StateHasher): the records whose clock has a conflict
//   pending     device key (32) ‖ seq (8) → sealed SignedCommit: received, signature
//               checked, waiting for the commits it follows or saw
//   log         the transparency log (a store with CreateOptions.transparency_log; tlog.h):
//               'n' ‖ level (1) ‖ index (8) → sealed hash of a complete subtree (level 0: leaves)
//               'l' ‖ index (8) → sealed commit id: the leaf's data, in the order accepted
//               'i' ‖ commit id (32) → sealed index (8)
//               's' → sealed size (8)
//               'c' ‖ size (8) → sealed checkpoint note, signed by the log key (note.h)
//               'w' ‖ size (8) ‖ witness signing key (32) → sealed cosignature line
//               'r' ‖ version (8) → sealed SignedRoster: every roster version installed
// meta also holds "checkpoint" (sealed: the last checkpoint of the city's log this
// machine checked as a witness), "state" (sealed lanes of the state hash: StateIn),
// "device" (sealed DeviceSecrets), "hlc" (sealed, the last clock value this store
// issued or saw) and "roster" (sealed SignedRoster, once installed); a
// city-wide store "synced/" ‖ district (sealed ms, 8: store_district_sync.cc); and
// "erased/" ‖ the persons key of an erased child (sealed time ms (8) ‖ device key (32):
// store_backup.cc).
// A sealed value's associated data is "samsync/1/" ‖ table ‖ 0x00 ‖ key.
#ifndef SAMSYNC_ENGINE_STORE_IMPL_H_
#define SAMSYNC_ENGINE_STORE_IMPL_H_

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "crypto.h"
#include "lmdb_env.h"
#include "samsync/history.h"
#include "samsync/merge.h"
#include "samsync/roster.h"
#include "samsync/store.h"

namespace samsync {

// The store format this samsync writes, and the oldest it reads. 2: commits may be
// kept compressed (Coding::kZstd), which a samsync reading only version 1 could not
// open; a version 1 store is marked 2 when first opened for writing, so that an older
// samsync refuses it by its version instead of taking its commits for altered ones.
inline constexpr uint32_t kStoreFormatVersion = 2;
inline constexpr uint32_t kOldestStoreFormatVersion = 1;
inline constexpr char kStoreMagic[] = "samsync-store";
inline constexpr unsigned kStoreMaxTables = 24;

struct Tables {
  MDB_dbi meta = 0, records = 0, by_date = 0, by_school = 0, persons = 0, person_log = 0;
  MDB_dbi commits = 0, heads = 0, commit_ids = 0, record_log = 0, clocks = 0, conflicts = 0, pending = 0;
  MDB_dbi log = 0;
};

// Where a device's chain stands in this store.
struct DeviceHead {
  uint32_t number = 0;  // this store's short name for the device, in commit keys
  uint64_t seq = 0;     // the last seq held
  Hash last_id;         // its commit id
  uint64_t last_hlc = 0;
};

inline lmdb::Bytes AsBytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
// Big-endian integers in keys and sealed values (keys sort as numbers).
inline void PutU32(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * (3 - i)));
}
inline void PutU64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
}
inline uint32_t GetU32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | in[i];
  return v;
}
inline uint64_t GetU64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

std::array<uint8_t, 12> CommitKey(uint32_t device_number, uint64_t seq);
using RecordKeyBytes = std::array<uint8_t, 17>;  // type tag (1) ‖ record id (16)
RecordKeyBytes RecordKey(RecordType type, const RecordId& id);
// Checks (and so remembers) every commit's signature, spreading them over the cores.
void CheckSignaturesInParallel(const std::vector<Commit>& commits);
// Goes through commits a batch at a time, in order, on the caller's thread: `read`
// fills the empty batch it is given (left empty: none is left), `use` takes each batch.
// With `check_signatures`, while one batch is used the next one's signatures are
// checked on the other cores (each commit remembers the outcome), beside the work of
// LMDB's one writer thread; at most two batches are held. A read that fails is
// returned after the batch before it was used, a use that fails at once.
Status UseInBatchesCheckedAhead(const std::function<Status(std::vector<Commit>&)>& read,
                                const std::function<Status(std::vector<Commit>&)>& use, bool check_signatures);
// "device 3f2a…(16 hex)": how messages name a device.
std::string DeviceName(const PublicKey& key);
// Opens (or, with `create`, creates) every table of a store in `txn`; kWrongKey when
// one is missing (not a samsync store). store_open.cc.
Result<Tables> OpenStoreTables(const lmdb::Txn& txn, bool create);
// Removes what an interrupted RewriteAlone (ForgetPerson, ChangeKey) left in the store
// folder `dir` (the old file, overwritten with zeros first; a half-written compact copy).
// Only while no other process can be in its swap (store_backup.cc).
Status RemoveForgetLeftovers(const std::string& dir);
// Holds the store alone (kInvalidInput, nothing written, while another process has it
// open), runs `change` through an environment of its own (one or more write
// transactions), then swaps a compact copy of the file in place of data.mdb so that
// nothing `change` deleted or replaced stays in a free page, and reopens `impl`'s
// environment on it. ForgetPerson and ChangeKey (store_backup.cc).
Status RewriteAlone(Store::Impl& impl, const std::function<Status(lmdb::Env&, const Tables&)>& change);

class Store::Impl {
 public:
  Impl(lmdb::Env env, Tables tables, SecretBytes data_key, const Clock& clock);

  // Seals / opens a value of `table` stored under `key`.
  void Seal(std::string_view table, lmdb::Bytes key, lmdb::Bytes plain, std::vector<uint8_t>& out) const;
  Result<crypto::PlainBytes> Open(std::string_view table, lmdb::Bytes key, lmdb::Bytes sealed) const;
  // How a flat Cap'n Proto message (whole words) of the commits or clocks table is
  // kept: the coding's name is appended to the table name in the associated data
  // ("commits/zstd", "clocks/packed"), so a value says how it was written.
  //   kPacked  Cap'n Proto's packed encoding, which drops each word's zero bytes, behind
  //            the flat length (4, big-endian)
  //   kZstd    one zstd frame that records the flat length: for commits, whose ops
  //            repeat the same layouts and labels (about 40 % of the flat size against
  //            about 65 % packed)
  enum class Coding { kPacked, kZstd };
  // Commits are compressed. Clocks stay packed: a packed clock is a few tens of bytes,
  // and a zstd frame spends 9 to 13 of its own on magic and headers (not measured on
  // clocks).
  static constexpr Coding kCommitsCoding = Coding::kZstd;
  static constexpr Coding kClocksCoding = Coding::kPacked;
  Status SealMessage(std::string_view table, Coding coding, lmdb::Bytes key, std::span<const uint8_t> flat,
                     std::vector<uint8_t>& out) const;
  // Opens a value SealMessage wrote under either coding (trying `coding`, the one
  // written now, first), or the plain flat bytes sealed under `table` that stores held
  // before values were coded: old and new values live side by side. kCorruption,
  // saying how after the value's name, when it fails authentication or does not decode.
  Result<std::vector<uint8_t>> OpenMessage(std::string_view table, Coding coding, lmdb::Bytes key,
                                           lmdb::Bytes sealed) const;

  Result<std::optional<Record>> ReadRecord(const lmdb::Txn& txn, RecordType type, const RecordId& id) const;
  // Opens and decodes the sealed value of record (type, id) stored under `key`.
  Result<std::optional<Record>> DecodeRecord(RecordType type, const RecordId& id, lmdb::Bytes key,
                                             lmdb::Bytes sealed) const;
  Result<std::optional<Record>> FindRecord(const lmdb::Txn& txn, const RecordId& id) const;
  // Whether a commit stored here touched record `id` (one seek in record_log). False
  // means the store holds no record and no tombstone of that id, of any type, where
  // FindRecord and FindClock look it up once per type. A commit's record_log entries
  // are written with the commit, after its records and clocks: an id that `txn` has
  // changed already may not be found here yet, and must be looked up in full.
  Result<bool> InHistory(const lmdb::Txn& txn, const RecordId& id) const;
  // Writes `record` in place of `replaced`, the record stored under its key (nullptr:
  // none): the value, the index entries that change, and the state hash.
  Status WriteRecord(lmdb::Txn& txn, const Record& record, const Record* replaced = nullptr);
  // Deletes `record`, as stored, with its index entries and its share of the state hash.
  Status RemoveRecord(lmdb::Txn& txn, const Record& record);
  // References found held during one write transaction: a batch that names the same
  // school or child a thousand times looks each up once. Valid only while nothing is
  // deleted (Apply forgets them at a delete).
  struct HeldReferences {
    std::set<RecordKeyBytes> records;
    std::set<ChildRef> children;
  };
  // The references `fields` of `record` hold must name records and children held here.
  Status CheckReferences(const lmdb::Txn& txn, const Record& record, std::span<const uint16_t> fields,
                         HeldReferences& held) const;
  Result<bool> IsReferenced(const lmdb::Txn& txn, const RecordId& school) const;
  bool HasPerson(const lmdb::Txn& txn, const ChildRef& ref) const;
  Status LogPersonAccess(lmdb::Txn& txn, int action, const ChildRef& ref);

  std::array<uint8_t, 16> PersonKey(const ChildRef& ref) const;

  // History.
  Result<std::optional<DeviceHead>> ReadHead(const lmdb::Txn& txn, const PublicKey& device) const;
  Status WriteHead(lmdb::Txn& txn, const PublicKey& device, const DeviceHead& head);
  Result<uint64_t> ReadHlc(const lmdb::Txn& txn) const;
  Status WriteHlc(lmdb::Txn& txn, uint64_t hlc);
  Result<uint32_t> NextDeviceNumber(const lmdb::Txn& txn) const;
  // Stores a commit the caller has checked, with its indexes, and moves the head.
  Status WriteCommit(lmdb::Txn& txn, const Commit& commit, uint32_t device_number);
  // Opens a commits table value (SealMessage under "commits") and decodes it; `where`
  // names it in errors.
  Result<Commit> OpenCommit(lmdb::Bytes key, lmdb::Bytes sealed, const std::string& where) const;
  Result<Commit> ReadCommit(const lmdb::Txn& txn, uint32_t device_number, uint64_t seq) const;
  Result<std::optional<Roster>> ReadRoster(const lmdb::Txn& txn) const;
  // Every device with commits here: their numbers and keys, and their heads.
  Status ReadDevices(const lmdb::Txn& txn, DeviceDirectory& devices, VersionVector& heads) const;

  // Merge state.
  Result<std::optional<RecordClock>> ReadClock(const lmdb::Txn& txn, RecordType type, const RecordId& id) const;
  // The clock of record `id`, whatever its type.
  Result<std::optional<RecordClock>> FindClock(const lmdb::Txn& txn, const RecordId& id) const;
  // Writes a clock and keeps the conflicts table and the state hash in step with it.
  // `devices` must hold every device the clock names.
  Status WriteClock(lmdb::Txn& txn, const RecordId& id, const RecordClock& clock, const DeviceDirectory& devices);
  // The state hash's lanes (merge.h StateHasher), kept in meta "state" in step with the
  // records and conflicts: WriteRecord, RemoveRecord and WriteClock update the lanes
  // this returns, which are sealed into meta just before `txn` commits. The first write
  // to a store that has none derives them (ComputeState) and the conflicts' elements.
  Result<StateHasher*> StateIn(lmdb::Txn& txn);
  // The lanes as stored; nullopt for a store that has none yet.
  Result<std::optional<StateHasher>> ReadState(const lmdb::Txn& txn) const;
  // The lanes derived from every record and every conflict, for a store without kept
  // lanes; with `conflict_elements`, also each conflict's element by its key.
  Result<StateHasher> ComputeState(
      const lmdb::Txn& txn, std::vector<std::pair<RecordKeyBytes, Hash>>* conflict_elements = nullptr) const;
  // Applies a commit that has been checked (CheckCommit, causal readiness) to the
  // records and clocks, and stores it. `devices` must hold every device of the store.
  Status MergeCommit(lmdb::Txn& txn, const Commit& commit, DeviceDirectory& devices);

  // The transparency log (store_log.cc).
  Result<uint64_t> ReadLogSize(const lmdb::Txn& txn) const;
  // Appends `commit` as the next leaf; a commit already in the log is not appended twice.
  Status AppendToLog(lmdb::Txn& txn, const Hash& commit);
  // Keeps a copy of each roster version installed, for auditors.
  Status KeepRoster(lmdb::Txn& txn, const Roster& roster);
  // The checkpoint of the log as it stands in `txn`: the one held for its size, else
  // one signed now with the log key and kept in `txn` (store_log.cc).
  Result<Store::LogCheckpoint> SignCheckpoint(lmdb::Txn& txn);
  // Keeps a cosignature checked by Store::CheckCosignature in `txn`, unless one of that
  // witness of that checkpoint is held (store_log.cc).
  Status KeepCosignature(lmdb::Txn& txn, const Cosignature& cosignature);

  std::string dir;  // the store's folder
  // After RewriteAlone swapped the file: the descriptor of lock.mdb it locked, kept
  // while `env` is open (closing it would drop this process's locks, LMDB's included).
  // Declared before `env`, so that it closes after it.
  lmdb::FdOwner lock_hold;
  lmdb::Env env;
  Tables tables;
  SecretBytes data_key;
  SecretBytes person_index_key;  // keys the persons table's key hash
  SecretBytes pseudonym_key;     // the city's: derives child references
  std::string district;  // empty when city_wide
  bool city_wide = false;
  bool transparency_log = false;  // every stored commit is appended to the log table
  std::optional<SigningKey> device_key;
  std::optional<TransportKey> transport_key;
  const Clock& clock;
  RecordIdGenerator ids;
  bool read_only = false;
  // StateIn's lanes while a write transaction runs: (its serial, the lanes).
  std::optional<std::pair<uint64_t, StateHasher>> pending_state;

  // Drops ReadRoster's memory of the last roster read (the data key changes: bytes
  // sealed under the old one must be authenticated again, and fail).
  void ForgetRosterRead() const {
    std::lock_guard lock(roster_mutex_);
    roster_read_.reset();
  }

 private:
  // ReadRoster's last opening: the sealed bytes it read and the roster they hold. The
  // same authenticated bytes hold the same roster, so it is not decoded and its
  // signature checked again (a sync server reads it for every request). Any thread.
  mutable std::mutex roster_mutex_;
  mutable std::optional<std::pair<std::vector<uint8_t>, Roster>> roster_read_;
};

// What every write to a store opened read-only fails with (OpenOptions.read_only; the
// CLI opens a store on a read-only file system so, to serve reads): nothing written.
inline Status ReadOnlyRefusal() {
  return Status::Io("the store is open read-only (is its disk read-only?): nothing was written");
}

}  // namespace samsync

#endif  // SAMSYNC_ENGINE_STORE_IMPL_H_
