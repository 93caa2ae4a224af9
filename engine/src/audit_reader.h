// Private: reading an audit bundle (audit.h, schema/audit.capnp) entry by entry, and
// what the writer and the reader share about the framing.
//
// The reader parses the stream framing by hand, as the offline bundle's does
// (bundle.cc), so that it bounds every size before allocating; Cap'n Proto only ever
// sees one entry's segments at a time, with a traversal limit.
#ifndef SAMSYNC_ENGINE_AUDIT_READER_H_
#define SAMSYNC_ENGINE_AUDIT_READER_H_

#include <capnp/message.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/audit.h"
#include "samsync/keys.h"
#include "samsync/status.h"

namespace samsync::audit_format {

inline constexpr char kMagic[] = "samsync-audit";
inline constexpr uint64_t kMaxEntryWords = kMaxAuditEntryBytes / sizeof(capnp::word);

// Reader options for one entry: bounds what a hostile entry can make a reader
// traverse (as for commits, history.cc).
capnp::ReaderOptions EntryReaderOptions();

// One entry of an audit bundle, decoded.
struct Entry {
  enum class Kind { kRoster, kCheckpoint, kStatement, kCommit, kEnd } kind = Kind::kEnd;
  std::vector<uint8_t> bytes;  // kRoster: signed roster bytes (Roster::Open); kCommit: SignedCommit message bytes
  std::string text;            // kCheckpoint, kStatement
  Hash id;                     // kCommit: SHA-256 of the inner Commit bytes, the commit id
  uint64_t count = 0;          // kEnd: the commit count it states
};

// Reads an audit bundle entry by entry, checking the framing, the bounds and the
// order of the entries (header, rosters, checkpoint, statement, commits, end, nothing
// after it), and the end entry's count. Errors about the file's form are kCorruption,
// each naming the file and where in it; kIoError when the file system refuses. An
// error is final: every later call returns it again. A resource (move-only), used by
// one thread at a time (it may be handed to another).
class Reader {
 public:
  // Opens `path` and reads its header. kNotFound: no such file; kInvalidInput: empty,
  // cut short inside its first entry, not an audit bundle, or of a newer format
  // version; kCorruption: an audit header (its magic read) that is otherwise
  // malformed. `magic` (if given) is set when the first entry is an audit header,
  // whatever else is wrong with the file.
  static Result<Reader> Open(const std::string& path, bool* magic = nullptr);

  Reader(Reader&& other) noexcept;
  Reader& operator=(Reader&& other) noexcept;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  // From the header (as the bundle says).
  const std::string& server() const { return server_; }
  int64_t fetched_ms() const { return fetched_ms_; }
  uint64_t bytes_read() const { return bytes_; }
  uint64_t commits_read() const { return commits_; }

  // The next entry, or nullopt once the end entry was read and nothing follows it.
  // Entries come in the file's order, so nothing but rosters and the checkpoint
  // comes before the statement.
  Result<std::optional<Entry>> Next();

 private:
  enum class Stage { kHeader, kRosters, kStatement, kCommits, kDone };
  enum class Outcome { kEntry, kEndOfFile, kCutShort };
  struct RawEntry;

  Reader() = default;
  Result<size_t> Read(uint8_t* out, size_t n);
  Result<Outcome> ReadEntry(RawEntry& entry);
  Result<std::optional<Entry>> ReadNext();
  Status Order(const Entry& entry);
  std::string Where() const;
  Status Corrupt(std::string_view what) const;
  Status CutShort(std::string_view how) const;

  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0, end_ = 0;  // unread bytes are buffer_[start_, end_)
  std::string server_;
  int64_t fetched_ms_ = 0;
  Stage stage_ = Stage::kHeader;
  uint64_t rosters_ = 0;
  uint64_t commits_ = 0;
  uint64_t bytes_ = 0;
  std::optional<Status> failed_;
};

}  // namespace samsync::audit_format

#endif  // SAMSYNC_ENGINE_AUDIT_READER_H_
