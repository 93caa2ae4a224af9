// A district store: one encrypted LMDB environment in one folder.
//
// Contract
// - Every value is sealed with XChaCha20-Poly1305 under the store's data key; the
//   table name and the LMDB key are the associated data, so a value moved to another
//   key or table fails to open. Keys hold only type tags, random-and-time ids and
//   dates: never a name, a personnummer or a child reference.
// - The data key is random, and is kept sealed under a key-encryption key derived from
//   a passphrase (Argon2id; salt and parameters in the store header) or read from a
//   key file. It lives in sodium_malloc memory while the store is open.
// - Each Apply() is one LMDB write transaction: all of its operations happen, with
//   their index entries, or none do. Readers see a consistent snapshot.
// - Several processes may open one store at once (LMDB's locking); one Store object
//   must be used from one thread at a time.
#ifndef SAMSYNC_STORE_H_
#define SAMSYNC_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/clock.h"
#include "samsync/date.h"
#include "samsync/history.h"
#include "samsync/identity.h"
#include "samsync/ids.h"
#include "samsync/keys.h"
#include "samsync/record.h"
#include "samsync/roster.h"
#include "samsync/secret.h"
#include "samsync/status.h"

namespace samsync {

// Where the key-encryption key comes from.
struct KeySource {
  enum class Kind { kPassphrase, kKeyFile } kind = Kind::kPassphrase;
  SecretBytes passphrase;  // kPassphrase: UTF-8, not empty
  std::string key_file;    // kKeyFile: a file of 64 hex characters, mode 0600

  static KeySource Passphrase(SecretBytes passphrase);
  static KeySource KeyFile(std::string path);
};

// Creates a key file: 32 random bytes as 64 hex characters, mode 0600. Fails with
// kInvalidInput if the file exists (a key is never overwritten).
Status CreateKeyFile(const std::string& path);

// Reads a key file as CreateKeyFile writes it. Fails with kInvalidInput if the file
// is readable by group or others, or does not hold 64 hex characters.
Result<SecretBytes> ReadKeyFile(const std::string& path);

// Argon2id cost presets (libsodium's). Interactive suits a command run many times a
// day on an ordinary laptop (64 MiB, ~0.1 s); sensitive is for keys that guard a lot.
enum class KdfStrength { kInteractive, kModerate, kSensitive };

struct CreateOptions {
  std::string district;  // one of the city's districts (districts.h); empty if city_wide
  // The sync server's store: it merges the commits of every district and makes none
  // itself (Apply is refused).
  bool city_wide = false;
  // The sync server's store (city-wide): every commit it accepts is appended to its
  // transparency log, and its device key signs the log's checkpoints.
  bool transparency_log = false;
  KdfStrength kdf = KdfStrength::kInteractive;
  // The city's pseudonymisation key (32 bytes); a new random one when empty.
  SecretBytes pseudonym_key;
};

struct OpenOptions {
  // The most the store file may grow to. LMDB reserves address space, not disk.
  uint64_t map_size_bytes = uint64_t{16} << 30;
  bool read_only = false;
};

// What List() returns. Dates compare against the type's principal date (its index).
struct ListFilter {
  std::optional<Date> from{};       // inclusive
  std::optional<Date> to{};         // inclusive
  std::optional<RecordId> school{}; // records that refer to this school
  std::optional<ChildRef> child{};  // records about this child
};

// The operations of one user action. Applied whole or not at all.
class WriteBatch {
 public:
  // Inserts `record`, or replaces the record with its id. A zero id gets a new
  // time-ordered id; the district is always the store's. `label` ("row 7") prefixes
  // any error about this operation.
  void Put(Record record, std::string label = {});
  // Deletes the record with `id`; fails if it does not exist or a record refers to it.
  // On a deleted record whose delete discarded concurrent edits, deletes it again
  // having seen them: that settles the conflict (merge.h).
  void Delete(const RecordId& id, std::string label = {});
  // Writes `field` (an ordinal) of `record`, an existing record, even when the value
  // equals the one shown: a write that has seen every value of the field settles its
  // conflict (`samsync resolve`).
  void Settle(Record record, uint16_t field, std::string label = {});
  size_t size() const { return ops_.size(); }
  // What the user did, kept in the commit: "add concern", "import school skolor.csv".
  void set_note(std::string note) { note_ = std::move(note); }
  const std::string& note() const { return note_; }

  struct Op {
    std::optional<Record> put;
    RecordId delete_id;
    std::string label;
    std::optional<uint16_t> settle_field;  // Settle: written even if unchanged
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  std::string note_;
};

struct ApplyResult {
  std::vector<RecordId> ids;  // the id of each operation, in batch order
  // The commit that recorded the batch; nullopt when it changed nothing (every put
  // equal to what was stored).
  std::optional<Hash> commit_id;
};

// What Verify checked and found.
struct VerifyReport {
  uint64_t commits = 0;
  uint64_t ops = 0;
  uint64_t devices = 0;
  uint64_t records = 0;
  Hash state_hash;              // of the state derived from the commits
  uint64_t roster_version = 0;  // 0: no roster installed, authors were not checked
  Status failure;               // OK when everything holds; else the first problem, naming it
};

struct VerifyOptions {
  int64_t max_skew_ms = 10 * 60 * 1000;  // commits dated further ahead of the clock fail
};

// What ImportCommits did.
struct ImportReport {
  uint64_t received = 0;    // commits in the input
  uint64_t applied = 0;     // commits merged into the state (with earlier waiting ones)
  uint64_t duplicates = 0;  // commits already held: no change
  uint64_t ops = 0;         // ops of the applied commits
  uint64_t waiting = 0;     // commits held back until the commits they follow arrive
  uint64_t conflicts = 0;   // records with unresolved conflicts afterwards
  // Waiting commits that failed their checks once ready (not following their
  // device's chain, or a second version of a commit): dropped, never merged.
  uint64_t discarded = 0;
  std::vector<std::string> discard_reasons;  // the first few
};

// A replica's position: what `samsync status` prints. Two replicas holding the same
// commits have equal heads and equal state hashes.
struct ReplicaSummary {
  Hash state_hash;           // of the records and their conflicts (merge.h, StateHasher)
  VersionVector heads;       // per device, the highest seq held
  uint64_t records = 0;
  uint64_t commits = 0;
  uint64_t conflicts = 0;    // records with unresolved conflicts
  uint64_t waiting = 0;      // received commits waiting for earlier ones
};

// One write involved in a conflict.
struct ConflictWrite {
  PublicKey device;
  uint64_t seq = 0;
  int64_t time_ms = 0;
  Hash commit;
  // The record as that write set it: the conflicting field (or, for a discarded
  // edit, the fields it wrote) holds its value.
  std::optional<Record> value;
  std::vector<uint16_t> fields;  // the fields it wrote to this record
};

// A conflict: concurrent writes to one field, or edits a concurrent delete discarded.
struct Conflict {
  RecordType type = RecordType::kSchool;
  RecordId id;
  bool deleted = false;
  // Live record: the field, and its concurrent writes latest first; writes[0] holds the
  // value the record shows.
  uint16_t field = 0;
  // Deleted record: the (latest) delete in `deleted_by`; the discarded edits in
  // writes, by device key.
  std::optional<ConflictWrite> deleted_by;
  std::vector<ConflictWrite> writes;
};

struct StoreStats {
  std::string district;
  uint64_t records_by_type[kRecordTypeCount] = {};
  uint64_t persons = 0;
  uint64_t file_bytes = 0;
};

class Store {
 public:
  // Creates a store in `dir` (created if missing; must not hold a store already).
  static Result<std::unique_ptr<Store>> Create(const std::string& dir, const KeySource& key,
                                               CreateOptions options, const Clock& clock);
  // Opens an existing store. A wrong passphrase or key file, or a folder that is not a
  // store, fails with kWrongKey; a missing folder with kNotFound.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const KeySource& key,
                                             const Clock& clock, OpenOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& district() const;  // empty for a city-wide store
  bool city_wide() const;

  // kNotFound if there is no record with `id`; kCorruption naming the record if its
  // stored bytes fail authentication.
  Result<Record> Get(const RecordId& id) const;

  // Calls `visit` for each record of `type` matching `filter`, in index-date order when
  // a date bound is given and id order otherwise. `visit` returns false to stop. The
  // Record passed is valid only during the call.
  Status List(RecordType type, const ListFilter& filter,
              const std::function<bool(const Record&)>& visit) const;
  Result<std::vector<Record>> ListAll(RecordType type, const ListFilter& filter = {}) const;

  // Validates every operation (fields, references to schools and children, deletes of
  // referenced records) and writes them in one transaction. On any error nothing is
  // written and the error names the operation's label and the field.
  Result<ApplyResult> Apply(const WriteBatch& batch);

  // Adds a child to the local identity table and returns its reference. Adding the
  // same personnummer again returns the same reference (and updates the name). Each
  // call is written to the identity access log.
  Result<ChildRef> AddPerson(std::string_view personnummer, std::string_view name);
  // Adds many children in one transaction (an import, a generated district): all or
  // none. Returns their references in order. Fails naming the position of a bad entry.
  Result<std::vector<ChildRef>> AddPersons(const std::vector<std::pair<std::string, std::string>>& persons);
  // Looks a child up by reference; the lookup is written to the access log.
  Result<Person> LookupPerson(const ChildRef& ref);
  bool HasPerson(const ChildRef& ref) const;

  Result<StoreStats> Stats() const;

  // This device's public keys, to hand to the city's admin (`samsync whoami`).
  const PublicKey& device_key() const;
  const PublicKey& transport_key() const;
  // The transport key pair, for ZeroMQ CURVE (the secret half in sodium_malloc memory).
  const TransportKey& transport_key_pair() const;

  // Installs a signed roster. The first one pins the city's root key; after that a
  // roster must be signed by the same root and be newer (kUnauthorised for another
  // root, kInvalidInput for a rollback), and its signature must verify (kBadSignature).
  Status InstallRoster(std::span<const uint8_t> signed_roster);
  // The installed roster, or nullopt.
  Result<std::optional<Roster>> InstalledRoster() const;

  // Re-derives the state from the commits alone and checks every commit (signature,
  // chain, sequence, clock, authorship against the installed roster) and that the
  // stored records are exactly the derived state. Errors reading the store are
  // returned as a Status; what verification finds is in the report's `failure`.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const;

  // Merges commits from other replicas (a bundle, a sync). Each is checked exactly as
  // Verify checks it (signature, chain, sequence, clock, the roster) before anything
  // is written; commits already held are skipped; a commit whose predecessors or
  // seen commits are not here yet is kept, checked, until they arrive. `next` yields
  // commits until nullopt; an error from it, or any commit failing a check, aborts the
  // whole import: nothing is written. Needs an installed roster (kInvalidInput).
  // When a commit fails a check, `refused` (if given) is set to its id. `cosignature`
  // (if given; the log's store only) is kept in the same durable write, as
  // AddCosignature keeps it: check it first with CheckCosignature.
  struct Cosignature;
  Result<ImportReport> ImportCommits(const std::function<Result<std::optional<Commit>>()>& next,
                                     Hash* refused = nullptr, const Cosignature* cosignature = nullptr);
  // Visits the commits that `have` lacks (seq above its entry for their device), in
  // an order any replica can apply them in; with `only`, the commits of those devices
  // only. `visit` returns false to stop.
  Status CommitsAfter(const VersionVector& have, const std::function<bool(const Commit&)>& visit,
                      const std::set<PublicKey>* only = nullptr) const;
  // Writes a bundle file (bundle.h) of the commits `have` lacks.
  struct BundleStats {
    uint64_t commits = 0;
    uint64_t ops = 0;
    uint64_t bytes = 0;
    VersionVector heads;  // what a replica holds after importing it (a checkpoint)
  };
  Result<BundleStats> ExportBundle(const std::string& path, const VersionVector& have) const;
  // Reads and imports a bundle file: all of it or, on any problem, nothing.
  Result<ImportReport> ImportBundle(const std::string& path);

  Result<VersionVector> Heads() const;
  Result<ReplicaSummary> Summary() const;
  // Unresolved conflicts, in (type, id, field) order.
  Result<std::vector<Conflict>> Conflicts() const;

  // The sync server's record of when each district's last successful sync session
  // ended (ms since the epoch): what the citywide report measures staleness by. Kept
  // in the city-wide store only (kInvalidInput on a district store or a read-only
  // one); a district's time only moves forward (an earlier time is ignored).
  Status RecordDistrictSync(const std::string& district, int64_t time_ms);
  // Every district recorded, by name; a district that never synced is absent.
  Result<std::map<std::string, int64_t>> DistrictSyncTimes() const;

  // Visits commits in (hybrid logical clock, author) order, the order the state is
  // derived in. With `record`, only the commits that touched that record. `visit`
  // returns false to stop; the Commit is valid during the call only.
  Status History(const std::optional<RecordId>& record, const std::function<bool(const Commit&)>& visit) const;

  // The transparency log of the sync server's store (CreateOptions.transparency_log;
  // tlog.h, note.h). Every commit the store holds is one leaf, its 32-byte id, appended
  // in the transaction that stores the commit, in the order they were accepted. Roots
  // and proofs are read from the stored complete subtrees (O(log n) reads; the tree is
  // never held in memory). On a store without a log these fail with kInvalidInput.
  struct LogCheckpoint {
    uint64_t size = 0;
    Hash root;
    std::string origin;  // "<city>/samsync"
    std::string note;    // the signed checkpoint, with every cosignature held for it
  };
  // The checkpoint of the log as it is now: signs one with this store's device key
  // (the log key) when the log grew since the last one. Needs an installed roster (the
  // origin is its city's).
  Result<LogCheckpoint> SignCheckpoint();
  // The checkpoint signed at `size`, with its cosignatures; kNotFound if none was.
  Result<LogCheckpoint> CheckpointAt(uint64_t size) const;
  Result<uint64_t> LogSize() const;
  // The root of the first `size` leaves, from the stored tree.
  Result<Hash> LogRoot(uint64_t size) const;
  // RFC 6962 proofs, between sizes the log has reached.
  Result<std::vector<Hash>> LogConsistencyProof(uint64_t old_size, uint64_t size) const;
  struct LogInclusion {
    uint64_t index = 0;  // the leaf's position
    std::vector<Hash> proof;
  };
  // kNotFound when `commit` is not among the first `size` leaves.
  Result<LogInclusion> LogInclusionProof(const Hash& commit, uint64_t size) const;
  // Visits the leaves' commits in log order from index `from`; `visit` returns false to stop.
  Status LogCommits(uint64_t from, const std::function<bool(uint64_t index, const Commit&)>& visit) const;
  // The state statement (witness.h) of the log as it is now, signed by the log key:
  // the state hash of the city view at the log's size. For auditors.
  Result<std::string> SignStateStatement() const;
  // Every roster version this store installed, oldest first (signed bytes).
  Result<std::vector<std::vector<uint8_t>>> RosterHistory() const;
  // A witness's cosignature (a tlog-cosignature line, note.h) of the checkpoint signed
  // at `size`.
  struct Cosignature {
    uint64_t size = 0;
    PublicKey witness;
    std::string line;
  };
  // Checks `cosignature` against the witness's key and the checkpoint signed at its
  // size, and says whether it would be kept: false when the witness cosigned that
  // checkpoint before. kBadSignature if it does not verify, kNotFound if no checkpoint
  // was signed at that size.
  Result<bool> CheckCosignature(const Cosignature& cosignature) const;
  // Checks and keeps a cosignature. A witness's first cosignature of a checkpoint is
  // the one kept: a later one of the same checkpoint is checked and not written (a
  // machine that syncs every few seconds cosigns the same checkpoint again and again).
  Status AddCosignature(const Cosignature& cosignature);

  // The last checkpoint of the city's log this machine checked and cosigned as a
  // witness (the note as the server sent it), or nullopt before its first sync.
  Result<std::optional<std::string>> SeenCheckpoint() const;
  Status SaveSeenCheckpoint(std::string_view note);
  // This machine's cosignature, as a witness, of a checkpoint it checked (its note
  // text): a tlog-cosignature line (note.h) by its device key under WitnessName
  // (witness.h), timestamped now.
  Result<std::string> CosignCheckpoint(std::string_view checkpoint_text) const;

  // The identity table's access log, oldest first: when, what, which child.
  struct PersonAccess {
    int64_t time_ms = 0;
    std::string action;  // "added" or "lookedUp"
    ChildRef child_ref;
  };
  Result<std::vector<PersonAccess>> PersonAccessLog() const;

  // Backups (store_backup.cc; the file format is in docs/formats.md, "Backups").
  //
  // Writes a backup of the store to `path`, once: a compacted copy of the LMDB file
  // (live pages only, so nothing deleted lingers in it) framed by a header with a magic,
  // a version, the data's length and its SHA-256. Values stay sealed: the backup is as
  // encrypted as the store and opens with the same passphrase or key file (as it was
  // when the backup was taken). The copy is taken from one read transaction, so it is
  // consistent and writers (in this process or another) keep working meanwhile. Written
  // to `path`.partial, fsynced, renamed into place without replacing anything: kInvalidInput
  // if `path` exists, kNotFound if its folder does not, kIoError if the disk refuses
  // (then no `path` is left behind). It touches only the LMDB environment, so one thread
  // may take a backup while another uses this Store object (writes included).
  struct BackupInfo {
    uint64_t file_bytes = 0;  // the backup file, header included
    uint64_t data_bytes = 0;  // the compacted LMDB file inside it
    Hash data_sha256;
  };
  Result<BackupInfo> Backup(const std::string& path) const;

  struct RestoreOptions {
    // Set: the backup must be of a city-wide store (true) or a district's (false).
    std::optional<bool> city_wide;
  };
  // Creates the store folder `dir` from the backup at `path` and opens it. `dir` must not
  // exist (kInvalidInput: a store is never overwritten). The file is checked before use:
  // its magic and version (kInvalidInput "not a samsync backup"), its length and SHA-256
  // (kCorruption: cut short or damaged), then the store inside opens with `key` (kWrongKey)
  // and passes the store's own header and settings checks. The store is built in a
  // temporary folder beside `dir` and renamed into place only when all of that holds, so
  // an error or a crash leaves no `dir`. After a restore the store holds what it held at
  // backup time: sync it before working on it (the server gives back this machine's own
  // later commits; a new commit made first would fork its chain and be refused).
  static Result<std::unique_ptr<Store>> Restore(const std::string& path, const std::string& dir,
                                                const KeySource& key, const Clock& clock,
                                                const RestoreOptions& options = {});

  // Re-wraps the data key under `new_key` (a new passphrase, Argon2id with a new salt
  // and the store's present cost, or a key file) in one write transaction: nothing else
  // is re-encrypted. The file is then rewritten as a compact copy (as ForgetPerson does),
  // so the old wrapped key stays in no free page. Afterwards only `new_key` opens the
  // store (backups taken before still open with the old key). Like ForgetPerson it needs
  // the store open in this process only: kInvalidInput, nothing changed, otherwise.
  // kInvalidInput for an empty passphrase or a read-only store.
  Status ChangeKey(const KeySource& new_key);

  // Erasure (gallring): removes the child `ref` from the local identity table for good.
  // In one transaction the entry (personnummer, name) is deleted and an erasure is
  // recorded (when, by which device; sealed, keyed by the person-index hash: no personal
  // data). Then the store file is rewritten as a compact copy (as Backup writes) and
  // swapped in crash-safely, so no free page keeps the old sealed bytes; the old file is
  // overwritten with zeros before it is deleted. Records and commits that refer to the
  // child by its reference stay: they are the signed, synced history. Backups taken
  // before still hold the entry (they must be erased by their own retention).
  //
  // The swap needs the store to be open in this process only: if another process (a
  // sync, a server, a second shell) has it open, kInvalidInput and nothing is written
  // (if one opens it between the erasure and the swap, the entry is gone but the swap
  // is not done: running ForgetPerson again on the erased reference finishes it).
  // kNotFound when the reference was never in the table. Not on a read-only store.
  struct ForgetReport {
    bool already_erased = false;  // only the compaction ran (an earlier run was cut off)
    int64_t erased_ms = 0;
    uint64_t file_bytes_before = 0, file_bytes_after = 0;
  };
  Result<ForgetReport> ForgetPerson(const ChildRef& ref);
  // When `ref` was erased, and by which device; nullopt if it never was.
  struct PersonErasure {
    int64_t time_ms = 0;
    PublicKey device;
  };
  Result<std::optional<PersonErasure>> ErasureOf(const ChildRef& ref) const;

  class Impl;  // engine-private (store_impl.h)

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  // List, handing each record over to `visit` (which may move it away): ListAll keeps
  // the decoded records instead of copying each.
  Status ListInto(RecordType type, const ListFilter& filter, const std::function<bool(Record&)>& visit) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace samsync

#endif  // SAMSYNC_STORE_H_
