// Audit bundles: the writer, the head of a bundle, and the comparison of checkpoints
// (contract in audit.h; the format in schema/audit.capnp). The reader is
// audit_reader.cc, the verifier audit_verify.cc.
#include "samsync/audit.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/exception.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <utility>

#include "audit_reader.h"
#include "file_io.h"
#include "samsync/schema/audit.capnp.h"
#include "samsync/tlog.h"
#include "samsync/witness.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using audit_format::EntryReaderOptions;
using audit_format::kMaxEntryWords;

constexpr size_t kWriteBufferBytes = size_t{256} << 10;

using file_io::Errno;
using file_io::SyncFolder;
using file_io::WriteAll;

std::span<const uint8_t> AsSpan(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.size()};
}

kj::Array<capnp::word> CopyToWords(std::span<const uint8_t> bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  if (words.size() != 0) std::memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
  return words;
}

}  // namespace

// ---------------------------------------------------------------------------------
// Writer

struct AuditBundleWriter::State {
  enum class Stage { kRosters, kCommits, kDone };
  std::string path;     // where the finished bundle goes
  std::string partial;  // where it is written until then; this State created it
  int fd = -1;
  Stage stage = Stage::kRosters;
  uint64_t rosters = 0;
  uint64_t commits = 0;
  uint64_t bytes = 0;
  std::vector<uint8_t> buffer;
  bool spent = false;     // finished, or failed while writing: every call fails
  bool finished = false;  // renamed to `path`

  ~State() {
    if (fd >= 0) ::close(fd);
    if (!finished) ::unlink(partial.c_str());
  }

  Status Spent() const { return Status::Invalid("the writer of " + path + " is finished or has failed"); }

  Status Append(kj::ArrayPtr<const capnp::word> entry) {
    std::span<const uint8_t> data = AsSpan(entry);
    bytes += data.size();
    if (buffer.size() + data.size() > kWriteBufferBytes) {
      SAMSYNC_RETURN_IF_ERROR(Flush());
      if (data.size() >= kWriteBufferBytes) return WriteAll(fd, data, path);
    }
    buffer.insert(buffer.end(), data.begin(), data.end());
    return Status::Ok();
  }

  // Appends an entry; a failure to write spends the writer.
  Status Write(kj::ArrayPtr<const capnp::word> entry) {
    if (entry.size() > kMaxEntryWords) return Status::Invalid("an entry of " + path + " would exceed 256 MiB");
    Status appended = Append(entry);
    if (!appended.ok()) spent = true;
    return appended;
  }

  Status Flush() {
    Status written = WriteAll(fd, buffer, path);
    buffer.clear();
    return written;
  }
};

AuditBundleWriter::AuditBundleWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
AuditBundleWriter::~AuditBundleWriter() = default;
AuditBundleWriter::AuditBundleWriter(AuditBundleWriter&&) noexcept = default;
AuditBundleWriter& AuditBundleWriter::operator=(AuditBundleWriter&&) noexcept = default;

Result<AuditBundleWriter> AuditBundleWriter::Create(const std::string& path, std::string_view server,
                                                    int64_t fetched_ms) {
  SAMSYNC_ASSIGN_OR_RETURN(int fd, file_io::CreatePartial(path, "an audit bundle", "fetch"));
  auto state = std::make_unique<State>();
  state->path = path;
  state->partial = path + ".partial";
  state->fd = fd;
  state->buffer.reserve(kWriteBufferBytes);

  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<schema::AuditEntry>().initHeader();
  header.setMagic(audit_format::kMagic);
  header.setFormatVersion(kAuditFormatVersion);
  header.setServer(capnp::Text::Reader(server.data(), server.size()));
  header.setFetchedMs(fetched_ms);
  SAMSYNC_RETURN_IF_ERROR(state->Write(capnp::messageToFlatArray(message)));
  return AuditBundleWriter(std::move(state));
}

Status AuditBundleWriter::AddRoster(std::span<const uint8_t> signed_roster) {
  State& s = *state_;
  if (s.spent) return s.Spent();
  if (s.stage != State::Stage::kRosters) return Status::Invalid("a roster goes before the checkpoint in " + s.path);
  if (signed_roster.empty() || signed_roster.size() % sizeof(capnp::word) != 0 ||
      signed_roster.size() > kMaxRosterBytes) {
    return Status::Invalid("a roster for " + s.path + " is not a signed roster (" +
                           std::to_string(signed_roster.size()) + " bytes)");
  }
  kj::Array<capnp::word> entry;
  auto error = kj::runCatchingExceptions([&] {
    kj::Array<capnp::word> words = CopyToWords(signed_roster);
    capnp::FlatArrayMessageReader source(words, EntryReaderOptions());
    auto roster = source.getRoot<schema::SignedRoster>();
    capnp::MallocMessageBuilder message(static_cast<unsigned>(roster.totalSize().wordCount + 8));
    message.initRoot<schema::AuditEntry>().setRoster(roster);
    entry = capnp::messageToFlatArray(message);
  });
  if (error != nullptr) return Status::Invalid("a roster for " + s.path + " does not decode as a signed roster");
  SAMSYNC_RETURN_IF_ERROR(s.Write(entry));
  ++s.rosters;
  return Status::Ok();
}

Status AuditBundleWriter::SetCheckpoint(std::string_view checkpoint_note, std::string_view state_statement_note) {
  State& s = *state_;
  if (s.spent) return s.Spent();
  if (s.stage != State::Stage::kRosters) return Status::Invalid("the checkpoint of " + s.path + " was set already");
  if (s.rosters == 0) return Status::Invalid("the rosters go before the checkpoint in " + s.path);
  for (std::string_view note : {checkpoint_note, state_statement_note}) {
    if (note.empty() || note.size() > kMaxNoteBytes || note.find('\0') != std::string_view::npos) {
      return Status::Invalid("the checkpoint and state statement for " + s.path +
                             " must be signed notes (text, at most 1 MiB)");
    }
  }
  for (int which = 0; which < 2; ++which) {
    std::string_view text = which == 0 ? checkpoint_note : state_statement_note;
    capnp::MallocMessageBuilder message(static_cast<unsigned>(text.size() / sizeof(capnp::word) + 16));
    auto root = message.initRoot<schema::AuditEntry>();
    capnp::Text::Reader reader(text.data(), text.size());
    if (which == 0) {
      root.setCheckpoint(reader);
    } else {
      root.setStatement(reader);
    }
    SAMSYNC_RETURN_IF_ERROR(s.Write(capnp::messageToFlatArray(message)));
  }
  s.stage = State::Stage::kCommits;
  return Status::Ok();
}

Status AuditBundleWriter::AddCommit(std::span<const uint8_t> signed_commit) {
  State& s = *state_;
  if (s.spent) return s.Spent();
  if (s.stage != State::Stage::kCommits) return Status::Invalid("the commits go after the checkpoint in " + s.path);
  if (signed_commit.empty() || signed_commit.size() % sizeof(capnp::word) != 0 ||
      signed_commit.size() > kMaxAuditEntryBytes) {
    return Status::Invalid("commit " + std::to_string(s.commits) + " for " + s.path + " is not a signed commit");
  }
  kj::Array<capnp::word> entry;
  auto error = kj::runCatchingExceptions([&] {
    kj::Array<capnp::word> words = CopyToWords(signed_commit);
    capnp::FlatArrayMessageReader source(words, EntryReaderOptions());
    auto commit = source.getRoot<schema::SignedCommit>();
    // One first segment large enough for the whole entry: one segment on the file.
    uint64_t size_hint = std::min<uint64_t>(commit.totalSize().wordCount + 8, kMaxEntryWords);
    capnp::MallocMessageBuilder message(static_cast<unsigned>(size_hint));
    message.initRoot<schema::AuditEntry>().setCommit(commit);
    entry = capnp::messageToFlatArray(message);
  });
  if (error != nullptr) {
    return Status::Invalid("commit " + std::to_string(s.commits) + " for " + s.path + " does not decode as a signed commit");
  }
  SAMSYNC_RETURN_IF_ERROR(s.Write(entry));
  ++s.commits;
  return Status::Ok();
}

Status AuditBundleWriter::Finish() {
  State& s = *state_;
  if (s.spent) return s.Spent();
  if (s.stage != State::Stage::kCommits) return Status::Invalid("an audit bundle needs its rosters and checkpoint");
  s.spent = true;
  capnp::MallocMessageBuilder message;
  message.initRoot<schema::AuditEntry>().initEnd().setCommitCount(s.commits);
  SAMSYNC_RETURN_IF_ERROR(s.Append(capnp::messageToFlatArray(message)));
  SAMSYNC_RETURN_IF_ERROR(s.Flush());
  if (::fsync(s.fd) != 0) return Status::Io("cannot sync " + s.partial + ": " + Errno());
  int fd = std::exchange(s.fd, -1);
  if (::close(fd) != 0) return Status::Io("cannot write " + s.partial + ": " + Errno());
  SAMSYNC_RETURN_IF_ERROR(file_io::RenameNoReplace(s.partial, s.path, "an audit bundle"));
  s.finished = true;
  s.stage = State::Stage::kDone;
  fs::path folder = fs::path(s.path).parent_path();
  return SyncFolder(folder.empty() ? fs::path(".") : folder);
}

uint64_t AuditBundleWriter::commit_count() const { return state_->commits; }
uint64_t AuditBundleWriter::bytes_written() const { return state_->bytes; }

// ---------------------------------------------------------------------------------
// Heads and comparisons

Result<bool> IsAuditBundle(const std::string& path) {
  bool magic = false;
  auto reader = audit_format::Reader::Open(path, &magic);
  if (reader.ok()) return true;
  Code code = reader.status().code();
  if (code == Code::kNotFound || code == Code::kIoError) return reader.status();
  return magic;
}

Result<AuditBundleHead> ReadAuditBundleHead(const std::string& path, const PublicKey& root_key) {
  SAMSYNC_ASSIGN_OR_RETURN(audit_format::Reader reader, audit_format::Reader::Open(path));
  AuditBundleHead head;
  head.server = reader.server();
  head.fetched_ms = reader.fetched_ms();
  std::optional<Roster> latest;
  while (true) {
    SAMSYNC_ASSIGN_OR_RETURN(auto entry, reader.Next());
    if (!entry || entry->kind == audit_format::Entry::Kind::kCommit || entry->kind == audit_format::Entry::Kind::kEnd) {
      return Status::Corruption(path + ": the audit bundle has no state statement");
    }
    if (entry->kind == audit_format::Entry::Kind::kRoster) {
      ++head.rosters;
      auto roster = Roster::Open(entry->bytes, &root_key);
      std::string which = "roster " + std::to_string(head.rosters) + " of " + path;
      if (!roster.ok()) return roster.status().WithContext(which);
      if (latest) SAMSYNC_RETURN_IF_ERROR(latest->CheckReplacement(*roster).WithContext(which));
      latest = std::move(roster).value();
    } else if (entry->kind == audit_format::Entry::Kind::kCheckpoint) {
      head.checkpoint_note = std::move(entry->text);
    } else {
      head.statement_note = std::move(entry->text);
      break;
    }
  }
  head.roster = std::move(*latest);  // the reader requires a roster before the checkpoint
  return head;
}

namespace {

// The first `size` leaves of the bundle at `path`, as stored complete subtrees.
Result<MemoryMerkleNodes> LeavesOf(const std::string& path, uint64_t size) {
  SAMSYNC_ASSIGN_OR_RETURN(audit_format::Reader reader, audit_format::Reader::Open(path));
  MemoryMerkleNodes nodes;
  while (nodes.size() < size) {
    SAMSYNC_ASSIGN_OR_RETURN(auto entry, reader.Next());
    if (!entry || entry->kind == audit_format::Entry::Kind::kEnd) {
      return Status::Invalid("the audit bundle " + path + " holds " + std::to_string(nodes.size()) +
                             " leaves, fewer than the larger checkpoint's " + std::to_string(size) +
                             ": give an audit bundle holding the larger checkpoint's leaves");
    }
    if (entry->kind == audit_format::Entry::Kind::kCommit) nodes.Append(MerkleLeafHash(entry->id.span()));
  }
  return nodes;
}

std::string Described(const Checkpoint& c) {
  return "size " + std::to_string(c.size) + ", root " + c.root.ToHex();
}

}  // namespace

Result<CheckpointComparison> CompareCheckpoints(std::string_view a_note, std::string_view b_note, const Roster& roster,
                                                const std::string& leaves_bundle) {
  auto a = OpenCheckpoint(a_note, roster);
  if (!a.ok()) return a.status().WithContext("checkpoint A");
  auto b = OpenCheckpoint(b_note, roster);
  if (!b.ok()) return b.status().WithContext("checkpoint B");
  CheckpointComparison out;
  out.origin = a->checkpoint.origin;  // both are the roster's city's log (OpenCheckpoint)
  out.a = a->checkpoint;
  out.b = b->checkpoint;
  out.a_note = std::string(a_note);
  out.b_note = std::string(b_note);
  if (out.a.size == out.b.size) {
    out.consistent = out.a.root == out.b.root;
    out.explanation = out.consistent ? "both checkpoints sign the same tree (" + Described(out.a) + ")"
                                     : "the log key signed two different trees of " + std::to_string(out.a.size) +
                                           " leaves: root " + out.a.root.ToHex() + " and root " + out.b.root.ToHex();
    return out;
  }
  bool a_smaller = out.a.size < out.b.size;
  const Checkpoint& small = a_smaller ? out.a : out.b;
  const Checkpoint& large = a_smaller ? out.b : out.a;
  const std::string small_name = a_smaller ? "A" : "B";
  const std::string large_name = a_smaller ? "B" : "A";
  if (leaves_bundle.empty()) {
    return Status::Invalid("the checkpoints are of different sizes (" + std::to_string(small.size) + " and " +
                           std::to_string(large.size) +
                           "): give an audit bundle holding the larger checkpoint's leaves (--bundle) to prove "
                           "one extends the other");
  }
  SAMSYNC_ASSIGN_OR_RETURN(MemoryMerkleNodes nodes, LeavesOf(leaves_bundle, large.size));
  SAMSYNC_ASSIGN_OR_RETURN(Hash large_root, MerkleRoot(nodes, large.size));
  if (large_root != large.root) {
    return Status::Invalid("the first " + std::to_string(large.size) + " leaves of " + leaves_bundle +
                           " have root " + large_root.ToHex() + ", not checkpoint " + large_name +
                           "'s: the bundle is not of that history; give an audit bundle holding the larger "
                           "checkpoint's leaves");
  }
  if (small.size == 0) {
    out.consistent = true;
    out.explanation = "every log extends the empty one";
    return out;
  }
  SAMSYNC_ASSIGN_OR_RETURN(out.proof, MerkleConsistencyProof(nodes, small.size, large.size));
  Status consistent = VerifyConsistency(small.size, large.size, small.root, large.root, out.proof);
  out.consistent = consistent.ok();
  if (out.consistent) {
    out.explanation = "checkpoint " + large_name + " (" + std::to_string(large.size) + " leaves) extends checkpoint " +
                      small_name + " (" + std::to_string(small.size) + "): the consistency proof of " +
                      std::to_string(out.proof.size()) + " hashes, from the bundle's leaves, verifies";
  } else {
    SAMSYNC_ASSIGN_OR_RETURN(Hash prefix_root, MerkleRoot(nodes, small.size));
    out.explanation = "the log key signed two histories: checkpoint " + small_name + " says the first " +
                      std::to_string(small.size) + " leaves have root " + small.root.ToHex() + ", but in the tree of " +
                      "checkpoint " + large_name + " they have root " + prefix_root.ToHex() + " (" +
                      consistent.message() + ")";
  }
  return out;
}

}  // namespace samsync
