// Offline bundles: signed commits carried on a file from one machine to another when
// there is no network between them (schema/bundle.capnp, docs/formats.md "Bundles").
//
// A bundle is a header (district, exporting device, time, and the version vector the
// bundle was cut against), zero or more SignedCommits exactly as stored, and an end
// entry holding the commit count and a SHA-256 digest of every byte before it. A
// bundle is all or nothing: a reader hands out commits as it streams them, but only
// the final nullopt from Next() says the file was whole and unaltered, so a caller
// applies what it read only after that (or in one transaction it can abort).
//
// The reader checks the container (order of entries, sizes, digest, nothing after the
// end) and that each commit decodes. It checks no signature, chain or author: that is
// CheckCommit's work, done by whoever imports the commits.
//
// Both classes are resources (move-only) used by one thread at a time. Every error
// message is one line naming the file and its problem, never its contents.
#ifndef SAMSYNC_BUNDLE_H_
#define SAMSYNC_BUNDLE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "samsync/history.h"
#include "samsync/keys.h"
#include "samsync/status.h"

namespace samsync {

inline constexpr uint32_t kBundleFormatVersion = 1;
// Bounds on one entry (one framed message), checked before anything is allocated.
inline constexpr uint64_t kMaxBundleEntryBytes = uint64_t{256} << 20;
inline constexpr uint32_t kMaxBundleEntrySegments = 1024;

struct BundleHeader {
  std::string district;  // never empty
  PublicKey exporter;    // the exporting device's Ed25519 key
  int64_t created_ms = 0;
  // The receiver is assumed to hold these commits; the bundle holds commits after
  // them. Every seq >= 1.
  VersionVector base;
};

class BundleWriter {
 public:
  // Starts a bundle at `path` and writes its header. Fails with kInvalidInput if
  // `path` exists (a bundle is never overwritten), if "<path>.partial" exists (another
  // export is writing it, or one was interrupted), or if the header breaks a rule
  // (empty district, a base seq of 0); kNotFound if the folder does not exist;
  // kIoError if the file system refuses. The bundle is written to "<path>.partial"
  // (mode 0600: commits hold records in the clear) until Finish().
  static Result<BundleWriter> Create(const std::string& path, const BundleHeader& header);

  // Destroying a writer that was not finished removes "<path>.partial".
  ~BundleWriter();
  BundleWriter(BundleWriter&&) noexcept;
  BundleWriter& operator=(BundleWriter&&) noexcept;
  BundleWriter(const BundleWriter&) = delete;
  BundleWriter& operator=(const BundleWriter&) = delete;

  // Appends one commit (its SignedCommit, unchanged; any district). Fails with
  // kInvalidInput, writing nothing, if the commit's entry would exceed
  // kMaxBundleEntryBytes; with kIoError if the file system refuses, after which the
  // writer is spent. A spent or finished writer fails every call (kInvalidInput).
  Status Add(const Commit& commit);

  // Writes the end entry, fsyncs the file and renames it to `path`, never replacing a
  // file that appeared there meanwhile (kInvalidInput). On success the bundle exists
  // under `path`, whole; on failure nothing exists under `path` that this writer made.
  Status Finish();

  uint64_t commit_count() const;
  // Bytes of the entries so far, header included; after Finish(), the file's size.
  uint64_t bytes_written() const;

 private:
  struct State;
  explicit BundleWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class BundleReader {
 public:
  // Opens `path` and reads its header. Fails with kNotFound if there is no such file;
  // kInvalidInput if it is empty or is not a samsync bundle, or is of a newer format
  // version; kCorruption if it is cut short inside its header or the header breaks a
  // rule; kIoError if the file system refuses.
  static Result<BundleReader> Open(const std::string& path);

  ~BundleReader();
  BundleReader(BundleReader&&) noexcept;
  BundleReader& operator=(BundleReader&&) noexcept;
  BundleReader(const BundleReader&) = delete;
  BundleReader& operator=(const BundleReader&) = delete;

  // Valid as long as the reader.
  const BundleHeader& header() const;

  // The next commit, or nullopt once the end entry has been read and checked: the
  // commit count and digest match, it is encoded as a writer encodes it, and nothing
  // follows it. Streams: memory holds one entry at a time (at most
  // kMaxBundleEntryBytes), whatever the file's size.
  //
  // Errors, kCorruption unless said otherwise, each naming the file:
  //  - "the bundle is cut short after N commits (…)": the file ends before its end
  //    entry, between entries or inside one;
  //  - "the bundle was altered: its digest does not match";
  //  - the end entry's count differs from the commits read, or the end entry is not
  //    written canonically;
  //  - bytes after the end entry; a second header;
  //  - an entry that is too large (segments or bytes), has non-zero framing padding,
  //    or does not decode;
  //  - Commit::Decode's error, with the context "commit N of the bundle" (N from 1);
  //  - kIoError if the file system refuses.
  // An error is final: every later call returns it again. After nullopt, every later
  // call returns nullopt.
  Result<std::optional<Commit>> Next();

  uint64_t commits_read() const;

 private:
  struct State;
  explicit BundleReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace samsync

#endif  // SAMSYNC_BUNDLE_H_
