// The offline verification of an audit bundle (audit.h: VerifyAuditBundle).
//
// It never holds the history: commits are read, decoded and signature-checked a chunk
// at a time on other threads (CommitPipeline), checked here for their place in their
// device's chain (which an import would only park), and merged into a temporary
// city-wide store by Store::ImportCommits, which makes every other check in order. The
// Merkle root is a compact range (MerkleRootBuilder) fed with every commit id read.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "audit_reader.h"
#include "samsync/audit.h"
#include "samsync/history.h"
#include "samsync/store.h"
#include "samsync/tlog.h"
#include "samsync/witness.h"
#include "store_impl.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;

std::string Hex16(const Bytes32& bytes) { return bytes.ToHex().substr(0, 16); }
std::string Errno() { return std::strerror(errno); }

// A fresh folder, removed with everything in it when this goes.
class TempFolder {
 public:
  static Result<TempFolder> Make(const std::string& base_given) {
    std::string base = base_given;
    if (base.empty()) {
      const char* env = std::getenv("TMPDIR");
      base = env != nullptr && *env != '\0' ? env : "/tmp";
    }
    std::string pattern = base + "/samsync-audit-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
      return Status::Io("cannot make a temporary folder in " + base + ": " + Errno());
    }
    TempFolder folder;
    folder.path_ = buffer.data();
    return folder;
  }
  TempFolder(TempFolder&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempFolder& operator=(TempFolder&&) = delete;
  ~TempFolder() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  TempFolder() = default;
  std::string path_;
};

// What the log has shown of one device so far.
struct DeviceSeen {
  uint64_t seq = 0;
  Hash id;
  uint64_t leaf = 0;
};

// One commit of the chunk being checked, as the failure report needs it after the
// Commit itself went into the import.
struct ChunkEntry {
  uint64_t leaf = 0;
  Hash id;
  PublicKey author;
  uint64_t seq = 0;
};

// A failure about the commit `entry`.
AuditFailure CommitFailure(const ChunkEntry& entry) {
  AuditFailure failure;
  failure.leaf = entry.leaf;
  failure.commit = entry.id;
  failure.author = entry.author;
  failure.seq = entry.seq;
  return failure;
}

// CheckCommit's messages start with the commit's name, which the report gives apart.
std::string WithoutCommitName(const std::string& message, const Hash& id) {
  std::string prefix = "commit " + id.ToHex() + " (";
  if (message.compare(0, prefix.size(), prefix) != 0) return message;
  size_t end = message.find("): ", prefix.size());
  return end == std::string::npos ? message : message.substr(end + 3);
}

// A chunk of commits as CommitPipeline hands them over.
struct ReadChunk {
  std::vector<Commit> commits;
  std::vector<uint64_t> leaves;  // each commit's leaf index
  // A commit that does not decode ends the chunk; nothing is decoded after it.
  std::optional<AuditFailure> undecodable;
};

// The commits of a bundle read on a thread of its own, a chunk at a time: each
// decoded, its id made a leaf of the tree, and the chunk's signatures checked on every
// core (CheckSignaturesInParallel: a commit remembers the outcome, so the import that
// follows does not check again), ahead of the merge on the caller's thread, which
// overlaps with it. At most kAhead chunks wait, so memory stays bounded whatever the
// bundle's length. Pop and StopDecoding are for the consumer's thread; destroying the
// pipeline stops and joins the producer wherever it is.
class CommitPipeline {
 public:
  struct Outcome {
    Status status;  // of reading: OK, kCorruption (the format), or another error (I/O)
    Hash root;      // of every commit id read
    uint64_t commits = 0;
    uint64_t bytes = 0;
  };

  CommitPipeline(audit_format::Reader reader, bool decode, size_t chunk_commits, size_t chunk_bytes)
      : reader_(std::move(reader)), decode_(decode), chunk_commits_(chunk_commits), chunk_bytes_(chunk_bytes) {
    thread_ = std::thread([this] { Produce(); });
  }
  ~CommitPipeline() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // The next chunk, or nullopt when reading ended (see Finish).
  std::optional<ReadChunk> Pop() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty() || done_; });
    if (ready_.empty()) return std::nullopt;
    ReadChunk chunk = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
    return chunk;
  }

  // From now on only the leaves are needed (a commit failed).
  void StopDecoding() { decode_ = false; }

  // After Pop returned nullopt.
  Outcome Finish() {
    if (thread_.joinable()) thread_.join();
    return std::move(outcome_);
  }

 private:
  static constexpr size_t kAhead = 2;

  // Hands `chunk` to the consumer, waiting while kAhead chunks wait. False if stopped.
  bool Ship(ReadChunk& chunk) {
    if (chunk.commits.empty() && !chunk.undecodable) return true;
    CheckSignaturesInParallel(chunk.commits);
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return stop_ || ready_.size() < kAhead; });
    if (stop_) return false;
    ready_.push_back(std::move(chunk));
    chunk = ReadChunk();
    changed_.notify_all();
    return true;
  }

  bool Stopped() {
    std::lock_guard lock(mutex_);
    return stop_;
  }

  void Produce() {
    MerkleRootBuilder tree;
    ReadChunk chunk;
    size_t bytes = 0;
    bool shipping = true;
    while (shipping && !Stopped()) {
      auto next = reader_.Next();
      if (!next.ok()) {
        outcome_.status = next.status();
        break;
      }
      if (!*next) break;
      audit_format::Entry& entry = **next;
      if (entry.kind != audit_format::Entry::Kind::kCommit) continue;  // the end entry, checked by the reader
      uint64_t leaf = tree.size();
      tree.Add(MerkleLeafHash(entry.id.span()));
      if (!decode_) continue;
      auto commit = Commit::Decode(entry.bytes);
      if (!commit.ok()) {
        AuditFailure failure;
        failure.leaf = leaf;
        failure.commit = entry.id;
        failure.reason = commit.status().message();
        chunk.undecodable = std::move(failure);
        decode_ = false;
        shipping = Ship(chunk);
        continue;
      }
      bytes += entry.bytes.size();
      chunk.leaves.push_back(leaf);
      chunk.commits.push_back(std::move(commit).value());
      if (chunk.commits.size() >= chunk_commits_ || bytes >= chunk_bytes_) {
        shipping = Ship(chunk);
        bytes = 0;
      }
    }
    if (shipping && outcome_.status.ok()) Ship(chunk);
    outcome_.root = tree.Root();
    outcome_.commits = reader_.commits_read();
    outcome_.bytes = reader_.bytes_read();
    std::lock_guard lock(mutex_);
    done_ = true;
    changed_.notify_all();
  }

  audit_format::Reader reader_;  // the producer's alone once it runs
  std::atomic<bool> decode_;
  const size_t chunk_commits_, chunk_bytes_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<ReadChunk> ready_;  // guarded by mutex_
  bool done_ = false;            // guarded by mutex_
  bool stop_ = false;            // guarded by mutex_
  Outcome outcome_;              // the producer's until done_
  std::thread thread_;
};

class Verifier {
 public:
  Verifier(const std::string& path, const AuditOptions& options)
      : options_(options), started_(std::chrono::steady_clock::now()) {
    report_.file = path;
    report_.root_key = options.root_key;
    for (int i = 0; i < kAuditCheckCount; ++i) report_.checks[i].id = static_cast<AuditCheckId>(i);
  }

  Result<AuditReport> Run(audit_format::Reader reader) {
    report_.server = reader.server();
    report_.fetched_ms = reader.fetched_ms();
    bool format_ok = true;
    bool head_done = false;
    // The head (rosters, checkpoint, statement), on this thread.
    while (!head_done) {
      auto next = reader.Next();
      if (!next.ok()) {
        if (next.status().code() != Code::kCorruption) return next.status();
        Fail(AuditCheckId::kFormat, next.status().message());
        format_ok = false;
        break;
      }
      if (!*next) return Status::Corruption(report_.file + ": the audit bundle ends before its state statement");
      // The reader hands out nothing but head entries before the statement.
      audit_format::Entry& entry = **next;
      if (entry.kind == audit_format::Entry::Kind::kRoster) {
        TakeRoster(entry.bytes);
      } else if (entry.kind == audit_format::Entry::Kind::kCheckpoint) {
        checkpoint_note_ = std::move(entry.text);
      } else {
        statement_note_ = std::move(entry.text);
        SAMSYNC_RETURN_IF_ERROR(FinishHead());
        head_done = true;
      }
    }
    if (head_done) {
      // The commits: read, decoded and signature-checked on other threads while this
      // one merges the chunk before.
      CommitPipeline pipeline(std::move(reader), commits_active_, options_.chunk_commits, options_.chunk_bytes);
      while (auto chunk = pipeline.Pop()) {
        SAMSYNC_RETURN_IF_ERROR(TakeChunk(std::move(*chunk)));
        if (!commits_active_) pipeline.StopDecoding();
      }
      CommitPipeline::Outcome read = pipeline.Finish();
      if (!read.status.ok()) {
        if (read.status.code() != Code::kCorruption) return read.status;
        Fail(AuditCheckId::kFormat, read.status.message());
        format_ok = false;
      }
      report_.commits = read.commits;
      report_.bytes = read.bytes;
      report_.computed_root = read.root;
      leaves_ = read.commits;
    } else {
      report_.bytes = reader.bytes_read();
      report_.computed_root = MerkleEmptyRoot();
    }

    // (a) format
    if (format_ok) {
      Pass(AuditCheckId::kFormat, "header (format version " + std::to_string(kAuditFormatVersion) + "), " +
                                      std::to_string(report_.rosters) + " roster" + Plural(report_.rosters) +
                                      ", checkpoint, state statement, " + std::to_string(report_.commits) + " commit" +
                                      Plural(report_.commits) + ", end entry: in order, within bounds, " +
                                      std::to_string(report_.bytes) + " bytes, nothing after the end");
    }
    if (!head_done) {
      for (AuditCheckId id : {AuditCheckId::kRosters, AuditCheckId::kCheckpoint}) {
        if (Check(id).outcome == AuditOutcome::kNotRun) NotRun(id, "the bundle ends before its checkpoint");
      }
    }
    FinishCommits(format_ok);
    FinishTree(format_ok);
    SAMSYNC_RETURN_IF_ERROR(FinishState(format_ok));
    store_.reset();
    temp_.reset();
    return Done();
  }

  AuditReport MalformedHeader(std::string reason) {
    Fail(AuditCheckId::kFormat, std::move(reason));
    return Done();
  }

 private:
  AuditReport Done() {
    for (AuditCheck& check : report_.checks) {
      if (check.outcome == AuditOutcome::kNotRun && check.detail.empty()) {
        check.detail = "not reached: the bundle's format failed first";
      }
    }
    report_.elapsed_seconds = Elapsed();
    return std::move(report_);
  }

  static std::string Plural(uint64_t n) { return n == 1 ? "" : "s"; }

  AuditCheck& Check(AuditCheckId id) { return report_.checks[static_cast<int>(id)]; }

  void Pass(AuditCheckId id, std::string detail) {
    Check(id).outcome = AuditOutcome::kPassed;
    Check(id).detail = std::move(detail);
  }

  void NotRun(AuditCheckId id, std::string why) {
    Check(id).outcome = AuditOutcome::kNotRun;
    Check(id).detail = std::move(why);
  }

  // Records a failure of check `id`; the report's first failure is the failure of the
  // earliest check (checks fail in any order while streaming).
  void Fail(AuditCheckId id, std::string reason, AuditFailure failure = {}) {
    AuditCheck& check = Check(id);
    if (check.outcome == AuditOutcome::kFailed) return;  // the first failure of each check is kept
    check.outcome = AuditOutcome::kFailed;
    failure.check = id;
    failure.reason = std::move(reason);
    check.detail = failure.Describe().substr(AuditCheckName(id).size() + 2);  // without "name: "
    if (!report_.failure || static_cast<int>(report_.failure->check) > static_cast<int>(id)) {
      report_.failure = std::move(failure);
    }
  }

  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  std::string AuthorName(const PublicKey& key) const {
    if (!roster_) return "";
    const RosterEntry* entry = roster_->FindSigningKey(key);
    if (entry == nullptr) return "not in the roster";
    std::string name = entry->label;
    if (!entry->district.empty()) name += (name.empty() ? "" : ", ") + entry->district;
    if (name.empty()) name = std::string(RoleName(entry->role));
    return name;
  }

  // (b) each roster signed by the root key, each a valid replacement of the one before.
  void TakeRoster(const std::vector<uint8_t>& bytes) {
    ++report_.rosters;
    if (!rosters_ok_) return;
    std::string which = "roster " + std::to_string(report_.rosters) + " of the bundle";
    auto roster = Roster::Open(bytes, &options_.root_key);
    if (!roster.ok()) {
      rosters_ok_ = false;
      std::string why = roster.status().message();
      if (roster.status().code() == Code::kUnauthorised) {
        why = "it is not signed by the city's root key " + Hex16(options_.root_key) + "… (" + why + ")";
      }
      Fail(AuditCheckId::kRosters, which + ": " + why);
      return;
    }
    if (roster_) {
      Status replaces = roster_->CheckReplacement(*roster);
      if (!replaces.ok()) {
        rosters_ok_ = false;
        Fail(AuditCheckId::kRosters, which + " (version " + std::to_string(roster->version()) +
                                         ") may not replace the one before it: " + replaces.message());
        return;
      }
    } else {
      first_roster_version_ = roster->version();
    }
    roster_ = std::move(roster).value();
  }

  // After the head (rosters, checkpoint, statement): checks (b) and (c), opens the
  // statement for (f), and makes the temporary store the commits go into.
  Status FinishHead() {
    if (rosters_ok_ && roster_) {
      report_.city = roster_->city();
      report_.roster_version = roster_->version();
      std::set<std::string> districts;
      for (const RosterEntry& entry : roster_->entries()) {
        if (entry.role == Role::kWriter && entry.revoked_ms == 0) districts.insert(entry.district);
      }
      report_.writer_districts.assign(districts.begin(), districts.end());
      std::string root = Hex16(options_.root_key) + "…";
      Pass(AuditCheckId::kRosters,
           report_.rosters == 1
               ? "version " + std::to_string(roster_->version()) + " of " + roster_->city() +
                     "'s roster, signed by the root key " + root + ", applied"
               : std::to_string(report_.rosters) + " versions (" + std::to_string(first_roster_version_) + " to " +
                     std::to_string(roster_->version()) + ") of " + roster_->city() +
                     "'s roster, each signed by the root key " + root +
                     " and each replacing the one before; the latest applied");
    } else {
      NotRun(AuditCheckId::kCheckpoint, "needs the roster (rosters failed)");
      NotRun(AuditCheckId::kCommits, "needs the roster (rosters failed)");
      NotRun(AuditCheckId::kState, "needs the roster (rosters failed)");
      return Status::Ok();
    }
    CheckCheckpoint();
    auto statement = OpenStateStatement(statement_note_, *roster_);
    if (statement.ok()) {
      statement_ = std::move(statement).value();
      report_.stated_hash = statement_->state_hash;
      report_.stated_size = statement_->size;
    } else {
      statement_error_ = statement.status().message();
    }
    return MakeStore();
  }

  // (c) the checkpoint's log signature and every other signature line.
  void CheckCheckpoint() {
    const Roster& roster = *roster_;
    auto opened = OpenCheckpoint(checkpoint_note_, roster);
    if (!opened.ok()) {
      Fail(AuditCheckId::kCheckpoint, "the checkpoint: " + opened.status().message());
      return;
    }
    opened_ = std::move(opened).value();
    report_.origin = opened_->checkpoint.origin;
    report_.tree_size = opened_->checkpoint.size;
    report_.root = opened_->checkpoint.root;
    report_.log_key_label = opened_->log->label;
    std::vector<Cosigner> cosigners = VerifiedCosigners(checkpoint_note_, *opened_, roster);
    for (const Cosigner& c : cosigners) {
      report_.cosigners.push_back(
          AuditCosigner{c.entry->signing_key, c.entry->label, c.entry->district, c.entry->role, c.timestamp});
    }
    // Every line must be the log's signature or a cosignature of a roster entry: name
    // the first that is neither.
    auto note = ParseNote(checkpoint_note_);  // parsed by OpenCheckpoint already
    if (!note.ok()) return;
    std::map<std::string, const RosterEntry*> witnesses;
    for (const RosterEntry& entry : roster.entries()) witnesses.emplace(WitnessName(report_.origin, entry.signing_key), &entry);
    uint64_t log_lines = 0;
    std::string first_bad;
    for (const NoteSignature& signature : note->signatures) {
      if (signature.name == report_.origin) {
        bool verifies = false;
        for (const RosterEntry& entry : roster.entries()) {
          if (entry.role != Role::kServer) continue;
          auto key = NoteVerifierKey::Ed25519(report_.origin, entry.signing_key);
          if (!key.ok() || key->key_id != signature.key_id) continue;
          verifies = VerifyNote(Note{note->text, {signature}}, *key).ok();
          if (verifies) break;
        }
        if (verifies) {
          ++log_lines;
        } else if (first_bad.empty()) {
          first_bad = "a signature line under the log's name does not verify by a server key the roster names";
        }
        continue;
      }
      auto witness = witnesses.find(signature.name);
      if (witness == witnesses.end()) {
        if (first_bad.empty()) {
          first_bad = "the line by '" + signature.name + "' is neither the log's signature nor a roster entry's cosignature";
        }
        continue;
      }
      auto key = NoteVerifierKey::Cosigner(signature.name, witness->second->signing_key);
      if (key.ok() && VerifyCosignature(note->text, signature, *key).ok()) continue;
      if (first_bad.empty()) {
        const RosterEntry& entry = *witness->second;
        first_bad = "the cosignature of " + (entry.label.empty() ? Hex16(entry.signing_key) : entry.label) +
                    (entry.district.empty() ? "" : " (" + entry.district + ")") + " does not verify";
      }
    }
    uint64_t lines = note->signatures.size();
    report_.other_signature_lines = lines - log_lines - std::min<uint64_t>(lines - log_lines, cosigners.size());
    if (report_.other_signature_lines > 0) {
      if (first_bad.empty()) first_bad = "a witness cosigned more than once";
      Fail(AuditCheckId::kCheckpoint, std::to_string(report_.other_signature_lines) + " signature line" +
                                          Plural(report_.other_signature_lines) +
                                          " of the checkpoint are not valid: " + first_bad);
      return;
    }
    Pass(AuditCheckId::kCheckpoint,
         "signed by the log key of " + (opened_->log->label.empty() ? std::string("the server") : opened_->log->label) +
             " (" + report_.origin + ", size " + std::to_string(report_.tree_size) + "); " +
             std::to_string(cosigners.size()) + " cosignature" + Plural(cosigners.size()) +
             " by roster entries verify, no other lines");
  }

  Status MakeStore() {
    SAMSYNC_ASSIGN_OR_RETURN(TempFolder folder, TempFolder::Make(options_.temp_dir));
    temp_.emplace(std::move(folder));
    std::string key = temp_->path() + "/key";
    SAMSYNC_RETURN_IF_ERROR(CreateKeyFile(key));
    CreateOptions create;
    create.city_wide = true;
    const Clock& clock = options_.clock != nullptr ? *options_.clock : system_clock_;
    auto store = Store::Create(temp_->path() + "/store", KeySource::KeyFile(key), std::move(create), clock);
    if (!store.ok()) return store.status().WithContext("cannot make the temporary store for the audit");
    store_ = std::move(store).value();
    Status installed = store_->InstallRoster(roster_->signed_bytes());
    if (!installed.ok()) return installed.WithContext("cannot install the roster in the temporary store");
    commits_active_ = true;
    return Status::Ok();
  }

  // A chunk of commits from the pipeline (while no commit failed): checked and merged.
  Status TakeChunk(ReadChunk chunk) {
    if (!commits_active_) return Status::Ok();
    chunk_ = std::move(chunk.commits);
    chunk_leaf_ = std::move(chunk.leaves);
    SAMSYNC_RETURN_IF_ERROR(FlushChunk());
    if (chunk.undecodable && commits_active_) {
      std::string reason = chunk.undecodable->reason;
      CommitFailed(std::move(reason), std::move(*chunk.undecodable));
    }
    return Status::Ok();
  }

  void CommitFailed(std::string reason, AuditFailure failure) {
    commits_active_ = false;
    if (failure.author) failure.author_name = AuthorName(*failure.author);
    Fail(AuditCheckId::kCommits, std::move(reason), std::move(failure));
  }

  // The commit's place in its device's chain, and what it saw, against the log so far:
  // an import would park a commit whose predecessors are missing, where the log must
  // hold them before it. Empty when it fits.
  std::string PlaceProblem(const Commit& commit, uint64_t leaf) {
    auto seen = devices_.find(commit.author());
    uint64_t last = seen == devices_.end() ? 0 : seen->second.seq;
    std::string before = seen == devices_.end() ? std::string("none of that device's commits")
                                                : "its seq " + std::to_string(last) + " (leaf " +
                                                      std::to_string(seen->second.leaf) + ")";
    if (seen != devices_.end() && commit.id() == seen->second.id) {
      return "it repeats leaf " + std::to_string(seen->second.leaf) + ": a commit is in the log twice";
    }
    if (commit.seq() <= last) {
      return "it is seq " + std::to_string(commit.seq()) + " of its device, after " + before +
             ": the log repeats or reorders that device's commits";
    }
    if (commit.seq() > last + 1) {
      return "it is seq " + std::to_string(commit.seq()) + " of its device, but the log holds " + before +
             " before it: seq " + std::to_string(last + 1) +
             (commit.seq() > last + 2 ? " to " + std::to_string(commit.seq() - 1) : "") +
             " missing (dropped, or out of order)";
    }
    Hash expected = seen == devices_.end() ? Hash() : seen->second.id;
    if (commit.parent() != expected) {
      return "it does not follow its device's previous commit in the log (leaf " +
             std::to_string(seen == devices_.end() ? 0 : seen->second.leaf) + ", commit " + Hex16(expected) +
             "): its parent is " + Hex16(commit.parent()) + " (the device's history was rewritten)";
    }
    for (const auto& [device, seq] : commit.seen()) {
      auto held = devices_.find(device);
      if (held == devices_.end() || held->second.seq < seq) {
        return "it says its author had seen seq " + std::to_string(seq) + " of device " + Hex16(device) +
               ", which the log holds only later or not at all";
      }
    }
    devices_[commit.author()] = DeviceSeen{commit.seq(), commit.id(), leaf};
    return "";
  }

  // (d) for the chunk: places first, then the import (every other check and the
  // merge) of the commits before the first misplaced one, so the failure reported is
  // the earliest in leaf order.
  Status FlushChunk() {
    if (chunk_.empty() || !commits_active_) {
      chunk_.clear();
      chunk_leaf_.clear();
      return Status::Ok();
    }
    size_t fits = chunk_.size();
    std::string misplaced;
    std::vector<ChunkEntry> entries;
    entries.reserve(chunk_.size());
    for (size_t i = 0; i < chunk_.size(); ++i) {
      entries.push_back(ChunkEntry{chunk_leaf_[i], chunk_[i].id(), chunk_[i].author(), chunk_[i].seq()});
      if (fits == chunk_.size()) {
        misplaced = PlaceProblem(chunk_[i], chunk_leaf_[i]);
        if (!misplaced.empty()) fits = i;
      }
    }
    size_t next = 0;
    Hash refused;
    auto imported = store_->ImportCommits(
        [&]() -> Result<std::optional<Commit>> {
          if (next == fits) return std::optional<Commit>();
          return std::optional<Commit>(std::move(chunk_[next++]));
        },
        &refused);
    chunk_.clear();
    chunk_leaf_.clear();
    if (!imported.ok()) {
      if (refused.IsZero()) return imported.status().WithContext("the temporary store");
      for (const ChunkEntry& entry : entries) {
        if (entry.id != refused) continue;
        CommitFailed(WithoutCommitName(imported.status().message(), entry.id), CommitFailure(entry));
        return Status::Ok();
      }
      CommitFailed(imported.status().message(), AuditFailure{});
      return Status::Ok();
    }
    const ImportReport& r = *imported;
    report_.ops += r.ops;
    checked_ += r.applied;
    if (r.applied != fits || r.duplicates != 0 || r.waiting != 0 || r.discarded != 0) {
      AuditFailure failure;
      failure.leaf = entries.front().leaf;
      CommitFailed("of the " + std::to_string(fits) + " commits from leaf " + std::to_string(entries.front().leaf) +
                       ", " + std::to_string(r.applied) + " merged, " + std::to_string(r.duplicates) +
                       " were duplicates, " + std::to_string(r.waiting) + " wait for others, " +
                       std::to_string(r.discarded) + " were discarded",
                   std::move(failure));
      return Status::Ok();
    }
    if (fits < entries.size()) {
      CommitFailed(misplaced, CommitFailure(entries[fits]));
      return Status::Ok();
    }
    if (options_.progress) {
      options_.progress(AuditProgress{checked_, report_.tree_size, report_.ops, Elapsed()});
    }
    return Status::Ok();
  }

  void FinishCommits(bool format_ok) {
    AuditCheck& check = Check(AuditCheckId::kCommits);
    if (check.outcome != AuditOutcome::kNotRun || !commits_active_) return;
    if (!format_ok) {
      NotRun(AuditCheckId::kCommits, std::to_string(checked_) + " commits passed before the bundle's format failed");
      return;
    }
    Pass(AuditCheckId::kCommits,
         std::to_string(checked_) + " commit" + Plural(checked_) + " (" + std::to_string(report_.ops) + " ops) of " +
             std::to_string(devices_.size()) + " device" + Plural(devices_.size()) +
             ": signature, chain, sequence, seen, clock and the rules of roster version " +
             std::to_string(report_.roster_version) + ", merged in leaf order");
  }

  // (e) the Merkle root of the commit ids, and their count.
  void FinishTree(bool format_ok) {
    if (!format_ok) {
      NotRun(AuditCheckId::kTree, "the bundle's format failed: its leaves are not all known");
      return;
    }
    if (!opened_) {
      NotRun(AuditCheckId::kTree, "no checkpoint signed by the log key to compare with");
      return;
    }
    const Checkpoint& checkpoint = opened_->checkpoint;
    if (leaves_ != checkpoint.size) {
      AuditFailure failure;
      Fail(AuditCheckId::kTree, "the bundle holds " + std::to_string(leaves_) + " commits, the checkpoint's tree " +
                                    std::to_string(checkpoint.size) + " leaves",
           std::move(failure));
      return;
    }
    if (report_.computed_root != checkpoint.root) {
      Fail(AuditCheckId::kTree, "the Merkle root of the bundle's " + std::to_string(leaves_) + " commits is " +
                                    report_.computed_root.ToHex() + ", the checkpoint's " + checkpoint.root.ToHex() +
                                    ": the commits or their order differ from the log the server signed");
      return;
    }
    Pass(AuditCheckId::kTree, "the RFC 6962 root of the " + std::to_string(leaves_) + " commit ids equals the checkpoint's (" +
                                  checkpoint.root.ToHex().substr(0, 16) + "…)");
  }

  // (f) the state statement against the state derived from the commits.
  Status FinishState(bool format_ok) {
    if (Check(AuditCheckId::kState).outcome != AuditOutcome::kNotRun || !roster_ || !rosters_ok_) return Status::Ok();
    if (!statement_) {
      Fail(AuditCheckId::kState, "the state statement: " + statement_error_);
      return Status::Ok();
    }
    if (opened_ && statement_->size != opened_->checkpoint.size) {
      Fail(AuditCheckId::kState, "the state statement is at size " + std::to_string(statement_->size) +
                                     ", the checkpoint at " + std::to_string(opened_->checkpoint.size));
      return Status::Ok();
    }
    if (!format_ok || Check(AuditCheckId::kCommits).outcome != AuditOutcome::kPassed || !store_) {
      NotRun(AuditCheckId::kState, "needs every commit merged (commits did not pass)");
      return Status::Ok();
    }
    SAMSYNC_ASSIGN_OR_RETURN(ReplicaSummary summary, store_->Summary());
    report_.state_hash = summary.state_hash;
    if (summary.state_hash != statement_->state_hash) {
      Fail(AuditCheckId::kState, "the state derived from the commits has hash " + summary.state_hash.ToHex() +
                                     ", the state statement says " + statement_->state_hash.ToHex());
      return Status::Ok();
    }
    Pass(AuditCheckId::kState, "signed by the log key at size " + std::to_string(statement_->size) +
                                   "; the state re-derived from the commits (" + std::to_string(summary.records) +
                                   " records, " + std::to_string(summary.conflicts) +
                                   " conflicts) has its hash " + summary.state_hash.ToHex().substr(0, 16) + "…");
    return Status::Ok();
  }

  const AuditOptions& options_;
  const std::chrono::steady_clock::time_point started_;
  SystemClock system_clock_;
  AuditReport report_;
  // Rosters
  std::optional<Roster> roster_;
  bool rosters_ok_ = true;
  uint64_t first_roster_version_ = 0;
  // Checkpoint and statement
  std::string checkpoint_note_, statement_note_;
  std::optional<OpenedCheckpoint> opened_;  // points into *roster_
  std::optional<StateStatement> statement_;
  std::string statement_error_;
  // Commits: declared so that the store closes before its folder is removed.
  std::optional<TempFolder> temp_;
  std::unique_ptr<Store> store_;
  bool commits_active_ = false;  // the store is up and no commit failed
  std::vector<Commit> chunk_;
  std::vector<uint64_t> chunk_leaf_;
  std::map<PublicKey, DeviceSeen> devices_;
  uint64_t checked_ = 0;
  uint64_t leaves_ = 0;  // commit entries read
};

}  // namespace

std::string_view AuditCheckName(AuditCheckId check) {
  switch (check) {
    case AuditCheckId::kFormat: return "format";
    case AuditCheckId::kRosters: return "rosters";
    case AuditCheckId::kCheckpoint: return "checkpoint";
    case AuditCheckId::kCommits: return "commits";
    case AuditCheckId::kTree: return "tree";
    case AuditCheckId::kState: return "state";
  }
  return "unknown";
}

std::string_view AuditOutcomeName(AuditOutcome outcome) {
  switch (outcome) {
    case AuditOutcome::kPassed: return "passed";
    case AuditOutcome::kFailed: return "failed";
    case AuditOutcome::kNotRun: return "not run";
  }
  return "unknown";
}

std::string AuditFailure::Describe() const {
  std::string text(AuditCheckName(check));
  text += ": ";
  if (leaf) text += "leaf " + std::to_string(*leaf) + ", ";
  if (commit) text += "commit " + Hex16(*commit) + ", ";
  if (author) {
    text += "device " + Hex16(*author) + (seq != 0 ? " seq " + std::to_string(seq) : "") +
            (author_name.empty() ? "" : " (" + author_name + ")") + ", ";
  }
  if (leaf || commit || author) text.replace(text.size() - 2, 2, ": ");
  return text + reason;
}

Result<AuditReport> VerifyAuditBundle(const std::string& path, const AuditOptions& options) {
  if (options.root_key.IsZero()) return Status::Invalid("an audit needs the city's root key (the trust anchor)");
  if (options.chunk_commits == 0) return Status::Invalid("an audit's chunks need at least one commit");
  Verifier verifier(path, options);
  auto reader = audit_format::Reader::Open(path);
  if (!reader.ok()) {
    // An audit header that is malformed: the format fails, nothing else can run.
    if (reader.status().code() == Code::kCorruption) return verifier.MalformedHeader(reader.status().message());
    return reader.status();
  }
  return verifier.Run(std::move(reader).value());
}

}  // namespace samsync
