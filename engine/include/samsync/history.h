// The signed change history: commits, their checks, and the state they derive.
//
// A commit is one user action: the ops it made (set fields of a record, delete a
// record), signed by the device that made it. A device's commits form a hash chain
// (each names its predecessor's id and has the next sequence number), so a removed,
// reordered or rewritten commit is visible. Its id is SHA-256 of the canonical
// Cap'n Proto encoding of the Commit struct; the signature is Ed25519 over
// "samsync commit v1\n" followed by the same bytes (schema/history.capnp).
//
// The state of a store is a pure function of its commits: merge.h says how.
#ifndef SAMSYNC_HISTORY_H_
#define SAMSYNC_HISTORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/clock.h"
#include "samsync/keys.h"
#include "samsync/record.h"
#include "samsync/roster.h"
#include "samsync/schema/history.capnp.h"
#include "samsync/status.h"

namespace samsync {

inline constexpr uint32_t kCommitFormatVersion = 1;

// A hybrid logical clock value: milliseconds since the Unix epoch in the high 48 bits,
// a counter in the low 16. Later events compare greater, even when the wall clock
// steps back.
struct Hlc {
  static uint64_t Next(uint64_t last, int64_t now_ms) {
    uint64_t wall = static_cast<uint64_t>(now_ms < 0 ? 0 : now_ms) << 16;
    return wall > last ? wall : last + 1;
  }
  static int64_t Millis(uint64_t hlc) { return static_cast<int64_t>(hlc >> 16); }
};

// Per device, the highest sequence number held (a replica's heads) or seen (a
// commit's causal past). A device absent from the map counts as 0.
using VersionVector = std::map<PublicKey, uint64_t>;

// "3f2a…(64 hex):12,9c1e…:40": the text form `samsync status` prints and `bundle
// export --since` reads. Empty text is the empty vector.
std::string FormatVersionVector(const VersionVector& vector);
// Fails with kInvalidInput naming the malformed entry (bad key, seq 0 or not a
// number, a device twice).
Result<VersionVector> ParseVersionVector(std::string_view text);

// A decoded signed commit. Owns its bytes; a resource (move-only).
class Commit {
 public:
  // Decodes a SignedCommit message. Bytes are untrusted: the traversal limit is
  // bounded and sizes are checked (author 32 bytes, signature 64, parent 0 or 32).
  // Checks nothing else; see CheckCommit.
  static Result<Commit> Decode(std::span<const uint8_t> signed_commit);

  ~Commit();
  Commit(Commit&&) noexcept;
  Commit& operator=(Commit&&) noexcept;

  const Hash& id() const { return id_; }
  const PublicKey& author() const { return author_; }
  uint64_t seq() const { return reader().getSeq(); }
  uint64_t hlc() const { return reader().getHlc(); }
  std::string district() const { return reader().getDistrict().cStr(); }
  // The other devices' commits the author held when it signed (schema: Commit.seen).
  VersionVector seen() const;
  // The predecessor's id; zero for a device's first commit.
  const Hash& parent() const { return parent_; }
  schema::Commit::Reader reader() const;
  // The SignedCommit bytes, as stored and sent.
  const std::vector<uint8_t>& signed_bytes() const { return signed_bytes_; }
  // Whether the signature verifies. Checked once and remembered, so a verifier can
  // check many commits' signatures on worker threads (one thread per Commit at a
  // time) before checking everything else in order.
  bool SignatureValid() const;

  // "commit 9c1e…(64 hex) (device 3f2a…(16 hex) seq 7)": how messages name a commit.
  std::string Name() const;

 private:
  friend class CommitBuilder;  // builds a Commit from the bytes it just signed
  Commit() = default;
  struct Message;
  std::unique_ptr<Message> message_;
  std::vector<uint8_t> signed_bytes_;
  Hash id_;
  PublicKey author_;
  Hash parent_;
  mutable std::optional<bool> signature_valid_;
};

// Collects the ops of one action and signs them into a commit.
class CommitBuilder {
 public:
  CommitBuilder();
  ~CommitBuilder();
  CommitBuilder(const CommitBuilder&) = delete;
  CommitBuilder& operator=(const CommitBuilder&) = delete;
  // Sets `fields` (ordinals, see FieldOrdinals) of `record` (its type, id, district
  // and those fields' values are recorded).
  void AddSet(const Record& record, const std::vector<uint16_t>& fields);
  void AddSet(Record&& record, std::vector<uint16_t> fields);
  void AddDelete(RecordType type, const RecordId& id);
  size_t op_count() const { return pending_.size(); }

  struct Header {
    std::string district;
    uint64_t seq = 1;
    Hash parent;  // zero for the first commit
    uint64_t hlc = 0;
    std::string note;
    VersionVector seen;  // the other devices' commits held (Commit.seen)
  };
  // Encodes canonically and signs. The builder is spent afterwards.
  Commit Sign(const SigningKey& key, const Header& header);

 private:
  struct PendingOp {
    std::optional<Record> record;  // a set op; nullopt for a delete
    std::vector<uint16_t> fields;
    RecordType delete_type;
    RecordId delete_id;
  };
  std::vector<PendingOp> pending_;
};

// The ordinals of the fields of `record`'s type whose values differ between `before`
// and `after` (all fields when `before` is null). Both must be of one type.
std::vector<uint16_t> ChangedFields(const Record* before, const Record& after);

// How strict CheckCommit is.
struct CommitRules {
  const Roster* roster = nullptr;  // null: authors are not checked against a roster
  int64_t now_ms = 0;
  int64_t max_skew_ms = 10 * 60 * 1000;  // commits dated further in the future are refused
  // The caller has checked the signature of these very bytes already (an import's
  // checking pass, over a private copy of the file it then applies).
  bool signature_checked = false;
};

// Checks what a commit must satisfy given its device's previous commit (nullptr for
// the device's first): the signature; seq = previous + 1 (or 1); parent = previous id
// (or none); hlc after the previous one's and not beyond now + skew; the author a
// writer of the commit's district at signing time (when a roster is given); every
// set op's record in the commit's district; `seen` well formed (sorted, 32-byte keys,
// seqs from 1, never the author). Whether the seen commits are held is the merge's
// check (merge.h). Fails naming the commit and the reason:
// kBadSignature, kUnauthorised, or kCorruption (chain, sequence, time, content).
Status CheckCommit(const Commit& commit, const Commit* previous, const CommitRules& rules);
// The part of CheckCommit that needs no other commit: everything but the chain
// (format, signature, clock skew, roster, seen list, every op well formed and of the
// commit's district). A commit that passes can be merged without failing half way.
Status CheckCommitAlone(const Commit& commit, const CommitRules& rules);

}  // namespace samsync

#endif  // SAMSYNC_HISTORY_H_
