// Merge: the rules that turn a set of signed commits into one state, the same on every
// replica whatever order the commits arrived in.
//
// The rules (ARCHITECTURE.md, "Merge"; README, "How merge works"):
// - Per field, the last writer wins by (hybrid logical clock, device key).
// - A write replaces the writes it saw: those in its commit's causal past (the
//   author's own earlier commits and Commit.seen). Writes to one field that did not
//   see each other are concurrent: the winner's value is shown and the others are
//   kept as a conflict until a write that saw them all (`samsync resolve`) settles it.
// - A delete is final. It removes the record and leaves a tombstone. A write the
//   delete saw is gone with the record; a write it did not see (made concurrently on
//   another device) does not bring the record back but is kept as a conflict of kind
//   "deleted", settled by a delete that saw it (`samsync resolve ID --delete`). A
//   write that saw the delete cannot be made: the record is gone on that device.
//
// Commits are applied in a causal order: a commit only after every commit it saw
// (its device's earlier ones and each Commit.seen entry). In any causal order these
// rules give the same records and the same conflicts, because what survives is
// exactly the writes no other write saw, and the winner among them is the greatest
// (hlc, device) of all writes (a write's hlc exceeds that of everything it saw).
#ifndef SAMSYNC_MERGE_H_
#define SAMSYNC_MERGE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "samsync/history.h"
#include "samsync/keys.h"
#include "samsync/record.h"
#include "samsync/status.h"

namespace samsync {

// One write: a commit, named by its device's number in this replica and its seq.
struct Dot {
  uint32_t device = 0;
  uint64_t seq = 0;
  uint64_t hlc = 0;
  bool operator==(const Dot&) const = default;
};

// A replica's short names for devices (numbers from 1) and their keys. Numbers are
// local: they appear in stored clocks, never in anything shared or hashed.
class DeviceDirectory {
 public:
  // Registers `key` with `number` (as a store's heads table says).
  void Add(const PublicKey& key, uint32_t number);
  // The number of `key`, registering it with the next free number if new.
  uint32_t NumberOf(const PublicKey& key);
  std::optional<uint32_t> Find(const PublicKey& key) const;
  // The key of `number`; a zero key if unknown.
  const PublicKey& KeyOf(uint32_t number) const;
  // Whether `a` is later than `b` in last-writer-wins order: (hlc, device key).
  bool Later(const Dot& a, const Dot& b) const;

 private:
  std::map<PublicKey, uint32_t> numbers_;
  std::vector<PublicKey> keys_;  // [number - 1]
};

// What a commit's author had seen when it signed: its own commits up to and including
// this one, and other devices' up to the seqs in Commit.seen.
struct CausalPast {
  uint32_t self = 0;
  uint64_t self_seq = 0;
  std::vector<std::pair<uint32_t, uint64_t>> others;  // (device number, seq), sorted

  bool Covers(const Dot& dot) const;
  // The commit's past in `devices`' numbers (registering devices not seen before).
  static CausalPast Of(const Commit& commit, DeviceDirectory& devices);
};

// How one record stands: which writes hold each field's value, and whether it was
// deleted. Stored beside the record (sealed, table `clocks`), and as the tombstone
// once the record is deleted.
struct RecordClock {
  RecordType type = RecordType::kSchool;
  // Per field ordinal, the writes no other write to that field saw, latest first:
  // front() holds the value the record shows, more than one is a conflict. Empty for
  // a field never written. In a tombstone, only the writes no delete saw remain: the
  // edits the delete discarded.
  std::vector<std::vector<Dot>> fields;
  bool deleted = false;
  // Deleted record: per device number, the highest seq the record's deletes saw.
  std::vector<std::pair<uint32_t, uint64_t>> delete_seen;
  Dot deleted_by;  // the latest delete

  bool HasConflict() const;
  // Live record: the fields with concurrent writes, in ordinal order.
  std::vector<uint16_t> ConflictedFields() const;
  // Deleted record: the discarded writes, each once, by (device, seq).
  std::vector<Dot> LostEdits() const;

  std::vector<uint8_t> Encode() const;  // deterministic: equal clocks, equal bytes
  // Fails with kCorruption on bytes that are not a clock of a known type.
  static Result<RecordClock> Decode(std::span<const uint8_t> bytes);
};

// A record after an op: the record (nullopt once deleted) and its clock.
struct MergedRecord {
  std::optional<Record> record;
  RecordClock clock;
};

// Applies one op of a commit (written at `dot`, with causal past `past`) to a record's
// current state: `record` and `clock` null when the replica has never heard of it.
// Fails with kCorruption on a malformed op (unknown type or field, bad id, a type
// other than the record's).
Result<MergedRecord> MergeOp(schema::Op::Reader op, const Record* record, const RecordClock* clock, const Dot& dot,
                             const CausalPast& past, const DeviceDirectory& devices);

// MergeOp's rules for the clock alone, for a writer that made the record itself (a
// local action, whose past is everything the store holds). `clock.fields` must be
// sized to the type's fields. MergeWrite returns the fields whose value is `dot`'s.
std::vector<uint16_t> MergeWrite(RecordClock& clock, std::span<const uint16_t> fields, const Dot& dot,
                                 const CausalPast& past, const DeviceDirectory& devices);
void MergeDelete(RecordClock& clock, const Dot& dot, const CausalPast& past, const DeviceDirectory& devices);

// Feeds one record's conflicts into a state hash, with device keys rather than local
// numbers so that every replica holding the same commits hashes the same bytes.
void HashConflicts(Sha256Hasher& hasher, RecordType type, const RecordId& id, const RecordClock& clock,
                   const DeviceDirectory& devices);

// The records and clocks a history derives, in memory, in store order. Commits must be
// given in a causal order (Apply checks it); `samsync verify` feeds them in (hlc,
// author) order, which is causal for any history a store accepted.
class DerivedState {
 public:
  // `whole_history` false: commits will be a part of a history (the commits that
  // touched one record), so the seen commits are not required to come first.
  explicit DerivedState(bool whole_history = true) : whole_history_(whole_history) {}
  // Use the store's device numbers, so derived clocks compare byte for byte.
  void AddDevice(const PublicKey& key, uint32_t number) { devices_.Add(key, number); }
  // Applies every op of `commit`. Fails naming the commit if an op is malformed or
  // the commit claims to have seen a commit not applied before it.
  Status Apply(const Commit& commit);
  // SHA-256 over the records in (type tag, id) order, then their conflicts.
  Hash StateHash() const;
  size_t size() const { return records_.size(); }
  const Record* Find(RecordType type, const RecordId& id) const;
  const RecordClock* FindClock(RecordType type, const RecordId& id) const;
  size_t clock_count() const { return clocks_.size(); }
  const DeviceDirectory& devices() const { return devices_; }
  // The highest seq applied per device.
  const VersionVector& heads() const { return heads_; }
  // Visits records in (type, id) order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [key, record] : records_) fn(record);
  }

 private:
  using Key = std::pair<uint8_t, RecordId>;
  std::map<Key, Record> records_;
  std::map<Key, RecordClock> clocks_;
  DeviceDirectory devices_;
  VersionVector heads_;
  bool whole_history_ = true;
};

// The state hash: a set hash of the records and of the conflicts of records, which
// a store keeps up to date as records change rather than rehashing them all (so that
// `status` and a sync cost the same at 100 or 1,000,000 records). It is LtHash16
// (Lewi et al., "Securing Update Propagation with Homomorphic Hashing", 2019): each
// element is hashed with SHA-256, with its kind, and the hash keys ChaCha20 to
// expand it to 1,024 16-bit lanes, which add to (or, for an element removed, subtract
// from) the running lanes modulo 2^16. The state hash is SHA-256 of the lanes, so the
// order of adding does not matter. Elements:
//   a record    SHA-256('r' ‖ type tag ‖ id (16) ‖ length (8) ‖ canonical encoding)
//   conflicts   SHA-256('c' ‖ what HashConflicts feeds), for a record with any
class StateHasher {
 public:
  static constexpr size_t kLanes = 1024;
  static constexpr size_t kBytes = 2 * kLanes;  // the lanes, little-endian

  void Add(const Record& record);
  // As Add, with the record's canonical encoding already at hand.
  void Add(const Record& record, std::span<const uint8_t> canonical);
  void Remove(const Record& record);
  // The conflicts of one record (none when its clock has none).
  void AddConflicts(RecordType type, const RecordId& id, const RecordClock& clock, const DeviceDirectory& devices);
  // The element of a record's conflicts; nullopt when its clock has none.
  static std::optional<Hash> ConflictElement(RecordType type, const RecordId& id, const RecordClock& clock,
                                             const DeviceDirectory& devices);
  void AddElement(const Hash& element);
  void RemoveElement(const Hash& element);

  Hash Finish() const;
  bool operator==(const StateHasher& other) const { return lanes_ == other.lanes_; }

  // The lanes as kBytes bytes, and back (nullopt unless exactly kBytes).
  std::vector<uint8_t> Serialize() const;
  static std::optional<StateHasher> Deserialize(std::span<const uint8_t> bytes);

 private:
  static Hash RecordElement(const Record& record, std::span<const uint8_t> canonical);
  void Combine(const Hash& element, bool add);

  std::array<uint16_t, kLanes> lanes_{};
};

}  // namespace samsync

#endif  // SAMSYNC_MERGE_H_
