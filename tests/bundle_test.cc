// Offline bundles: what a writer writes is what a reader hands back, in order; the
// file is the documented stream of framed Cap'n Proto messages that the stock capnp
// tool decodes; and a bundle damaged in any way (cut at every length, a byte flipped
// at every position, bytes appended, entries removed, repeated, reordered or forged,
// sizes out of bounds) is refused with a one-line reason, never read as whole.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>

#include "samsync/bundle.h"
#include "samsync/schema/bundle.capnp.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::MakeRecord;
using testing::TempDir;

constexpr int64_t kNow = 1479211200000;  // 2016-11-15 12:00 UTC

// A device that signs a chain of commits, each adding one school.
class Device {
 public:
  Device() : key_(SigningKey::Generate()) {}

  Commit Next() {
    FixedClock clock(kNow + static_cast<int64_t>(seq_) * 1000);
    Record school = MakeRecord(RecordType::kSchool,
                               {{"name", "Skola " + std::to_string(seq_ + 1)}, {"principal", "municipal"}});
    school.set_id(ids_.Next(clock));
    school.set_district("Farsta");
    CommitBuilder builder;
    builder.AddSet(school, ChangedFields(nullptr, school));
    CommitBuilder::Header header;
    header.district = "Farsta";
    header.seq = seq_ + 1;
    header.parent = parent_;
    header.hlc = Hlc::Next(hlc_, clock.NowMs());
    header.note = "add school";
    Commit commit = builder.Sign(key_, header);
    ++seq_;
    parent_ = commit.id();
    hlc_ = commit.hlc();
    return commit;
  }

  std::vector<Commit> Commits(int n) {
    std::vector<Commit> out;
    for (int i = 0; i < n; ++i) out.push_back(Next());
    return out;
  }

  const PublicKey& key() const { return key_.public_key(); }

 private:
  SigningKey key_;
  RecordIdGenerator ids_;
  uint64_t seq_ = 0;
  Hash parent_;
  uint64_t hlc_ = 0;
};

PublicKey KeyOf(uint8_t fill) {
  PublicKey key;
  key.bytes.fill(fill);
  return key;
}

BundleHeader MakeHeader(const Device& device) {
  BundleHeader header;
  header.district = "Farsta";
  header.exporter = device.key();
  header.created_ms = kNow;
  header.base = {{KeyOf(0x11), 7}, {KeyOf(0x22), 1}};
  return header;
}

void WriteBundle(const std::string& path, const BundleHeader& header, const std::vector<Commit>& commits) {
  auto writer = BundleWriter::Create(path, header);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  for (const Commit& commit : commits) {
    Status added = writer->Add(commit);
    ASSERT_TRUE(added.ok()) << added.message();
  }
  Status finished = writer->Finish();
  ASSERT_TRUE(finished.ok()) << finished.message();
}

// What an importer gets from a bundle: Open, then Next until nullopt or an error.
struct ReadBack {
  Status status;  // the first error; OK only when Next ended with nullopt
  std::optional<BundleHeader> header;
  std::vector<Commit> commits;
};

ReadBack ReadAll(const std::string& path) {
  ReadBack out;
  auto reader = BundleReader::Open(path);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  out.header = reader->header();
  for (;;) {
    auto next = reader->Next();
    if (!next.ok()) {
      out.status = next.status();
      return out;
    }
    if (!next->has_value()) return out;
    out.commits.push_back(std::move(**next));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

uint32_t Le32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
  return value;
}

std::string Le32Bytes(uint32_t value) {
  std::string out(4, '\0');
  for (size_t i = 0; i < 4; ++i) out[i] = static_cast<char>(value >> (8 * i));
  return out;
}

// A bundle file's framed messages, split by reading the stream framing.
std::vector<std::string> SplitEntries(const std::string& bytes) {
  std::vector<std::string> entries;
  for (size_t at = 0; at < bytes.size();) {
    size_t count = size_t{Le32(bytes, at)} + 1;
    size_t framing = (4 + 4 * count + 7) / 8 * 8;
    size_t body = 0;
    for (size_t i = 0; i < count; ++i) body += size_t{Le32(bytes, at + 4 + 4 * i)} * 8;
    entries.push_back(bytes.substr(at, framing + body));
    at += framing + body;
  }
  return entries;
}

std::string Flat(capnp::MessageBuilder& message) {
  auto flat = capnp::messageToFlatArray(message);
  auto bytes = flat.asBytes();
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

// An end entry with these values, laid out the way MallocMessageBuilder lays it out.
std::string EndEntry(uint64_t count, const Hash& digest) {
  capnp::MallocMessageBuilder message;
  auto end = message.initRoot<schema::BundleEntry>().initEnd();
  end.setCommitCount(count);
  end.setDigest(capnp::Data::Reader(digest.bytes.data(), 32));
  return Flat(message);
}

Hash DigestOf(const std::string& bytes) {
  return Sha256({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

// A header entry; `edit` changes it from a valid one.
std::string HeaderEntry(const std::function<void(schema::BundleHeader::Builder)>& edit) {
  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<schema::BundleEntry>().initHeader();
  header.setMagic("samsync-bundle");
  header.setFormatVersion(1);
  header.setDistrict("Farsta");
  PublicKey exporter = KeyOf(0x33);
  header.setExporter(capnp::Data::Reader(exporter.bytes.data(), 32));
  header.setCreatedMs(kNow);
  edit(header);
  return Flat(message);
}

void SetBase(schema::BundleHeader::Builder header, const std::vector<std::pair<std::string, uint64_t>>& base) {
  auto list = header.initBase(static_cast<unsigned>(base.size()));
  for (unsigned i = 0; i < base.size(); ++i) {
    list[i].setDevice(capnp::Data::Reader(reinterpret_cast<const uint8_t*>(base[i].first.data()), base[i].first.size()));
    list[i].setSeq(base[i].second);
  }
}

// A fixture holding a small written bundle (two commits) and its parts.
class BundleFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    commits_ = device_.Commits(2);
    WriteBundle(Good(), MakeHeader(device_), commits_);
    bytes_ = ReadFile(Good());
    entries_ = SplitEntries(bytes_);
    ASSERT_EQ(entries_.size(), 4u);  // header, 2 commits, end
  }

  std::string Good() const { return dir_.Sub("good.bundle"); }

  // Writes `bytes` as a new file and reads it whole.
  ReadBack ReadBytes(const std::string& bytes) {
    std::string path = dir_.Sub("edited.bundle");
    fs::remove(path);  // a new file: ext4 flushes a file rewritten in place on close
    WriteFile(path, bytes);
    return ReadAll(path);
  }

  // The entries before the end entry, and an end entry matching them.
  std::string WithEnd(const std::string& before, uint64_t count) { return before + EndEntry(count, DigestOf(before)); }

  const std::string& header() const { return entries_[0]; }
  const std::string& commit(size_t i) const { return entries_[1 + i]; }
  const std::string& end() const { return entries_[3]; }

  TempDir dir_;
  Device device_;
  std::vector<Commit> commits_;
  std::string bytes_;
  std::vector<std::string> entries_;
};

void ExpectRefused(const ReadBack& read, Code code, const std::string& contains) {
  EXPECT_EQ(read.status.code(), code) << read.status.message();
  EXPECT_NE(read.status.message().find(contains), std::string::npos) << read.status.message();
  EXPECT_EQ(read.status.message().find('\n'), std::string::npos) << read.status.message();
}

// --- Round trips ---------------------------------------------------------------------

void ExpectRoundTrip(int n) {
  TempDir dir;
  Device device;
  std::vector<Commit> commits = device.Commits(n);
  BundleHeader header = MakeHeader(device);
  std::string path = dir.Sub("farsta.bundle");

  auto writer = BundleWriter::Create(path, header);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  for (const Commit& commit : commits) ASSERT_TRUE(writer->Add(commit).ok());
  EXPECT_EQ(writer->commit_count(), static_cast<uint64_t>(n));
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(writer->bytes_written(), fs::file_size(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  auto reader = BundleReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ(reader->header().district, header.district);
  EXPECT_EQ(reader->header().exporter, header.exporter);
  EXPECT_EQ(reader->header().created_ms, header.created_ms);
  EXPECT_EQ(reader->header().base, header.base);
  for (int i = 0; i < n; ++i) {
    auto next = reader->Next();
    ASSERT_TRUE(next.ok()) << next.status().message();
    ASSERT_TRUE(next->has_value()) << "commit " << i + 1 << " is missing";
    const Commit& got = **next;
    EXPECT_EQ(got.id(), commits[i].id()) << "commit " << i + 1;
    EXPECT_EQ(got.signed_bytes(), commits[i].signed_bytes()) << "commit " << i + 1;
    EXPECT_TRUE(got.SignatureValid());
    EXPECT_EQ(reader->commits_read(), static_cast<uint64_t>(i + 1));
  }
  for (int again = 0; again < 2; ++again) {  // the end, and it stays the end
    auto end = reader->Next();
    ASSERT_TRUE(end.ok()) << end.status().message();
    EXPECT_FALSE(end->has_value());
  }
  EXPECT_EQ(reader->commits_read(), static_cast<uint64_t>(n));
}

TEST(BundleTest, NoCommitsRoundTrip) { ExpectRoundTrip(0); }
TEST(BundleTest, OneCommitRoundTrips) { ExpectRoundTrip(1); }
TEST(BundleTest, FiftyCommitsRoundTripInOrder) { ExpectRoundTrip(50); }

TEST_F(BundleFileTest, TheFileIsTheDocumentedStreamOfEntries) {
  auto root_of = [](const std::string& entry, auto&& fn) {
    auto words = kj::heapArray<capnp::word>(entry.size() / 8);
    std::memcpy(words.begin(), entry.data(), entry.size());
    capnp::FlatArrayMessageReader message(words);
    fn(message.getRoot<schema::BundleEntry>());
  };
  root_of(header(), [&](schema::BundleEntry::Reader root) {
    ASSERT_TRUE(root.isHeader());
    EXPECT_EQ(std::string(root.getHeader().getMagic().cStr()), "samsync-bundle");
    EXPECT_EQ(root.getHeader().getFormatVersion(), 1u);
    ASSERT_EQ(root.getHeader().getBase().size(), 2u);
    EXPECT_EQ(root.getHeader().getBase()[0].getSeq(), 7u);  // sorted by device key
  });
  for (size_t i = 0; i < 2; ++i) {
    root_of(commit(i), [&](schema::BundleEntry::Reader root) {
      ASSERT_TRUE(root.isCommit());
      auto inner = root.getCommit().getCommit();
      EXPECT_EQ(Sha256({inner.begin(), inner.size()}), commits_[i].id());
    });
  }
  root_of(end(), [&](schema::BundleEntry::Reader root) {
    ASSERT_TRUE(root.isEnd());
    EXPECT_EQ(root.getEnd().getCommitCount(), 2u);
    auto digest = root.getEnd().getDigest();
    EXPECT_EQ(Hash::FromBytes({digest.begin(), digest.size()}).value(), DigestOf(header() + commit(0) + commit(1)));
  });
  EXPECT_EQ(Le32(end(), 0), 0u);  // the end entry is one (canonical) segment
}

TEST_F(BundleFileTest, TheStockCapnpToolDecodesIt) {
  std::string command = "cd '" SAMSYNC_SOURCE_DIR "' && capnp decode -I/usr/include schema/bundle.capnp BundleEntry < '" +
                        Good() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char chunk[4096];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) out.append(chunk, n);
  int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("samsync-bundle"), std::string::npos) << out;
  EXPECT_NE(out.find("district = \"Farsta\""), std::string::npos) << out;
  EXPECT_NE(out.find("end = ("), std::string::npos) << out;
  EXPECT_NE(out.find("commitCount = 2"), std::string::npos) << out;
  size_t commit_entries = 0;  // "commit = (" opens an entry's SignedCommit; its inner commit is Data
  for (size_t at = out.find("commit = ("); at != std::string::npos; at = out.find("commit = (", at + 1)) ++commit_entries;
  EXPECT_EQ(commit_entries, 2u) << out;
}

// --- Damage ------------------------------------------------------------------------

TEST_F(BundleFileTest, TheGoodFileReadsWhole) {
  ReadBack read = ReadAll(Good());
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  EXPECT_EQ(read.commits.size(), 2u);
}

TEST_F(BundleFileTest, ACutAtEveryLengthIsRefused) {
  ExpectRefused(ReadBytes(""), Code::kInvalidInput, "is empty: not a samsync bundle");
  for (size_t length = 1; length < bytes_.size(); ++length) {
    ReadBack read = ReadBytes(bytes_.substr(0, length));
    ASSERT_EQ(read.status.code(), Code::kCorruption) << "cut at " << length << ": " << read.status.message();
    ASSERT_NE(read.status.message().find("the bundle is cut short after"), std::string::npos)
        << "cut at " << length << ": " << read.status.message();
  }
  // Cuts between entries say how many commits came before.
  ExpectRefused(ReadBytes(header()), Code::kCorruption, "cut short after 0 commits (the file ends before its end entry)");
  ExpectRefused(ReadBytes(header() + commit(0)), Code::kCorruption, "cut short after 1 commits");
  ExpectRefused(ReadBytes(header() + commit(0) + commit(1)), Code::kCorruption,
                "cut short after 2 commits (the file ends before its end entry)");
  ExpectRefused(ReadBytes(header().substr(0, 9)), Code::kCorruption, "(the file ends inside its header)");
}

TEST_F(BundleFileTest, AFlippedByteAtEveryPositionIsRefused) {
  for (size_t at = 0; at < bytes_.size(); ++at) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::string flipped = bytes_;
      flipped[at] = static_cast<char>(static_cast<uint8_t>(flipped[at]) ^ mask);
      ReadBack read = ReadBytes(flipped);
      ASSERT_FALSE(read.status.ok()) << "byte " << at << " ^ " << int{mask} << " went unnoticed";
      ASSERT_EQ(read.status.message().find('\n'), std::string::npos) << read.status.message();
    }
  }
}

TEST_F(BundleFileTest, BytesAfterTheEndAreRefused) {
  for (const std::string& tail : {std::string(1, '\0'), std::string("x"), std::string(8, '\0'), end(), bytes_}) {
    ExpectRefused(ReadBytes(bytes_ + tail), Code::kCorruption, "bytes follow the bundle's end entry");
  }
}

TEST_F(BundleFileTest, RemovedReorderedOrRepeatedCommitsAreRefused) {
  const std::string altered = "the bundle was altered: its digest does not match";
  ExpectRefused(ReadBytes(header() + commit(1) + end()), Code::kCorruption, altered);
  ExpectRefused(ReadBytes(header() + commit(1) + commit(0) + end()), Code::kCorruption, altered);
  ExpectRefused(ReadBytes(header() + commit(0) + commit(1) + commit(1) + end()), Code::kCorruption, altered);
  // The end entry comes from another bundle of the same commits: the header differs.
  BundleHeader other = MakeHeader(device_);
  other.created_ms += 1;
  WriteBundle(dir_.Sub("other.bundle"), other, commits_);
  std::string other_end = SplitEntries(ReadFile(dir_.Sub("other.bundle"))).back();
  ExpectRefused(ReadBytes(header() + commit(0) + commit(1) + other_end), Code::kCorruption, altered);
}

TEST_F(BundleFileTest, AnEndEntryThatMiscountsIsRefused) {
  std::string before = header() + commit(0) + commit(1);
  ExpectRefused(ReadBytes(WithEnd(before, 3)), Code::kCorruption, "end entry counts 3 commits, but it holds 2");
  ExpectRefused(ReadBytes(WithEnd(before, 1)), Code::kCorruption, "end entry counts 1 commits, but it holds 2");
  // The right values, as this test's builder lays them out, read whole.
  EXPECT_TRUE(ReadBytes(WithEnd(before, 2)).status.ok());
}

TEST_F(BundleFileTest, AnEndEntryNotWrittenCanonicallyIsRefused) {
  // The same values in a message of tiny segments (far pointers): no digest covers the
  // end entry, so only its exact bytes protect it.
  std::string before = header() + commit(0) + commit(1);
  capnp::MallocMessageBuilder message(1, capnp::AllocationStrategy::FIXED_SIZE);
  auto end_entry = message.initRoot<schema::BundleEntry>().initEnd();
  end_entry.setCommitCount(2);
  Hash digest = DigestOf(before);
  end_entry.setDigest(capnp::Data::Reader(digest.bytes.data(), 32));
  std::string multi_segment = Flat(message);
  ASSERT_GT(Le32(multi_segment, 0), 0u);
  ExpectRefused(ReadBytes(before + multi_segment), Code::kCorruption, "end entry is not encoded canonically");
}

TEST_F(BundleFileTest, ASecondHeaderIsRefused) {
  ExpectRefused(ReadBytes(header() + header() + commit(0) + commit(1) + end()), Code::kCorruption,
                "a second header stands after the header");
  ExpectRefused(ReadBytes(header() + commit(0) + header() + end()), Code::kCorruption,
                "a second header stands after commit 1");
}

TEST_F(BundleFileTest, OversizedEntriesAreRefusedBeforeTheyAreRead) {
  // 1,025 segments.
  ExpectRefused(ReadBytes(header() + Le32Bytes(1024) + std::string(4 * 1025 + 4, '\0')), Code::kCorruption,
                "the entry after the header declares 1025 segments (at most 1024)");
  // One segment of 256 MiB + 8 bytes; the file does not hold it, so only the bound
  // check can name it.
  ExpectRefused(ReadBytes(header() + commit(0) + Le32Bytes(0) + Le32Bytes((32u << 20) + 1)), Code::kCorruption,
                "the entry after commit 1 declares 268435464 bytes (at most 256 MiB)");
  // Two segments whose sizes only overflow together.
  ExpectRefused(ReadBytes(header() + Le32Bytes(1) + Le32Bytes(0xFFFFFFFF) + Le32Bytes(0xFFFFFFFF) + Le32Bytes(0)),
                Code::kCorruption, "declares 68719476720 bytes");
  // The header itself: not a bundle.
  ExpectRefused(ReadBytes(Le32Bytes(0) + Le32Bytes(0xFFFFFFFF)), Code::kInvalidInput, "is not a samsync bundle");
}

TEST_F(BundleFileTest, MalformedEntriesAreRefused) {
  // Two empty segments: the framing is padded, and there is no root pointer.
  std::string framing = Le32Bytes(1) + Le32Bytes(0) + Le32Bytes(0);
  ExpectRefused(ReadBytes(header() + framing + Le32Bytes(0)), Code::kCorruption,
                "the entry after the header does not decode");
  ExpectRefused(ReadBytes(header() + framing + Le32Bytes(7)), Code::kCorruption,
                "the entry after the header has non-zero padding in its framing");
  // A root pointer far outside its one-word segment.
  ExpectRefused(ReadBytes(header() + commit(0) + Le32Bytes(0) + Le32Bytes(1) + std::string("\xfc\xff\xff\x0f\x01\x00\x01\x00", 8)),
                Code::kCorruption, "the entry after commit 1 does not decode");
}

TEST_F(BundleFileTest, ACommitThatDoesNotDecodeIsNamedByItsNumber) {
  capnp::MallocMessageBuilder message;
  auto bad = message.initRoot<schema::BundleEntry>().initCommit();
  auto inner = commits_[1].signed_bytes();
  bad.setCommit(capnp::Data::Reader(inner.data(), 8));
  bad.setSignature(capnp::Data::Reader(inner.data(), 10));
  ExpectRefused(ReadBytes(WithEnd(header() + commit(0) + Flat(message), 2)), Code::kCorruption,
                "commit 2 of the bundle: a commit's signature is not 64 bytes");
}

TEST_F(BundleFileTest, AnErrorIsFinal) {
  std::string path = dir_.Sub("cut.bundle");
  WriteFile(path, header() + commit(0));
  auto reader = BundleReader::Open(path);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(reader->Next().ok());
  auto first = reader->Next();
  ASSERT_FALSE(first.ok());
  auto again = reader->Next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), first.status().message());
}

// --- Open ----------------------------------------------------------------------------

TEST(BundleTest, OpenRefusesWhatIsNotABundle) {
  TempDir dir;
  auto open = [&](const std::string& bytes) {
    std::string path = dir.Sub("file");
    WriteFile(path, bytes);
    return BundleReader::Open(path).status();
  };
  auto expect = [](const Status& status, Code code, const std::string& contains) {
    EXPECT_EQ(status.code(), code) << status.message();
    EXPECT_NE(status.message().find(contains), std::string::npos) << status.message();
  };
  auto missing = BundleReader::Open(dir.Sub("nothing.bundle"));
  expect(missing.status(), Code::kNotFound, "nothing.bundle does not exist");
  expect(open("id;name\n1;Skolan\n"), Code::kInvalidInput, "file is not a samsync bundle");

  capnp::MallocMessageBuilder commit_first;
  commit_first.initRoot<schema::BundleEntry>().initCommit();
  expect(open(Flat(commit_first)), Code::kInvalidInput, "is not a samsync bundle");
  expect(open(HeaderEntry([](auto h) { h.setMagic("samsync-store"); })), Code::kInvalidInput,
         "is not a samsync bundle");
  expect(open(HeaderEntry([](auto h) { h.setFormatVersion(2); })), Code::kInvalidInput,
         "is a bundle of format version 2; this samsync reads version 1");

  const std::string malformed = "the bundle's header is malformed: ";
  std::string a(32, 'a'), b(32, 'b');
  expect(open(HeaderEntry([](auto h) { h.setFormatVersion(0); })), Code::kCorruption, malformed + "format version 0");
  expect(open(HeaderEntry([](auto h) { h.setDistrict(""); })), Code::kCorruption, malformed + "it names no district");
  expect(open(HeaderEntry([](auto h) { h.setExporter(capnp::Data::Reader(nullptr, 0)); })), Code::kCorruption,
         malformed + "the exporter key is not 32 bytes");
  expect(open(HeaderEntry([&](auto h) { SetBase(h, {{a, 1}, {std::string(31, 'b'), 1}}); })), Code::kCorruption,
         malformed + "a base device key is not 32 bytes");
  expect(open(HeaderEntry([&](auto h) { SetBase(h, {{a, 1}, {b, 0}}); })), Code::kCorruption,
         malformed + "the base gives device 6262626262626262… seq 0");
  expect(open(HeaderEntry([&](auto h) { SetBase(h, {{b, 1}, {a, 1}}); })), Code::kCorruption,
         malformed + "the base is not sorted by device, or names one twice");
  expect(open(HeaderEntry([&](auto h) { SetBase(h, {{a, 1}, {a, 2}}); })), Code::kCorruption,
         malformed + "the base is not sorted by device, or names one twice");
  // A valid header alone opens (and its first Next says it is cut short).
  expect(open(HeaderEntry([&](auto h) { SetBase(h, {{a, 1}, {b, 3}}); })), Code::kOk, "");
}

// --- Writer --------------------------------------------------------------------------

TEST(BundleTest, CreateNeverOverwritesAFile) {
  TempDir dir;
  Device device;
  std::string path = dir.Sub("farsta.bundle");
  WriteFile(path, "precious");
  auto writer = BundleWriter::Create(path, MakeHeader(device));
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Code::kInvalidInput);
  EXPECT_NE(writer.status().message().find("already exists: a bundle is never overwritten"), std::string::npos);
  EXPECT_EQ(ReadFile(path), "precious");
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(BundleTest, CreateLeavesALeftoverPartialFileAlone) {
  TempDir dir;
  Device device;
  std::string path = dir.Sub("farsta.bundle");
  WriteFile(path + ".partial", "another export's");
  auto writer = BundleWriter::Create(path, MakeHeader(device));
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Code::kInvalidInput);
  EXPECT_NE(writer.status().message().find(".partial exists"), std::string::npos) << writer.status().message();
  EXPECT_EQ(ReadFile(path + ".partial"), "another export's");
  EXPECT_FALSE(fs::exists(path));
}

TEST(BundleTest, CreateRefusesABadHeaderOrAMissingFolder) {
  TempDir dir;
  Device device;
  BundleHeader header = MakeHeader(device);
  header.district = "";
  EXPECT_EQ(BundleWriter::Create(dir.Sub("a.bundle"), header).status().code(), Code::kInvalidInput);
  header = MakeHeader(device);
  header.base[KeyOf(0x44)] = 0;
  EXPECT_EQ(BundleWriter::Create(dir.Sub("a.bundle"), header).status().code(), Code::kInvalidInput);
  EXPECT_EQ(BundleWriter::Create(dir.Sub("no/such/folder/a.bundle"), MakeHeader(device)).status().code(),
            Code::kNotFound);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(BundleTest, AnAbandonedWriterLeavesNoFile) {
  TempDir dir;
  Device device;
  std::string path = dir.Sub("farsta.bundle");
  {
    auto writer = BundleWriter::Create(path, MakeHeader(device));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Add(device.Next()).ok());
    EXPECT_TRUE(fs::exists(path + ".partial"));
    EXPECT_FALSE(fs::exists(path));
    BundleWriter moved = std::move(writer).value();  // the temporary file moves with it
    ASSERT_TRUE(moved.Add(device.Next()).ok());
    EXPECT_EQ(moved.commit_count(), 2u);
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));

  // Moving a writer onto an unfinished one abandons that one.
  auto first = BundleWriter::Create(dir.Sub("first.bundle"), MakeHeader(device));
  auto second = BundleWriter::Create(dir.Sub("second.bundle"), MakeHeader(device));
  ASSERT_TRUE(first.ok() && second.ok());
  *first = std::move(second).value();
  EXPECT_FALSE(fs::exists(dir.Sub("first.bundle.partial")));
  ASSERT_TRUE(first->Finish().ok());
  EXPECT_TRUE(ReadAll(dir.Sub("second.bundle")).status.ok());
}

TEST(BundleTest, FinishNeverReplacesAFileThatAppearedMeanwhile) {
  TempDir dir;
  Device device;
  std::string path = dir.Sub("farsta.bundle");
  {
    auto writer = BundleWriter::Create(path, MakeHeader(device));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Add(device.Next()).ok());
    WriteFile(path, "someone else's");
    Status finished = writer->Finish();
    EXPECT_EQ(finished.code(), Code::kInvalidInput) << finished.message();
    EXPECT_NE(finished.message().find("already exists"), std::string::npos) << finished.message();
  }
  EXPECT_EQ(ReadFile(path), "someone else's");
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

TEST(BundleTest, AFinishedWriterIsSpent) {
  TempDir dir;
  Device device;
  std::string path = dir.Sub("farsta.bundle");
  auto writer = BundleWriter::Create(path, MakeHeader(device));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_FALSE(writer->Add(device.Next()).ok());
  EXPECT_FALSE(writer->Finish().ok());
  ReadBack read = ReadAll(path);
  EXPECT_TRUE(read.status.ok()) << read.status.message();
  EXPECT_TRUE(read.commits.empty());
}

}  // namespace
}  // namespace samsync
