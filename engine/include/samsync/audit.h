// Audit bundles: the city's whole signed history as its sync server's transparency log
// holds it, written by `samsync audit fetch` and verified offline by `samsync audit
// verify`, without trusting the server (schema/audit.capnp).
//
// An audit bundle is a sequence of framed Cap'n Proto messages, each an AuditEntry, in
// this order: one header (magic "samsync-audit", format version, where and when it was
// fetched); every roster version the server installed, oldest first (as signed by the
// city's root key); the signed checkpoint with the cosignatures the server held; the
// state statement signed by the log key; the log's commits in leaf order (leaf i is
// the i-th commit: its leaf data is the commit's 32-byte id), as many as the
// checkpoint's size; one end entry holding the commit count. The stock tool reads it:
//   capnp decode -I/usr/include schema/audit.capnp AuditEntry < city.audit
// Unlike an offline bundle (bundle.h) it carries no digest: everything in it is
// signed (rosters by the root key, the checkpoint and statement by the log key,
// commits by their authors) and the checkpoint's Merkle root binds the commits and
// their order, which is what VerifyAuditBundle checks.
//
// Trust. The one thing an auditor brings is the city's root key (AuditOptions.root_key):
// the rosters must be signed by it, the latest roster names the log key (a server
// entry) and the witnesses (its other entries), and everything else follows from
// those signatures. Nothing the bundle says about itself is believed unchecked.
//
// Threads: every class here is a resource used by one thread at a time; the free
// functions may be called from any thread (VerifyAuditBundle uses worker threads of its
// own to check signatures, and joins them before it returns).
#ifndef SAMSYNC_AUDIT_H_
#define SAMSYNC_AUDIT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/clock.h"
#include "samsync/keys.h"
#include "samsync/note.h"
#include "samsync/roster.h"
#include "samsync/status.h"

namespace samsync {

inline constexpr uint32_t kAuditFormatVersion = 1;
// Bounds on one entry (one framed message) of an audit bundle, checked before
// anything is allocated. A roster is at most kMaxRosterBytes (64 MiB), a checkpoint
// or statement at most kMaxNoteBytes, a commit far less.
inline constexpr uint64_t kMaxAuditEntryBytes = uint64_t{256} << 20;
inline constexpr uint32_t kMaxAuditEntrySegments = 1024;

// Writes an audit bundle, streaming: each call appends its entry to a temporary file
// beside `path` ("<path>.partial", mode 0600: commits hold records in the clear), and
// only Finish() puts the file at `path`. The calls must come in the file's order:
// AddRoster (one or more), SetCheckpoint (once), AddCommit (any number), Finish; a
// call out of order fails with kInvalidInput and writes nothing.
//
// The writer checks form, not truth: that each piece decodes as what it claims to be
// and is within bounds. Whether the signatures hold is VerifyAuditBundle's work.
class AuditBundleWriter {
 public:
  // Starts a bundle at `path` and writes its header (`server`: where it was fetched
  // from, `fetched_ms`: when the fetch began). Fails with kInvalidInput if `path`
  // exists (a bundle is never overwritten) or "<path>.partial" does (another fetch is
  // writing it, or one was interrupted); kNotFound if the folder does not exist;
  // kIoError if the file system refuses.
  static Result<AuditBundleWriter> Create(const std::string& path, std::string_view server, int64_t fetched_ms);

  // Destroying a writer that was not finished removes "<path>.partial".
  ~AuditBundleWriter();
  AuditBundleWriter(AuditBundleWriter&&) noexcept;
  AuditBundleWriter& operator=(AuditBundleWriter&&) noexcept;
  AuditBundleWriter(const AuditBundleWriter&) = delete;
  AuditBundleWriter& operator=(const AuditBundleWriter&) = delete;

  // Appends a roster version (its signed bytes, as Roster::signed_bytes() and
  // Store::RosterHistory() give them). kInvalidInput if it does not decode as a
  // SignedRoster message or exceeds kMaxRosterBytes, or after SetCheckpoint.
  Status AddRoster(std::span<const uint8_t> signed_roster);

  // Appends the signed checkpoint (with its cosignatures) and the state statement,
  // both signed notes (note.h, witness.h). kInvalidInput before the first roster, if
  // called twice, or if a note is empty or exceeds kMaxNoteBytes.
  Status SetCheckpoint(std::string_view checkpoint_note, std::string_view state_statement_note);

  // Appends the next leaf's commit: its SignedCommit message bytes, as
  // Commit::signed_bytes() gives them. kInvalidInput before SetCheckpoint, or if the
  // bytes do not decode as a SignedCommit message or would exceed kMaxAuditEntryBytes.
  Status AddCommit(std::span<const uint8_t> signed_commit);

  // Writes the end entry, fsyncs the file and renames it to `path`, never replacing a
  // file that appeared there meanwhile (kInvalidInput). kInvalidInput before
  // SetCheckpoint. On success the bundle exists under `path`, whole; on failure
  // nothing exists under `path` that this writer made.
  //
  // Any kIoError spends the writer: every later call fails (kInvalidInput).
  Status Finish();

  uint64_t commit_count() const;
  // Bytes of the entries so far; after Finish(), the file's size.
  uint64_t bytes_written() const;

 private:
  struct State;
  explicit AuditBundleWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// ---------------------------------------------------------------------------------
// Verification

// Called between chunks of commits, on the verifying thread, so a command can show
// progress. Must not throw.
struct AuditProgress {
  uint64_t commits = 0;     // commits checked so far
  uint64_t tree_size = 0;   // the checkpoint's size: the commits there should be
  uint64_t ops = 0;
  double elapsed_seconds = 0;
};

struct AuditOptions {
  // The city's root key: the trust anchor. Required (an all-zero key fails with
  // kInvalidInput).
  PublicKey root_key;
  // Where the temporary store is made (a fresh folder inside, removed afterwards
  // whatever happens); empty: $TMPDIR, else /tmp. It needs about the space of the
  // server's store.
  std::string temp_dir;
  // The clock the commits' dates are checked against (a commit dated further ahead
  // of it than the store allows fails); null: the system clock.
  const Clock* clock = nullptr;
  // Commits per import into the temporary store (one transaction each), and bytes:
  // what bounds the memory a verification holds, whatever the history's length.
  size_t chunk_commits = 1000;
  size_t chunk_bytes = size_t{4} << 20;
  std::function<void(const AuditProgress&)> progress;
};

// The checks VerifyAuditBundle makes, in this order (AuditReport.checks[i] is check i).
enum class AuditCheckId {
  kFormat = 0,  // header magic and version, entries in order and bounded, the end entry's count, nothing after it
  kRosters,     // each roster signed by the root key; each a valid replacement of the one before
  kCheckpoint,  // the log's signature by a server key of the latest roster; every cosignature by a roster entry
  kCommits,     // every commit: signature, chain, sequence, seen, roster rules, merge (in leaf order)
  kTree,        // the Merkle root of the commit ids, and their count, equal the checkpoint's
  kState,       // the state statement: signed by the log key, at the checkpoint's size, the derived state hash
};
inline constexpr int kAuditCheckCount = 6;
// "format", "rosters", "checkpoint", "commits", "tree", "state": stable names (JSON).
std::string_view AuditCheckName(AuditCheckId check);

enum class AuditOutcome { kPassed, kFailed, kNotRun };
std::string_view AuditOutcomeName(AuditOutcome outcome);  // "passed", "failed", "not run"

struct AuditCheck {
  AuditCheckId id = AuditCheckId::kFormat;
  AuditOutcome outcome = AuditOutcome::kNotRun;
  // Passed: what was checked, with counts ("2 versions, 1 to 2, signed by the root
  // key"). Failed: why. Not run: which failure made it impossible.
  std::string detail;
};

// The first failure, in the order of the checks.
struct AuditFailure {
  AuditCheckId check = AuditCheckId::kFormat;
  std::optional<uint64_t> leaf;    // the leaf index (from 0) of a commit that fails
  std::optional<Hash> commit;      // its id
  std::optional<PublicKey> author; // its author device
  uint64_t seq = 0;                // the commit's seq (0: unknown)
  std::string author_name;         // the author's roster label and district, when the roster names it
  std::string reason;              // one line
  // "commits: leaf 17, commit 9c1e…(16 hex), device 3f2a…(16 hex) seq 7 (laptop 2,
  // Farsta): the signature does not verify".
  std::string Describe() const;
};

// A roster entry whose cosignature on the checkpoint verifies.
struct AuditCosigner {
  PublicKey key;
  std::string label;
  std::string district;  // empty for city-wide roles
  Role role = Role::kWriter;
  uint64_t timestamp = 0;  // seconds since the epoch, as the witness wrote it
};

struct AuditReport {
  std::string file;
  // From the header (as the bundle says: not signed).
  std::string server;
  int64_t fetched_ms = 0;
  // From the checked rosters and checkpoint (empty / zero when those checks failed).
  std::string city;
  std::string origin;
  uint64_t rosters = 0;         // roster versions in the bundle
  uint64_t roster_version = 0;  // the latest, whose rules were applied
  PublicKey root_key;           // the trust anchor the rosters were checked against
  uint64_t tree_size = 0;       // the checkpoint's
  Hash root;                    // the checkpoint's
  std::string log_key_label;    // the roster label of the server entry that signed it
  std::vector<AuditCosigner> cosigners;  // in the note's order
  // The districts of the latest roster's writers that were not revoked, sorted: the
  // districts a person may expect among the cosigners.
  std::vector<std::string> writer_districts;
  uint64_t other_signature_lines = 0;    // neither the log's signature nor a valid cosignature of a roster entry
  // What the commits gave.
  uint64_t commits = 0;  // commit entries read
  uint64_t ops = 0;      // ops of the commits checked
  Hash computed_root;    // MTH of the commit ids read
  std::optional<Hash> state_hash;   // of the state derived from the commits (when all passed)
  std::optional<Hash> stated_hash;  // the state statement's
  uint64_t stated_size = 0;
  uint64_t bytes = 0;  // of the file
  AuditCheck checks[kAuditCheckCount];
  std::optional<AuditFailure> failure;  // nullopt when every check passed
  double elapsed_seconds = 0;

  bool ok() const { return !failure.has_value(); }
};

// Verifies the audit bundle at `path`, fully offline, streaming: memory holds the
// Merkle tree's O(log n) compact range, a few chunks of commits and one entry per
// device, whatever the length of the history (the temporary store's file is mapped,
// page cache, not heap). The commits are merged in leaf order into a temporary
// city-wide store (in a fresh folder under options.temp_dir, with a random key file,
// removed afterwards whatever happens but a kill) under the latest roster, a chunk per
// transaction, so that every commit gets exactly the checks an import makes (chain,
// sequence, seen, clock, roster, district) and the state is derived as any replica
// derives it. A thread reads and decodes the next chunks and checks their signatures
// on every core while the calling thread merges: the two overlap.
//
// What a check finds goes in the report (AuditReport.failure, and each check's
// outcome); reading continues past a failure when later checks can still say
// something (the format to the end, the tree), so a report is as complete as the
// bundle allows. The Status is not OK only when there is nothing to verify or the
// verification itself could not run:
//  - kNotFound: no file at `path`;
//  - kInvalidInput: the file is empty, ends inside its first entry, or is not an
//    audit bundle (its first entry is not an audit header), or is of a newer format
//    version; options.root_key is zero;
//  - kIoError, kMapFull: reading the file or writing the temporary store failed.
Result<AuditReport> VerifyAuditBundle(const std::string& path, const AuditOptions& options);

// ---------------------------------------------------------------------------------
// Reading a bundle's head, and comparing checkpoints

// Whether the file at `path` starts with an audit bundle's header (a checkpoint file,
// a signed note in text, does not). kNotFound if there is no such file, kIoError if it
// cannot be read.
Result<bool> IsAuditBundle(const std::string& path);

// What comes before a bundle's commits, checked: the rosters (the latest returned)
// against `root_key` as VerifyAuditBundle checks them. The checkpoint and statement are
// returned as written, unchecked (OpenCheckpoint them under `roster`).
struct AuditBundleHead {
  std::string server;
  int64_t fetched_ms = 0;
  uint64_t rosters = 0;
  Roster roster;  // the latest version
  std::string checkpoint_note;
  std::string statement_note;
};
// Fails as VerifyAuditBundle does on a missing or foreign file; kCorruption if the head
// is malformed or cut short; a roster's own error (kUnauthorised for another root key,
// kBadSignature, kCorruption, kInvalidInput for a version going back) with the context
// "roster N of the bundle".
Result<AuditBundleHead> ReadAuditBundleHead(const std::string& path, const PublicKey& root_key);

// The outcome of comparing two checkpoints of one log.
struct CheckpointComparison {
  bool consistent = false;  // false: a split view (two histories signed by the log key)
  std::string origin;
  Checkpoint a, b;          // as given, verified
  std::string a_note, b_note;
  // Sizes differ: the RFC 6962 consistency proof from the smaller to the larger,
  // computed from the bundle's leaves (empty when the sizes are equal).
  std::vector<Hash> proof;
  // Consistent: how it was shown. Split view: what disagrees (the evidence is the two
  // signed notes, a_note and b_note).
  std::string explanation;
};

// Compares two checkpoint notes of the roster's city's log. Both must open
// (OpenCheckpoint under `roster`: kBadSignature, kInvalidInput for another log's) and
// so share the origin. Equal sizes: consistent if the roots are equal, else a split
// view. Different sizes: the consistency proof between them is computed from the
// leaves in the audit bundle at `leaves_bundle` (its first max(size) commit ids), which
// must give the larger checkpoint's root (else kInvalidInput: the bundle is not of
// that history), and VerifyConsistency decides. Without a bundle (empty path) when the
// sizes differ: kInvalidInput ("give an audit bundle holding the larger checkpoint's
// leaves"). The bundle's leaves are read streaming, into MemoryMerkleNodes (about 64
// bytes a leaf); its commits' signatures are not checked (VerifyAuditBundle does
// that): the larger checkpoint's signed root vouches for them.
Result<CheckpointComparison> CompareCheckpoints(std::string_view a_note, std::string_view b_note,
                                                const Roster& roster, const std::string& leaves_bundle = {});

}  // namespace samsync

#endif  // SAMSYNC_AUDIT_H_
