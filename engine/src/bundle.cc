// Offline bundles: the writer and the streaming reader (contract in bundle.h; the
// format in schema/bundle.capnp and docs/formats.md "Bundles").
//
// The reader parses the stream framing by hand, so that it bounds every size before
// allocating and hashes exactly the bytes that were written; Cap'n Proto only ever
// sees one entry's segments at a time.
#include "samsync/bundle.h"

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
#include <vector>

#include "samsync/schema/bundle.capnp.h"
#include "file_io.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;

constexpr char kBundleMagic[] = "samsync-bundle";
constexpr uint64_t kMaxEntryWords = kMaxBundleEntryBytes / sizeof(capnp::word);
// As for commits (history.cc): bounds what a hostile entry can make a reader traverse.
constexpr uint64_t kTraversalWords = uint64_t{64} << 20;
constexpr size_t kWriteBufferBytes = size_t{256} << 10;
constexpr size_t kReadBufferBytes = size_t{64} << 10;

using file_io::Errno;
using file_io::SyncFolder;
using file_io::WriteAll;

capnp::ReaderOptions EntryReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kTraversalWords;
  options.nestingLimit = 16;
  return options;
}

std::span<const uint8_t> AsSpan(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.size()};
}

std::string ShortKey(const PublicKey& key) { return key.ToHex().substr(0, 16) + "…"; }

uint32_t ReadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// The end entry as a writer writes it: canonical (one segment, so its bytes are fixed
// by the count and the digest) and framed. The reader compares the end entry it reads
// with this, because no digest covers the end entry itself.
kj::Array<capnp::word> EncodeEnd(uint64_t commit_count, const Hash& digest) {
  capnp::MallocMessageBuilder message;
  auto end = message.initRoot<schema::BundleEntry>().initEnd();
  end.setCommitCount(commit_count);
  end.setDigest(capnp::Data::Reader(digest.bytes.data(), digest.bytes.size()));
  kj::Array<capnp::word> canonical = capnp::canonicalize(message.getRoot<schema::BundleEntry>().asReader());
  kj::ArrayPtr<const capnp::word> segments[1] = {canonical};
  return capnp::messageToFlatArray(kj::arrayPtr(segments, 1));
}

kj::Array<capnp::word> EncodeHeader(const BundleHeader& header) {
  capnp::MallocMessageBuilder message;
  auto out = message.initRoot<schema::BundleEntry>().initHeader();
  out.setMagic(kBundleMagic);
  out.setFormatVersion(kBundleFormatVersion);
  out.setDistrict(capnp::Text::Reader(header.district.c_str(), header.district.size()));
  out.setExporter(capnp::Data::Reader(header.exporter.bytes.data(), header.exporter.bytes.size()));
  out.setCreatedMs(header.created_ms);
  auto base = out.initBase(static_cast<unsigned>(header.base.size()));
  unsigned i = 0;
  for (const auto& [device, seq] : header.base) {  // a std::map: sorted by device key
    base[i].setDevice(capnp::Data::Reader(device.bytes.data(), device.bytes.size()));
    base[i].setSeq(seq);
    ++i;
  }
  return capnp::messageToFlatArray(message);
}

// One framed message as read from the file.
struct RawEntry {
  std::vector<uint8_t> framing;  // segment count, segment sizes and padding, as read
  kj::Array<capnp::word> words;  // the segments, back to back
  std::vector<kj::ArrayPtr<const capnp::word>> segments;

  bool Equals(kj::ArrayPtr<const capnp::word> flat) const {
    auto bytes = flat.asBytes();
    size_t body = words.size() * sizeof(capnp::word);
    return bytes.size() == framing.size() + body && std::memcmp(bytes.begin(), framing.data(), framing.size()) == 0 &&
           std::memcmp(bytes.begin() + framing.size(), words.begin(), body) == 0;
  }
};

enum class ReadOutcome {
  kEntry,      // a whole entry was read
  kEndOfFile,  // the file ended before the entry's first byte
  kCutShort,   // the file ended inside the entry
};

}  // namespace

// ---------------------------------------------------------------------------------
// Writer

struct BundleWriter::State {
  std::string path;     // where the finished bundle goes
  std::string partial;  // where it is written until then; this State created it
  int fd = -1;
  Sha256Hasher hasher;  // over every entry written but the end
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

  Status Append(kj::ArrayPtr<const capnp::word> entry, bool hashed) {
    std::span<const uint8_t> data = AsSpan(entry);
    if (hashed) hasher.Update(data);
    bytes += data.size();
    if (buffer.size() + data.size() > kWriteBufferBytes) {
      SAMSYNC_RETURN_IF_ERROR(Flush());
      if (data.size() >= kWriteBufferBytes) return WriteAll(fd, data, path);
    }
    buffer.insert(buffer.end(), data.begin(), data.end());
    return Status::Ok();
  }

  Status Flush() {
    Status written = WriteAll(fd, buffer, path);
    buffer.clear();
    return written;
  }
};

BundleWriter::BundleWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
BundleWriter::~BundleWriter() = default;
BundleWriter::BundleWriter(BundleWriter&&) noexcept = default;
BundleWriter& BundleWriter::operator=(BundleWriter&&) noexcept = default;

Result<BundleWriter> BundleWriter::Create(const std::string& path, const BundleHeader& header) {
  if (header.district.empty()) return Status::Invalid("a bundle's header needs a district");
  for (const auto& [device, seq] : header.base) {
    if (seq == 0) return Status::Invalid("the bundle's base gives device " + ShortKey(device) + " seq 0 (seqs start at 1)");
  }
  SAMSYNC_ASSIGN_OR_RETURN(int fd, file_io::CreatePartial(path, "a bundle", "export"));
  auto state = std::make_unique<State>();
  state->path = path;
  state->partial = path + ".partial";
  state->fd = fd;
  state->buffer.reserve(kWriteBufferBytes);
  SAMSYNC_RETURN_IF_ERROR(state->Append(EncodeHeader(header), /*hashed=*/true));
  return BundleWriter(std::move(state));
}

Status BundleWriter::Add(const Commit& commit) {
  State& s = *state_;
  if (s.spent) return s.Spent();
  kj::Array<capnp::word> entry;
  auto error = kj::runCatchingExceptions([&] {
    const std::vector<uint8_t>& signed_bytes = commit.signed_bytes();
    auto words = kj::heapArray<capnp::word>(signed_bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), signed_bytes.data(), words.size() * sizeof(capnp::word));
    capnp::FlatArrayMessageReader source(words, EntryReaderOptions());
    auto signed_commit = source.getRoot<schema::SignedCommit>();
    // One first segment large enough for the whole entry: one segment on the file.
    uint64_t size_hint = std::min<uint64_t>(signed_commit.totalSize().wordCount + 8, kMaxEntryWords);
    capnp::MallocMessageBuilder message(static_cast<unsigned>(size_hint));
    message.initRoot<schema::BundleEntry>().setCommit(signed_commit);
    entry = capnp::messageToFlatArray(message);
  });
  if (error != nullptr) return Status::Invalid(commit.Name() + " cannot be encoded into a bundle");
  if (entry.size() > kMaxEntryWords) {
    return Status::Invalid(commit.Name() + " is larger than a bundle entry may be (256 MiB)");
  }
  Status appended = s.Append(entry, /*hashed=*/true);
  if (!appended.ok()) {
    s.spent = true;
    return appended;
  }
  ++s.commits;
  return Status::Ok();
}

Status BundleWriter::Finish() {
  State& s = *state_;
  if (s.spent) return s.Spent();
  s.spent = true;
  SAMSYNC_RETURN_IF_ERROR(s.Append(EncodeEnd(s.commits, s.hasher.Finish()), /*hashed=*/false));
  SAMSYNC_RETURN_IF_ERROR(s.Flush());
  if (::fsync(s.fd) != 0) return Status::Io("cannot sync " + s.partial + ": " + Errno());
  int fd = std::exchange(s.fd, -1);
  if (::close(fd) != 0) return Status::Io("cannot write " + s.partial + ": " + Errno());
  SAMSYNC_RETURN_IF_ERROR(file_io::RenameNoReplace(s.partial, s.path, "a bundle"));
  s.finished = true;
  fs::path folder = fs::path(s.path).parent_path();
  return SyncFolder(folder.empty() ? fs::path(".") : folder);
}

uint64_t BundleWriter::commit_count() const { return state_->commits; }
uint64_t BundleWriter::bytes_written() const { return state_->bytes; }

// ---------------------------------------------------------------------------------
// Reader

struct BundleReader::State {
  std::string path;
  int fd = -1;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(kReadBufferBytes);
  size_t buffer_start = 0;  // unread bytes are buffer[buffer_start, buffer_end)
  size_t buffer_end = 0;
  Sha256Hasher hasher;  // over every entry read but the end
  BundleHeader header;
  uint64_t commits = 0;
  bool done = false;             // the end entry was read and checked
  std::optional<Status> failed;  // the first error, returned from then on

  ~State() {
    if (fd >= 0) ::close(fd);
  }

  // Reads `n` bytes into `out`; fewer only where the file ends.
  Result<size_t> Read(uint8_t* out, size_t n) {
    size_t done_bytes = 0;
    while (done_bytes < n) {
      if (buffer_start == buffer_end) {
        // Large reads skip the buffer; small ones fill it.
        bool direct = n - done_bytes >= buffer.size();
        uint8_t* target = direct ? out + done_bytes : buffer.data();
        size_t want = direct ? n - done_bytes : buffer.size();
        ssize_t got = ::read(fd, target, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return Status::Io("cannot read " + path + ": " + Errno());
        if (got == 0) break;
        if (direct) {
          done_bytes += static_cast<size_t>(got);
          continue;
        }
        buffer_start = 0;
        buffer_end = static_cast<size_t>(got);
      }
      size_t take = std::min(buffer_end - buffer_start, n - done_bytes);
      std::memcpy(out + done_bytes, buffer.data() + buffer_start, take);
      buffer_start += take;
      done_bytes += take;
    }
    return done_bytes;
  }

  // Reads one framed message. A framing that breaks the bounds is a kCorruption whose
  // message is the bare reason ("declares 2000 segments …"), for the caller to place.
  Result<ReadOutcome> ReadEntry(RawEntry& entry) {
    uint8_t first[4];
    SAMSYNC_ASSIGN_OR_RETURN(size_t got, Read(first, sizeof first));
    if (got == 0) return ReadOutcome::kEndOfFile;
    if (got < sizeof first) return ReadOutcome::kCutShort;
    uint64_t segment_count = uint64_t{ReadLe32(first)} + 1;
    if (segment_count > kMaxBundleEntrySegments) {
      return Status::Corruption("declares " + std::to_string(segment_count) + " segments (at most " +
                                std::to_string(kMaxBundleEntrySegments) + ")");
    }
    // 4 bytes of count, 4 per segment size, padded to a whole word.
    size_t framing_size = (4 + 4 * static_cast<size_t>(segment_count) + 7) / 8 * 8;
    entry.framing.assign(first, first + sizeof first);
    entry.framing.resize(framing_size);
    SAMSYNC_ASSIGN_OR_RETURN(got, Read(entry.framing.data() + 4, framing_size - 4));
    if (got < framing_size - 4) return ReadOutcome::kCutShort;
    uint64_t total_words = 0;
    for (size_t i = 0; i < segment_count; ++i) total_words += ReadLe32(entry.framing.data() + 4 + 4 * i);
    if (total_words > kMaxEntryWords) {
      return Status::Corruption("declares " + std::to_string(total_words * sizeof(capnp::word)) +
                                " bytes (at most 256 MiB)");
    }
    for (size_t i = 4 + 4 * static_cast<size_t>(segment_count); i < framing_size; ++i) {
      if (entry.framing[i] != 0) return Status::Corruption("has non-zero padding in its framing");
    }
    entry.words = kj::heapArray<capnp::word>(static_cast<size_t>(total_words));
    size_t body = entry.words.size() * sizeof(capnp::word);
    SAMSYNC_ASSIGN_OR_RETURN(got, Read(reinterpret_cast<uint8_t*>(entry.words.begin()), body));
    if (got < body) return ReadOutcome::kCutShort;
    entry.segments.clear();
    size_t offset = 0;
    for (size_t i = 0; i < segment_count; ++i) {
      size_t size = ReadLe32(entry.framing.data() + 4 + 4 * i);
      entry.segments.push_back(entry.words.slice(offset, offset + size).asConst());
      offset += size;
    }
    return ReadOutcome::kEntry;
  }

  void HashEntry(const RawEntry& entry) {
    hasher.Update(entry.framing);
    hasher.Update(AsSpan(entry.words));
  }

  // "after the header", "after commit 3": where in the bundle the next entry stands.
  std::string Where() const { return commits == 0 ? "after the header" : "after commit " + std::to_string(commits); }

  Status CutShort(std::string_view how) const {
    return Status::Corruption(path + ": the bundle is cut short after " + std::to_string(commits) + " commits (" +
                              std::string(how) + ")");
  }

  Status Malformed(std::string_view reason) const {
    return Status::Corruption(path + ": the bundle's header is malformed: " + std::string(reason));
  }

  // Checks the header's version and fields and keeps them.
  Status TakeHeader(schema::BundleHeader::Reader in) {
    uint32_t version = in.getFormatVersion();
    if (version > kBundleFormatVersion) {
      return Status::Invalid(path + " is a bundle of format version " + std::to_string(version) +
                             "; this samsync reads version " + std::to_string(kBundleFormatVersion) +
                             " (a newer samsync wrote it)");
    }
    if (version == 0) return Malformed("format version 0");
    if (in.getDistrict().size() == 0) return Malformed("it names no district");
    auto exporter = in.getExporter();
    if (exporter.size() != 32) return Malformed("the exporter key is not 32 bytes");
    header.district = in.getDistrict().cStr();
    std::memcpy(header.exporter.bytes.data(), exporter.begin(), 32);
    header.created_ms = in.getCreatedMs();
    std::optional<PublicKey> previous;
    for (auto seen : in.getBase()) {
      auto device_bytes = seen.getDevice();
      if (device_bytes.size() != 32) return Malformed("a base device key is not 32 bytes");
      PublicKey device;
      std::memcpy(device.bytes.data(), device_bytes.begin(), 32);
      if (seen.getSeq() == 0) return Malformed("the base gives device " + ShortKey(device) + " seq 0");
      if (previous && !(*previous < device)) return Malformed("the base is not sorted by device, or names one twice");
      previous = device;
      header.base.emplace(device, seen.getSeq());
    }
    return Status::Ok();
  }

  // Checks the end entry against what was read, and that nothing follows it.
  Status CheckEnd(const RawEntry& entry, uint64_t end_count, const std::vector<uint8_t>& end_digest) {
    Hash digest = hasher.Finish();
    if (end_digest.size() != digest.bytes.size() ||
        !std::equal(end_digest.begin(), end_digest.end(), digest.bytes.begin())) {
      return Status::Corruption(path + ": the bundle was altered: its digest does not match");
    }
    if (end_count != commits) {
      return Status::Corruption(path + ": the bundle's end entry counts " + std::to_string(end_count) +
                                " commits, but it holds " + std::to_string(commits));
    }
    if (!entry.Equals(EncodeEnd(commits, digest))) {
      return Status::Corruption(path + ": the bundle's end entry is not encoded canonically");
    }
    uint8_t extra = 0;
    SAMSYNC_ASSIGN_OR_RETURN(size_t got, Read(&extra, 1));
    if (got != 0) return Status::Corruption(path + ": bytes follow the bundle's end entry");
    return Status::Ok();
  }

  Result<std::optional<Commit>> ReadNext() {
    RawEntry entry;
    auto outcome = ReadEntry(entry);
    if (!outcome.ok()) {
      const Status& error = outcome.status();
      if (error.code() != Code::kCorruption) return error;
      return Status::Corruption(path + ": the entry " + Where() + " " + error.message());
    }
    if (*outcome == ReadOutcome::kEndOfFile) return CutShort("the file ends before its end entry");
    if (*outcome == ReadOutcome::kCutShort) return CutShort("the file ends inside an entry");

    Status problem;
    std::optional<kj::Array<capnp::word>> signed_commit;
    std::optional<std::pair<uint64_t, std::vector<uint8_t>>> end;
    auto error = kj::runCatchingExceptions([&] {
      capnp::SegmentArrayMessageReader reader(kj::arrayPtr(entry.segments.data(), entry.segments.size()),
                                              EntryReaderOptions());
      auto root = reader.getRoot<schema::BundleEntry>();
      switch (root.which()) {
        case schema::BundleEntry::HEADER:
          problem = Status::Corruption(path + ": a second header stands " + Where());
          return;
        case schema::BundleEntry::COMMIT: {
          auto source = root.getCommit();
          uint64_t size_hint = std::min<uint64_t>(source.totalSize().wordCount + 8, kMaxEntryWords);
          capnp::MallocMessageBuilder copy(static_cast<unsigned>(size_hint));
          copy.setRoot(source);
          signed_commit = capnp::messageToFlatArray(copy);
          return;
        }
        case schema::BundleEntry::END: {
          auto in = root.getEnd();
          auto digest = in.getDigest();
          end.emplace(in.getCommitCount(), std::vector<uint8_t>(digest.begin(), digest.end()));
          return;
        }
      }
      problem = Status::Corruption(path + ": the entry " + Where() + " is of a kind this samsync does not know");
    });
    if (error != nullptr) return Status::Corruption(path + ": the entry " + Where() + " does not decode");
    if (!problem.ok()) return problem;

    if (end) {
      SAMSYNC_RETURN_IF_ERROR(CheckEnd(entry, end->first, end->second));
      done = true;
      return std::optional<Commit>();
    }
    HashEntry(entry);
    auto commit = Commit::Decode(AsSpan(*signed_commit));
    if (!commit.ok()) {
      return commit.status().WithContext(path + ": commit " + std::to_string(commits + 1) + " of the bundle");
    }
    ++commits;
    return std::optional<Commit>(std::move(commit).value());
  }
};

BundleReader::BundleReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
BundleReader::~BundleReader() = default;
BundleReader::BundleReader(BundleReader&&) noexcept = default;
BundleReader& BundleReader::operator=(BundleReader&&) noexcept = default;

Result<BundleReader> BundleReader::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::Io("cannot read " + path + ": " + Errno());
  }
  auto state = std::make_unique<State>();
  state->path = path;
  state->fd = fd;
  Status not_bundle = Status::Invalid(path + " is not a samsync bundle");

  RawEntry entry;
  auto outcome = state->ReadEntry(entry);
  if (!outcome.ok()) return outcome.status().code() == Code::kCorruption ? not_bundle : outcome.status();
  if (*outcome == ReadOutcome::kEndOfFile) return Status::Invalid(path + " is empty: not a samsync bundle");
  if (*outcome == ReadOutcome::kCutShort) return state->CutShort("the file ends inside its header");

  Status taken = not_bundle;
  bool magic = false;  // past the magic, a decoding failure is a damaged bundle
  auto error = kj::runCatchingExceptions([&] {
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(entry.segments.data(), entry.segments.size()),
                                            EntryReaderOptions());
    auto root = reader.getRoot<schema::BundleEntry>();
    if (!root.isHeader() || root.getHeader().getMagic() != kBundleMagic) return;
    magic = true;
    taken = state->TakeHeader(root.getHeader());
  });
  if (error != nullptr) return magic ? state->Malformed("it does not decode") : not_bundle;
  SAMSYNC_RETURN_IF_ERROR(taken);
  state->HashEntry(entry);
  return BundleReader(std::move(state));
}

const BundleHeader& BundleReader::header() const { return state_->header; }
uint64_t BundleReader::commits_read() const { return state_->commits; }

Result<std::optional<Commit>> BundleReader::Next() {
  State& s = *state_;
  if (s.failed) return *s.failed;
  if (s.done) return std::optional<Commit>();
  auto next = s.ReadNext();
  if (!next.ok()) s.failed = next.status();
  return next;
}

}  // namespace samsync
