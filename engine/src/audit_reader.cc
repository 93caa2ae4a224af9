// Reading an audit bundle (audit_reader.h; the format in schema/audit.capnp).
#include "audit_reader.h"

#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/exception.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "samsync/schema/audit.capnp.h"

namespace samsync::audit_format {
namespace {

constexpr uint64_t kTraversalWords = uint64_t{64} << 20;
constexpr size_t kReadBufferBytes = size_t{64} << 10;

std::string Errno() { return std::strerror(errno); }

uint32_t ReadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

std::span<const uint8_t> AsSpan(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.size()};
}

// The signed bytes of a roster as Roster::Open reads them: a one-segment flat message
// (segment table, then the canonical SignedRoster).
std::vector<uint8_t> SignedRosterBytes(schema::SignedRoster::Reader roster) {
  kj::Array<capnp::word> canonical = capnp::canonicalize(roster);
  auto words = static_cast<uint32_t>(canonical.size());
  std::vector<uint8_t> out(8);
  for (size_t i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(words >> (8 * i));
  auto body = AsSpan(canonical);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

}  // namespace

capnp::ReaderOptions EntryReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kTraversalWords;
  options.nestingLimit = 16;
  return options;
}

// One framed message as read from the file.
struct Reader::RawEntry {
  kj::Array<capnp::word> words;
  std::vector<kj::ArrayPtr<const capnp::word>> segments;
};

Result<Reader> Reader::Open(const std::string& path, bool* magic) {
  Reader reader;
  reader.path_ = path;
  reader.buffer_.resize(kReadBufferBytes);
  reader.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader.fd_ < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::Io("cannot read " + path + ": " + Errno());
  }
  Status not_bundle = Status::Invalid(path + " is not a samsync audit bundle");
  RawEntry entry;
  auto outcome = reader.ReadEntry(entry);
  if (!outcome.ok()) return outcome.status().code() == Code::kCorruption ? not_bundle : outcome.status();
  if (*outcome == Outcome::kEndOfFile) return Status::Invalid(path + " is empty: not a samsync audit bundle");
  if (*outcome == Outcome::kCutShort) {
    return Status::Invalid(path + " ends inside its first entry: not a whole samsync audit bundle");
  }
  Status taken = not_bundle;
  auto error = kj::runCatchingExceptions([&] {
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(entry.segments.data(), entry.segments.size()),
                                             EntryReaderOptions());
    auto root = message.getRoot<schema::AuditEntry>();
    if (!root.isHeader() || root.getHeader().getMagic() != kMagic) return;
    if (magic != nullptr) *magic = true;
    auto header = root.getHeader();
    uint32_t version = header.getFormatVersion();
    if (version > kAuditFormatVersion) {
      taken = Status::Invalid(path + " is an audit bundle of format version " + std::to_string(version) +
                              "; this samsync reads version " + std::to_string(kAuditFormatVersion) +
                              " (a newer samsync wrote it)");
    } else if (version == 0) {
      taken = Status::Corruption(path + ": the audit bundle's header gives format version 0");
    } else {
      reader.server_ = std::string(header.getServer().begin(), header.getServer().size());
      reader.fetched_ms_ = header.getFetchedMs();
      taken = Status::Ok();
    }
  });
  if (error != nullptr) return not_bundle;
  SAMSYNC_RETURN_IF_ERROR(taken);
  return reader;
}

Reader::Reader(Reader&& other) noexcept { *this = std::move(other); }

Reader& Reader::operator=(Reader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    start_ = other.start_;
    end_ = other.end_;
    server_ = std::move(other.server_);
    fetched_ms_ = other.fetched_ms_;
    stage_ = other.stage_;
    rosters_ = other.rosters_;
    commits_ = other.commits_;
    bytes_ = other.bytes_;
    failed_ = std::move(other.failed_);
  }
  return *this;
}

Reader::~Reader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::optional<Entry>> Reader::Next() {
  if (failed_) return *failed_;
  if (stage_ == Stage::kDone) return std::optional<Entry>();
  auto next = ReadNext();
  if (!next.ok()) failed_ = next.status();
  return next;
}

Result<size_t> Reader::Read(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (start_ == end_) {
      bool direct = n - done >= buffer_.size();
      uint8_t* target = direct ? out + done : buffer_.data();
      size_t want = direct ? n - done : buffer_.size();
      ssize_t got = ::read(fd_, target, want);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Status::Io("cannot read " + path_ + ": " + Errno());
      if (got == 0) break;
      bytes_ += static_cast<uint64_t>(got);
      if (direct) {
        done += static_cast<size_t>(got);
        continue;
      }
      start_ = 0;
      end_ = static_cast<size_t>(got);
    }
    size_t take = std::min(end_ - start_, n - done);
    std::memcpy(out + done, buffer_.data() + start_, take);
    start_ += take;
    done += take;
  }
  return done;
}

// Reads one framed message; a framing beyond the bounds is a kCorruption whose message
// is the bare reason, for the caller to place.
Result<Reader::Outcome> Reader::ReadEntry(RawEntry& entry) {
  uint8_t first[4];
  SAMSYNC_ASSIGN_OR_RETURN(size_t got, Read(first, sizeof first));
  if (got == 0) return Outcome::kEndOfFile;
  if (got < sizeof first) return Outcome::kCutShort;
  uint64_t segment_count = uint64_t{ReadLe32(first)} + 1;
  if (segment_count > kMaxAuditEntrySegments) {
    return Status::Corruption("declares " + std::to_string(segment_count) + " segments (at most " +
                              std::to_string(kMaxAuditEntrySegments) + ")");
  }
  size_t framing_size = (4 + 4 * static_cast<size_t>(segment_count) + 7) / 8 * 8;
  std::vector<uint8_t> framing(framing_size);
  std::memcpy(framing.data(), first, sizeof first);
  SAMSYNC_ASSIGN_OR_RETURN(got, Read(framing.data() + 4, framing_size - 4));
  if (got < framing_size - 4) return Outcome::kCutShort;
  uint64_t total_words = 0;
  for (size_t i = 0; i < segment_count; ++i) total_words += ReadLe32(framing.data() + 4 + 4 * i);
  if (total_words > kMaxEntryWords) {
    return Status::Corruption("declares " + std::to_string(total_words * sizeof(capnp::word)) +
                              " bytes (at most 256 MiB)");
  }
  for (size_t i = 4 + 4 * static_cast<size_t>(segment_count); i < framing_size; ++i) {
    if (framing[i] != 0) return Status::Corruption("has non-zero padding in its framing");
  }
  entry.words = kj::heapArray<capnp::word>(static_cast<size_t>(total_words));
  size_t body = entry.words.size() * sizeof(capnp::word);
  SAMSYNC_ASSIGN_OR_RETURN(got, Read(reinterpret_cast<uint8_t*>(entry.words.begin()), body));
  if (got < body) return Outcome::kCutShort;
  entry.segments.clear();
  size_t offset = 0;
  for (size_t i = 0; i < segment_count; ++i) {
    size_t size = ReadLe32(framing.data() + 4 + 4 * i);
    entry.segments.push_back(entry.words.slice(offset, offset + size).asConst());
    offset += size;
  }
  return Outcome::kEntry;
}

// "after the header", "after roster 2", "after commit 17": where the next entry stands.
std::string Reader::Where() const {
  switch (stage_) {
    case Stage::kHeader: return "after the header";
    case Stage::kRosters: return "after roster " + std::to_string(rosters_);
    case Stage::kStatement: return "after the checkpoint";
    case Stage::kCommits:
      return commits_ == 0 ? "after the state statement" : "after commit " + std::to_string(commits_);
    case Stage::kDone: return "after the end entry";
  }
  return "";
}

Status Reader::Corrupt(std::string_view what) const { return Status::Corruption(path_ + ": " + std::string(what)); }

Status Reader::CutShort(std::string_view how) const {
  return Corrupt("the audit bundle is cut short " + Where() + " (" + std::string(how) + ")");
}

Result<std::optional<Entry>> Reader::ReadNext() {
  RawEntry raw;
  auto outcome = ReadEntry(raw);
  if (!outcome.ok()) {
    if (outcome.status().code() != Code::kCorruption) return outcome.status();
    return Corrupt("the entry " + Where() + " " + outcome.status().message());
  }
  if (*outcome == Outcome::kEndOfFile) return CutShort("the file ends before its end entry");
  if (*outcome == Outcome::kCutShort) return CutShort("the file ends inside an entry");

  Entry entry;
  Status problem;
  auto error = kj::runCatchingExceptions([&] {
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(raw.segments.data(), raw.segments.size()),
                                             EntryReaderOptions());
    auto root = message.getRoot<schema::AuditEntry>();
    switch (root.which()) {
      case schema::AuditEntry::HEADER:
        problem = Corrupt("a second header stands " + Where());
        return;
      case schema::AuditEntry::ROSTER:
        entry.kind = Entry::Kind::kRoster;
        entry.bytes = SignedRosterBytes(root.getRoster());
        return;
      case schema::AuditEntry::CHECKPOINT:
        entry.kind = Entry::Kind::kCheckpoint;
        entry.text.assign(root.getCheckpoint().begin(), root.getCheckpoint().size());
        return;
      case schema::AuditEntry::STATEMENT:
        entry.kind = Entry::Kind::kStatement;
        entry.text.assign(root.getStatement().begin(), root.getStatement().size());
        return;
      case schema::AuditEntry::COMMIT: {
        entry.kind = Entry::Kind::kCommit;
        auto source = root.getCommit();
        auto inner = source.getCommit();
        entry.id = Sha256({inner.begin(), inner.size()});
        uint64_t size_hint = std::min<uint64_t>(source.totalSize().wordCount + 8, kMaxEntryWords);
        capnp::MallocMessageBuilder copy(static_cast<unsigned>(size_hint));
        copy.setRoot(source);
        kj::Array<capnp::word> flat = capnp::messageToFlatArray(copy);
        auto bytes = AsSpan(flat);
        entry.bytes.assign(bytes.begin(), bytes.end());
        return;
      }
      case schema::AuditEntry::END:
        entry.kind = Entry::Kind::kEnd;
        entry.count = root.getEnd().getCommitCount();
        return;
    }
    problem = Corrupt("the entry " + Where() + " is of a kind this samsync does not know");
  });
  if (error != nullptr) return Corrupt("the entry " + Where() + " does not decode");
  SAMSYNC_RETURN_IF_ERROR(problem);
  SAMSYNC_RETURN_IF_ERROR(Order(entry));
  if (entry.kind == Entry::Kind::kEnd) {
    uint8_t extra = 0;
    SAMSYNC_ASSIGN_OR_RETURN(size_t got, Read(&extra, 1));
    if (got != 0) return Corrupt("bytes follow the audit bundle's end entry");
  }
  return std::optional<Entry>(std::move(entry));
}

// Checks that `entry` may stand here (schema/audit.capnp: header, rosters,
// checkpoint, statement, commits, end) and moves on.
Status Reader::Order(const Entry& entry) {
  using Kind = Entry::Kind;
  auto misplaced = [&](std::string_view what, std::string_view expected) {
    return Corrupt("the entry " + Where() + " is " + std::string(what) + "; expected " + std::string(expected));
  };
  const char* what = "";
  switch (entry.kind) {
    case Kind::kRoster: what = "a roster"; break;
    case Kind::kCheckpoint: what = "a checkpoint"; break;
    case Kind::kStatement: what = "a state statement"; break;
    case Kind::kCommit: what = "a commit"; break;
    case Kind::kEnd: what = "the end entry"; break;
  }
  switch (stage_) {
    case Stage::kHeader:
      if (entry.kind != Kind::kRoster) return misplaced(what, "a roster");
      break;
    case Stage::kRosters:
      if (entry.kind != Kind::kRoster && entry.kind != Kind::kCheckpoint) {
        return misplaced(what, "a roster or the checkpoint");
      }
      break;
    case Stage::kStatement:
      if (entry.kind != Kind::kStatement) return misplaced(what, "the state statement");
      break;
    case Stage::kCommits:
      if (entry.kind != Kind::kCommit && entry.kind != Kind::kEnd) return misplaced(what, "a commit or the end entry");
      break;
    case Stage::kDone:
      return misplaced(what, "nothing");
  }
  switch (entry.kind) {
    case Kind::kRoster:
      ++rosters_;
      stage_ = Stage::kRosters;
      break;
    case Kind::kCheckpoint: stage_ = Stage::kStatement; break;
    case Kind::kStatement: stage_ = Stage::kCommits; break;
    case Kind::kCommit: ++commits_; break;
    case Kind::kEnd:
      if (entry.count != commits_) {
        return Corrupt("the audit bundle's end entry counts " + std::to_string(entry.count) + " commits, but it holds " +
                       std::to_string(commits_));
      }
      stage_ = Stage::kDone;
      break;
  }
  return Status::Ok();
}

}  // namespace samsync::audit_format
