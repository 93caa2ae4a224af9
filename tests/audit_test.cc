// Audit bundles: a city's sync server log written with AuditBundleWriter, verified
// offline by VerifyAuditBundle, and every kind of tampering a server (or anyone
// between it and the auditor) could do caught and named. CompareCheckpoints on
// consistent pairs and on split views made by two copies of one server store (one
// log key) that diverge.
#include "samsync/audit.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "samsync/history.h"
#include "samsync/note.h"
#include "samsync/roster.h"
#include "samsync/schema/history.capnp.h"
#include "samsync/store.h"
#include "samsync/tlog.h"
#include "samsync/witness.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::AddSchool;
using testing::MakeRecord;
using testing::TempDir;
using testing::TestStore;

constexpr int64_t kStart = 1479211200000;  // TestStore's clock: 2016-11-15 12:00 UTC

// Fsyncs cost nothing on tmpfs; every verification makes a store.
class TmpfsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
  }
};
const auto* const kTmpfs = ::testing::AddGlobalTestEnvironment(new TmpfsEnvironment);

// The pieces of an audit bundle, as a test can alter them before writing.
struct Parts {
  std::string server = "tcp://sync.stockholm.se:7400";
  std::vector<std::vector<uint8_t>> rosters;
  std::string checkpoint;
  std::string statement;
  std::vector<std::vector<uint8_t>> commits;
};

Status Write(const Parts& parts, const std::string& path) {
  SAMSYNC_ASSIGN_OR_RETURN(AuditBundleWriter writer, AuditBundleWriter::Create(path, parts.server, kStart));
  for (const auto& roster : parts.rosters) SAMSYNC_RETURN_IF_ERROR(writer.AddRoster(roster));
  SAMSYNC_RETURN_IF_ERROR(writer.SetCheckpoint(parts.checkpoint, parts.statement));
  for (const auto& commit : parts.commits) SAMSYNC_RETURN_IF_ERROR(writer.AddCommit(commit));
  return writer.Finish();
}

// A server store (city-wide, with a transparency log) in `dir`, its key file beside it.
std::unique_ptr<Store> MakeServer(const std::string& dir, const Clock& clock) {
  EXPECT_TRUE(CreateKeyFile(dir + ".key").ok());
  CreateOptions options;
  options.city_wide = true;
  options.transparency_log = true;
  auto store = Store::Create(dir, KeySource::KeyFile(dir + ".key"), std::move(options), clock);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::unique_ptr<Store> OpenServer(const std::string& dir, const Clock& clock) {
  auto store = Store::Open(dir, KeySource::KeyFile(dir + ".key"), clock);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Imports into `to` every commit of `from` that it lacks.
void Push(Store& from, Store& to) {
  auto heads = to.Heads();
  ASSERT_TRUE(heads.ok());
  std::vector<std::vector<uint8_t>> bytes;
  ASSERT_TRUE(from.CommitsAfter(*heads, [&](const Commit& c) {
                    bytes.push_back(c.signed_bytes());
                    return true;
                  }).ok());
  size_t next = 0;
  auto imported = to.ImportCommits([&]() -> Result<std::optional<Commit>> {
    if (next == bytes.size()) return std::optional<Commit>();
    SAMSYNC_ASSIGN_OR_RETURN(Commit c, Commit::Decode(bytes[next++]));
    return std::optional<Commit>(std::move(c));
  });
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  ASSERT_EQ(imported->waiting, 0u);
}

void Rename(Store& store, const RecordId& id, const std::string& name) {
  auto record = store.Get(id);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "name"), name).ok());
  WriteBatch batch;
  batch.Put(std::move(*record));
  ASSERT_TRUE(store.Apply(batch).ok());
}

RosterEntry Entry(const Store& store, std::string district, Role role, std::string label) {
  RosterEntry entry;
  entry.signing_key = store.device_key();
  entry.transport_key = store.transport_key();
  entry.district = std::move(district);
  entry.role = role;
  entry.label = std::move(label);
  entry.added_ms = kStart;
  return entry;
}

// A city: two Skarpnäck devices (which sync with each other, so their commits see
// each other's), one Farsta device, and the sync server, all in roster versions 1 and 2.
class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_dir_ = dirs_.Sub("server");
    server_ = MakeServer(server_dir_, server_clock_);
    ASSERT_NE(server_, nullptr);
    std::vector<RosterEntry> entries = {Entry(s1_.store(), "Skarpnäck", Role::kWriter, "skarpnäck 1"),
                                        Entry(s2_.store(), "Skarpnäck", Role::kWriter, "skarpnäck 2"),
                                        Entry(f1_.store(), "Farsta", Role::kWriter, "farsta 1"),
                                        Entry(*server_, "", Role::kServer, "sync server")};
    auto v1 = Roster::Sign(root_, "stockholm.se", 1, kStart, entries);
    ASSERT_TRUE(v1.ok()) << v1.status().message();
    RosterEntry auditor;
    auditor.signing_key = SigningKey::Generate().public_key();
    auditor.transport_key = TransportKey::Generate().public_key();
    auditor.role = Role::kAuditor;
    auditor.label = "city audit office";
    entries.push_back(auditor);
    auto v2 = Roster::Sign(root_, "stockholm.se", 2, kStart + 1000, entries);
    ASSERT_TRUE(v2.ok()) << v2.status().message();
    roster_ = *v2;
    for (Store* s : {&s1_.store(), &s2_.store(), &f1_.store(), server_.get()}) {
      ASSERT_TRUE(s->InstallRoster(v1->signed_bytes()).ok());
      ASSERT_TRUE(s->InstallRoster(v2->signed_bytes()).ok());
    }
    MakeHistory(6);
  }

  // `rounds` rounds of work: each device adds and renames schools; the Skarpnäck
  // devices exchange commits; everything goes to the server.
  void MakeHistory(int rounds) {
    for (int round = 0; round < rounds; ++round) {
      for (TestStore* t : {&s1_, &s2_, &f1_}) {
        t->clock().AdvanceMs(60'000);
        RecordId school = AddSchool(t->store(), "Skolan " + std::to_string(counter_++));
        Rename(t->store(), school, "Nya skolan " + std::to_string(counter_++));
      }
      Push(s1_.store(), s2_.store());
      Push(s2_.store(), s1_.store());
      Push(s1_.store(), *server_);
      Push(f1_.store(), *server_);
    }
  }

  // The server's log as an audit bundle's parts, its checkpoint cosigned by every
  // writer.
  Parts PartsOf(Store& server, bool cosign = true) {
    Parts parts;
    auto rosters = server.RosterHistory();
    EXPECT_TRUE(rosters.ok());
    if (rosters.ok()) parts.rosters = *rosters;
    auto checkpoint = server.SignCheckpoint();
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status().message();
    if (!checkpoint.ok()) return parts;
    if (cosign) {
      auto note = ParseNote(checkpoint->note);
      EXPECT_TRUE(note.ok());
      for (TestStore* t : {&s1_, &s2_, &f1_}) {
        auto line = t->store().CosignCheckpoint(note->text);
        EXPECT_TRUE(line.ok()) << line.status().message();
        Status added = server.AddCosignature({checkpoint->size, t->store().device_key(), *line});
        EXPECT_TRUE(added.ok()) << added.message();
      }
    }
    auto held = server.CheckpointAt(checkpoint->size);
    EXPECT_TRUE(held.ok());
    parts.checkpoint = held->note;
    auto statement = server.SignStateStatement();
    EXPECT_TRUE(statement.ok()) << statement.status().message();
    parts.statement = *statement;
    EXPECT_TRUE(server.LogCommits(0, [&](uint64_t, const Commit& c) {
                        parts.commits.push_back(c.signed_bytes());
                        return true;
                      }).ok());
    return parts;
  }

  std::string WriteOrDie(const Parts& parts) {
    std::string path = dirs_.Sub("bundle-" + std::to_string(bundles_++) + ".audit");
    Status written = Write(parts, path);
    EXPECT_TRUE(written.ok()) << written.message();
    return path;
  }

  AuditReport VerifyOrDie(const std::string& path) {
    AuditOptions options;
    options.root_key = root_.public_key();
    options.chunk_commits = 7;  // several chunks even for a small history
    options.temp_dir = dirs_.Sub("tmp");
    fs::create_directories(options.temp_dir);
    auto report = VerifyAuditBundle(path, options);
    EXPECT_TRUE(report.ok()) << report.status().message();
    // Whatever the outcome, the temporary store's folder is gone.
    EXPECT_TRUE(fs::is_empty(options.temp_dir));
    return report.ok() ? std::move(report).value() : AuditReport{};
  }

  // Expects the report's first failure to be of `check`, its reason holding `reason`.
  static void ExpectFailure(const AuditReport& report, AuditCheckId check, const std::string& reason) {
    ASSERT_TRUE(report.failure.has_value()) << "no failure";
    EXPECT_EQ(report.failure->check, check) << report.failure->Describe();
    EXPECT_NE(report.failure->reason.find(reason), std::string::npos) << report.failure->Describe();
    EXPECT_EQ(report.checks[static_cast<int>(check)].outcome, AuditOutcome::kFailed);
  }

  // The index of the first leaf whose commit and the next one's are by the same
  // device (`same`) or by devices of different districts (`!same`).
  static size_t AdjacentPair(const Parts& parts, bool same) {
    for (size_t i = 0; i + 1 < parts.commits.size(); ++i) {
      auto a = Commit::Decode(parts.commits[i]);
      auto b = Commit::Decode(parts.commits[i + 1]);
      if (same ? a->author() == b->author() : a->district() != b->district()) return i;
    }
    ADD_FAILURE() << "no such pair";
    return 0;
  }

  // Moves the Skarpnäck and Farsta devices on (new commits), pushing one round to each
  // server in `to`.
  void DivergeInto(Store& server, TestStore& device, const std::string& name) {
    device.clock().AdvanceMs(60'000);
    AddSchool(device.store(), name);
    Push(device.store(), server);
  }

  // Closes the server, copies its folder (its log key with it), and opens both.
  std::unique_ptr<Store> Fork() {
    server_.reset();
    std::string copy = dirs_.Sub("fork");
    fs::copy(server_dir_, copy, fs::copy_options::recursive);
    fs::copy_file(server_dir_ + ".key", copy + ".key");
    server_ = OpenServer(server_dir_, server_clock_);
    return OpenServer(copy, server_clock_);
  }

  TempDir dirs_;
  SigningKey root_ = SigningKey::Generate();
  TestStore s1_{"Skarpnäck"}, s2_{"Skarpnäck"}, f1_{"Farsta"};
  FixedClock server_clock_{kStart + 3'600'000};
  std::string server_dir_;
  std::unique_ptr<Store> server_;
  Roster roster_;
  int counter_ = 0;
  int bundles_ = 0;
};

TEST_F(AuditTest, AGoodBundleVerifiesWithTheRightCounts) {
  Parts parts = PartsOf(*server_);
  std::string path = WriteOrDie(parts);
  AuditReport report = VerifyOrDie(path);
  ASSERT_TRUE(report.ok()) << report.failure->Describe();
  for (const AuditCheck& check : report.checks) {
    EXPECT_EQ(check.outcome, AuditOutcome::kPassed) << AuditCheckName(check.id) << ": " << check.detail;
  }
  auto summary = server_->Summary();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(report.commits, 36u);  // 6 rounds × 3 devices × 2 commits
  EXPECT_EQ(report.tree_size, 36u);
  EXPECT_EQ(report.ops, 36u);
  EXPECT_EQ(report.rosters, 2u);
  EXPECT_EQ(report.roster_version, 2u);
  EXPECT_EQ(report.city, "stockholm.se");
  EXPECT_EQ(report.origin, "stockholm.se/samsync");
  EXPECT_EQ(report.server, parts.server);
  EXPECT_EQ(report.fetched_ms, kStart);
  EXPECT_EQ(report.log_key_label, "sync server");
  EXPECT_EQ(report.root, server_->SignCheckpoint()->root);
  EXPECT_EQ(report.computed_root, report.root);
  ASSERT_TRUE(report.state_hash.has_value());
  EXPECT_EQ(*report.state_hash, summary->state_hash);
  EXPECT_EQ(report.cosigners.size(), 3u);
  EXPECT_EQ(report.other_signature_lines, 0u);
  std::set<std::string> labels;
  for (const AuditCosigner& c : report.cosigners) labels.insert(c.label + "/" + c.district);
  EXPECT_EQ(labels, (std::set<std::string>{"skarpnäck 1/Skarpnäck", "skarpnäck 2/Skarpnäck", "farsta 1/Farsta"}));
  EXPECT_EQ(report.bytes, fs::file_size(path));
}

TEST_F(AuditTest, ProgressIsReportedBetweenChunks) {
  std::string path = WriteOrDie(PartsOf(*server_));
  AuditOptions options;
  options.root_key = root_.public_key();
  options.chunk_commits = 10;
  std::vector<uint64_t> seen;
  options.progress = [&](const AuditProgress& p) {
    seen.push_back(p.commits);
    EXPECT_EQ(p.tree_size, 36u);
  };
  auto report = VerifyAuditBundle(path, options);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{10, 20, 30, 36}));
}

TEST_F(AuditTest, ARewrittenCommitIsNamed) {
  Parts parts = PartsOf(*server_);
  // One byte of an old commit: a letter of a school's name.
  std::vector<uint8_t>& old = parts.commits[4];
  std::string text(old.begin(), old.end());
  size_t at = text.find("kolan");
  ASSERT_NE(at, std::string::npos);
  old[at] = 'K';
  auto rewritten = Commit::Decode(old);
  ASSERT_TRUE(rewritten.ok());
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCommits, "signature does not verify");
  EXPECT_EQ(report.failure->leaf, 4u);
  EXPECT_EQ(report.failure->commit, rewritten->id());
  EXPECT_EQ(report.failure->author, rewritten->author());
  EXPECT_FALSE(report.failure->author_name.empty());
  // The tree no longer matches either; the state is not derived.
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kFailed);
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kState)].outcome, AuditOutcome::kNotRun);
  EXPECT_NE(report.failure->Describe().find("leaf 4, commit " + rewritten->id().ToHex().substr(0, 16)),
            std::string::npos)
      << report.failure->Describe();
}

TEST_F(AuditTest, ARewrittenCommitInALaterChunkIsNamedAndTheTreeStillChecked) {
  Parts parts = PartsOf(*server_);
  std::vector<uint8_t>& old = parts.commits[30];  // chunk 5 of 7 commits
  size_t at = std::string(old.begin(), old.end()).find("kolan");
  ASSERT_NE(at, std::string::npos);
  old[at] = 'K';
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCommits, "signature does not verify");
  EXPECT_EQ(report.failure->leaf, 30u);
  EXPECT_EQ(report.commits, 36u);
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kFormat)].outcome, AuditOutcome::kPassed);
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kFailed);
}

TEST_F(AuditTest, ACommitThatDoesNotDecodeIsNamed) {
  Parts parts = PartsOf(*server_);
  // A SignedCommit whose signature is 10 bytes: a well-formed entry, not a commit.
  std::vector<uint8_t>& bytes = parts.commits[5];
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader source(words);
  capnp::MallocMessageBuilder message;
  auto out = message.initRoot<schema::SignedCommit>();
  out.setCommit(source.getRoot<schema::SignedCommit>().getCommit());
  out.initSignature(10);
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  auto flat_bytes = flat.asBytes();
  bytes.assign(flat_bytes.begin(), flat_bytes.end());
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCommits, "signature is not 64 bytes");
  EXPECT_EQ(report.failure->leaf, 5u);
  // The commit id is the inner bytes' hash, unchanged: the tree still matches.
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kPassed);
}

TEST_F(AuditTest, ADroppedCommitIsNamed) {
  Parts parts = PartsOf(*server_);
  size_t i = AdjacentPair(parts, /*same=*/true);
  auto dropped = Commit::Decode(parts.commits[i]);
  auto next = Commit::Decode(parts.commits[i + 1]);
  parts.commits.erase(parts.commits.begin() + static_cast<std::ptrdiff_t>(i));
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCommits, "missing");
  EXPECT_EQ(report.failure->leaf, i);
  EXPECT_EQ(report.failure->commit, next->id());
  EXPECT_EQ(report.failure->seq, next->seq());
  EXPECT_NE(report.failure->reason.find("seq " + std::to_string(dropped->seq())), std::string::npos)
      << report.failure->reason;
}

TEST_F(AuditTest, TheLastCommitDroppedIsCaughtByTheTree) {
  Parts parts = PartsOf(*server_);
  parts.commits.pop_back();
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kTree, "35 commits");
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kCommits)].outcome, AuditOutcome::kPassed);
}

TEST_F(AuditTest, TwoCommitsOfOneDeviceSwappedAreNamed) {
  Parts parts = PartsOf(*server_);
  size_t i = AdjacentPair(parts, /*same=*/true);
  std::swap(parts.commits[i], parts.commits[i + 1]);
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCommits, "out of order");
  EXPECT_EQ(report.failure->leaf, i);
}

TEST_F(AuditTest, TwoIndependentCommitsSwappedAreCaughtByTheTree) {
  Parts parts = PartsOf(*server_);
  size_t i = AdjacentPair(parts, /*same=*/false);
  std::swap(parts.commits[i], parts.commits[i + 1]);
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  // Each chain is whole and the state is the same: only the signed order differs.
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kCommits)].outcome, AuditOutcome::kPassed);
  ExpectFailure(report, AuditCheckId::kTree, "order differ");
}

TEST_F(AuditTest, ACheckpointResignedByAKeyNotInTheRosterIsNamed) {
  Parts parts = PartsOf(*server_);
  auto note = ParseNote(parts.checkpoint);
  auto checkpoint = ParseCheckpoint(note->text);
  checkpoint->root.bytes[0] ^= 1;
  SigningKey impostor = SigningKey::Generate();
  auto forged = SignNote(*FormatCheckpoint(*checkpoint), checkpoint->origin, impostor);
  ASSERT_TRUE(forged.ok());
  parts.checkpoint = *forged;
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCheckpoint, "not signed by the log key");
  // Nothing is compared with a checkpoint that is not the log's.
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kNotRun);
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kCommits)].outcome, AuditOutcome::kPassed);
}

TEST_F(AuditTest, AnAlteredCosignatureIsNamed) {
  Parts parts = PartsOf(*server_);
  auto note = ParseNote(parts.checkpoint);
  ASSERT_TRUE(note.ok());
  std::string farsta = WitnessName("stockholm.se/samsync", f1_->device_key());
  bool altered = false;
  for (NoteSignature& s : note->signatures) {
    if (s.name != farsta) continue;
    s.signature.back() ^= 0x40;
    altered = true;
  }
  ASSERT_TRUE(altered);
  parts.checkpoint = *FormatNote(*note);
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kCheckpoint, "the cosignature of farsta 1 (Farsta) does not verify");
  EXPECT_EQ(report.cosigners.size(), 2u);
  EXPECT_EQ(report.other_signature_lines, 1u);
}

TEST_F(AuditTest, AStateStatementWithAnotherHashIsNamed) {
  Parts parts = PartsOf(*server_);
  // Altered in the text: the log's signature no longer verifies.
  Parts altered = parts;
  size_t at = altered.statement.find('\n', altered.statement.find('\n') + 1) + 1;
  altered.statement[at] = altered.statement[at] == '0' ? '1' : '0';
  AuditReport report = VerifyOrDie(WriteOrDie(altered));
  ExpectFailure(report, AuditCheckId::kState, "not signed by the log key");

  // Signed by the log key, over another state of the same size: a copy of the server
  // (same log key) that merged other commits.
  std::unique_ptr<Store> fork = Fork();
  DivergeInto(*server_, f1_, "Bara i servern");
  DivergeInto(*fork, s1_, "Bara i kopian");
  Parts honest = PartsOf(*server_, /*cosign=*/false);
  auto lying = fork->SignStateStatement();
  ASSERT_TRUE(lying.ok());
  honest.statement = *lying;
  report = VerifyOrDie(WriteOrDie(honest));
  ExpectFailure(report, AuditCheckId::kState, "the state statement says");
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kPassed);
}

TEST_F(AuditTest, ARosterFromAnotherRootKeyIsNamed) {
  Parts parts = PartsOf(*server_);
  SigningKey other_root = SigningKey::Generate();
  auto foreign = Roster::Sign(other_root, "stockholm.se", 3, kStart + 2000, roster_.entries());
  ASSERT_TRUE(foreign.ok());
  parts.rosters.push_back(foreign->signed_bytes());
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kRosters, "roster 3 of the bundle: it is not signed by the city's root key");
  for (AuditCheckId id : {AuditCheckId::kCheckpoint, AuditCheckId::kCommits, AuditCheckId::kState}) {
    EXPECT_EQ(report.checks[static_cast<int>(id)].outcome, AuditOutcome::kNotRun) << AuditCheckName(id);
  }
  // The format is still checked to the end.
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kFormat)].outcome, AuditOutcome::kPassed);
}

TEST_F(AuditTest, ARosterGoingBackIsNamed) {
  Parts parts = PartsOf(*server_);
  std::swap(parts.rosters[0], parts.rosters[1]);
  AuditReport report = VerifyOrDie(WriteOrDie(parts));
  ExpectFailure(report, AuditCheckId::kRosters, "may not replace the one before it");
}

TEST_F(AuditTest, ATruncatedFileIsNamed) {
  std::string path = WriteOrDie(PartsOf(*server_));
  fs::resize_file(path, fs::file_size(path) - 40);
  AuditReport report = VerifyOrDie(path);
  ExpectFailure(report, AuditCheckId::kFormat, "cut short");
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kTree)].outcome, AuditOutcome::kNotRun);
  EXPECT_EQ(report.checks[static_cast<int>(AuditCheckId::kState)].outcome, AuditOutcome::kNotRun);

  // Cut inside the header: nothing says it is an audit bundle at all (bad input).
  fs::resize_file(path, 20);
  AuditOptions options;
  options.root_key = root_.public_key();
  auto refused = VerifyAuditBundle(path, options);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("ends inside its first entry"), std::string::npos)
      << refused.status().message();
}

TEST_F(AuditTest, TrailingGarbageIsNamed) {
  std::string path = WriteOrDie(PartsOf(*server_));
  std::ofstream(path, std::ios::app | std::ios::binary) << "garbage";
  AuditReport report = VerifyOrDie(path);
  ExpectFailure(report, AuditCheckId::kFormat, "bytes follow the audit bundle's end entry");
}

// The framed messages of a file, each with its framing.
std::vector<std::string> SplitEntries(const std::string& bytes) {
  std::vector<std::string> entries;
  size_t at = 0;
  auto le32 = [&](size_t p) {
    return uint32_t{static_cast<uint8_t>(bytes[p])} | uint32_t{static_cast<uint8_t>(bytes[p + 1])} << 8 |
           uint32_t{static_cast<uint8_t>(bytes[p + 2])} << 16 | uint32_t{static_cast<uint8_t>(bytes[p + 3])} << 24;
  };
  while (at < bytes.size()) {
    size_t segments = le32(at) + size_t{1};
    size_t size = (4 + 4 * segments + 7) / 8 * 8;
    for (size_t i = 0; i < segments; ++i) size += size_t{le32(at + 4 + 4 * i)} * 8;
    entries.push_back(bytes.substr(at, size));
    at += size;
  }
  return entries;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST_F(AuditTest, EntriesOutOfOrderAreNamed) {
  std::string path = WriteOrDie(PartsOf(*server_));
  std::vector<std::string> entries = SplitEntries(ReadAll(path));
  ASSERT_EQ(entries.size(), 1u + 2 + 2 + 36 + 1);  // header, rosters, checkpoint and statement, commits, end
  // The statement before the checkpoint.
  std::swap(entries[3], entries[4]);
  std::string swapped = dirs_.Sub("swapped.audit");
  {
    std::ofstream out(swapped, std::ios::binary);
    for (const std::string& e : entries) out << e;
  }
  AuditReport report = VerifyOrDie(swapped);
  ExpectFailure(report, AuditCheckId::kFormat, "the entry after roster 2 is a state statement; expected a roster or the checkpoint");
  // An end entry that does not count the commits: one commit entry removed by hand.
  std::swap(entries[3], entries[4]);
  entries.erase(entries.begin() + 10);
  std::string short_count = dirs_.Sub("short.audit");
  {
    std::ofstream out(short_count, std::ios::binary);
    for (const std::string& e : entries) out << e;
  }
  report = VerifyOrDie(short_count);
  ExpectFailure(report, AuditCheckId::kFormat, "end entry counts 36 commits, but it holds 35");
  // A hostile framing: a segment count far beyond the bound.
  std::string hostile = ReadAll(path);
  size_t first_commit = 0;
  for (size_t i = 0; i < 5; ++i) first_commit += SplitEntries(hostile)[i].size();
  hostile[first_commit + 1] = '\x7f';
  std::string hostile_path = dirs_.Sub("hostile.audit");
  std::ofstream(hostile_path, std::ios::binary) << hostile;
  report = VerifyOrDie(hostile_path);
  ExpectFailure(report, AuditCheckId::kFormat, "segments (at most 1024)");
}

TEST_F(AuditTest, ABundleWithoutRostersIsNeverWritten) {
  Parts parts = PartsOf(*server_);
  parts.rosters.clear();
  Status refused = Write(parts, dirs_.Sub("no-roster.audit"));
  EXPECT_EQ(refused.code(), Code::kInvalidInput) << refused.message();
  EXPECT_FALSE(fs::exists(dirs_.Sub("no-roster.audit")));
  EXPECT_FALSE(fs::exists(dirs_.Sub("no-roster.audit.partial")));
}

TEST_F(AuditTest, BadInputIsAnErrorNotAReport) {
  AuditOptions options;
  options.root_key = root_.public_key();
  EXPECT_EQ(VerifyAuditBundle(dirs_.Sub("missing"), options).status().code(), Code::kNotFound);
  std::ofstream(dirs_.Sub("note")) << "stockholm.se/samsync\n3\nAAAA\n";
  EXPECT_EQ(VerifyAuditBundle(dirs_.Sub("note"), options).status().code(), Code::kInvalidInput);
  std::ofstream(dirs_.Sub("empty"));
  EXPECT_EQ(VerifyAuditBundle(dirs_.Sub("empty"), options).status().code(), Code::kInvalidInput);
  std::string path = WriteOrDie(PartsOf(*server_));
  EXPECT_EQ(VerifyAuditBundle(path, AuditOptions{}).status().code(), Code::kInvalidInput);  // no root key
  EXPECT_EQ(IsAuditBundle(path).value(), true);
  EXPECT_EQ(IsAuditBundle(dirs_.Sub("note")).value(), false);
  EXPECT_EQ(IsAuditBundle(dirs_.Sub("missing")).status().code(), Code::kNotFound);
}

TEST_F(AuditTest, TheWriterRefusesToOverwriteAndLeavesNothingUnfinished) {
  Parts parts = PartsOf(*server_);
  std::string path = WriteOrDie(parts);
  EXPECT_EQ(AuditBundleWriter::Create(path, "x", 0).status().code(), Code::kInvalidInput);
  std::string other = dirs_.Sub("unfinished.audit");
  {
    auto writer = AuditBundleWriter::Create(other, "x", 0);
    ASSERT_TRUE(writer.ok());
    EXPECT_EQ(writer->AddCommit(parts.commits[0]).code(), Code::kInvalidInput);  // before the checkpoint
    EXPECT_EQ(writer->SetCheckpoint(parts.checkpoint, parts.statement).code(), Code::kInvalidInput);  // no roster
    ASSERT_TRUE(writer->AddRoster(parts.rosters[0]).ok());
    EXPECT_EQ(writer->AddRoster(std::vector<uint8_t>{1, 2, 3}).code(), Code::kInvalidInput);
    ASSERT_TRUE(writer->SetCheckpoint(parts.checkpoint, parts.statement).ok());
    EXPECT_EQ(writer->AddRoster(parts.rosters[1]).code(), Code::kInvalidInput);  // after the checkpoint
    EXPECT_TRUE(fs::exists(other + ".partial"));
  }
  EXPECT_FALSE(fs::exists(other));
  EXPECT_FALSE(fs::exists(other + ".partial"));
}

TEST_F(AuditTest, TheHeadOfABundleIsReadAndItsRostersChecked) {
  Parts parts = PartsOf(*server_);
  std::string path = WriteOrDie(parts);
  auto head = ReadAuditBundleHead(path, root_.public_key());
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->rosters, 2u);
  EXPECT_EQ(head->roster.version(), 2u);
  EXPECT_EQ(head->checkpoint_note, parts.checkpoint);
  EXPECT_EQ(head->statement_note, parts.statement);
  EXPECT_EQ(ReadAuditBundleHead(path, SigningKey::Generate().public_key()).status().code(), Code::kUnauthorised);
}

// --- CompareCheckpoints ------------------------------------------------------------

TEST_F(AuditTest, CheckpointsOfOneHistoryAreConsistent) {
  std::string early = server_->SignCheckpoint()->note;
  MakeHistory(2);
  Parts parts = PartsOf(*server_);
  std::string bundle = WriteOrDie(parts);

  auto same = CompareCheckpoints(parts.checkpoint, parts.checkpoint, roster_);
  ASSERT_TRUE(same.ok()) << same.status().message();
  EXPECT_TRUE(same->consistent);
  EXPECT_TRUE(same->proof.empty());

  auto compared = CompareCheckpoints(early, parts.checkpoint, roster_, bundle);
  ASSERT_TRUE(compared.ok()) << compared.status().message();
  EXPECT_TRUE(compared->consistent) << compared->explanation;
  EXPECT_EQ(compared->a.size, 36u);
  EXPECT_EQ(compared->b.size, 48u);
  EXPECT_FALSE(compared->proof.empty());
  EXPECT_TRUE(VerifyConsistency(36, 48, compared->a.root, compared->b.root, compared->proof).ok());
  // The same proof the server would give.
  EXPECT_EQ(compared->proof, *server_->LogConsistencyProof(36, 48));
  // Either order.
  auto reversed = CompareCheckpoints(parts.checkpoint, early, roster_, bundle);
  ASSERT_TRUE(reversed.ok());
  EXPECT_TRUE(reversed->consistent);
}

TEST_F(AuditTest, TwoTreesOfOneSizeAreASplitView) {
  std::unique_ptr<Store> fork = Fork();
  DivergeInto(*server_, f1_, "Farsta ser detta");
  DivergeInto(*fork, s1_, "Skarpnäck ser detta");
  auto a = server_->SignCheckpoint();
  auto b = fork->SignCheckpoint();
  ASSERT_EQ(a->size, b->size);
  auto compared = CompareCheckpoints(a->note, b->note, roster_);
  ASSERT_TRUE(compared.ok()) << compared.status().message();
  EXPECT_FALSE(compared->consistent);
  EXPECT_NE(compared->explanation.find("two different trees"), std::string::npos) << compared->explanation;
  EXPECT_EQ(compared->a_note, a->note);
  EXPECT_EQ(compared->b_note, b->note);
}

TEST_F(AuditTest, TwoHistoriesOfDifferentSizesAreASplitView) {
  std::unique_ptr<Store> fork = Fork();
  DivergeInto(*server_, f1_, "Farsta ser detta");
  DivergeInto(*fork, s1_, "Skarpnäck ser detta");
  DivergeInto(*fork, s1_, "och detta");
  auto small = server_->SignCheckpoint();
  Parts large = PartsOf(*fork, /*cosign=*/false);
  std::string bundle = WriteOrDie(large);
  auto compared = CompareCheckpoints(small->note, large.checkpoint, roster_, bundle);
  ASSERT_TRUE(compared.ok()) << compared.status().message();
  EXPECT_FALSE(compared->consistent);
  EXPECT_NE(compared->explanation.find("two histories"), std::string::npos) << compared->explanation;

  // The smaller history's bundle does not hold the larger's leaves.
  std::string wrong = WriteOrDie(PartsOf(*server_, /*cosign=*/false));
  auto refused = CompareCheckpoints(small->note, large.checkpoint, roster_, wrong);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("holding the larger checkpoint's leaves"), std::string::npos)
      << refused.status().message();
}

TEST_F(AuditTest, DifferentSizesWithoutLeavesFailClearly) {
  std::string early = server_->SignCheckpoint()->note;
  MakeHistory(1);
  std::string later = server_->SignCheckpoint()->note;
  auto compared = CompareCheckpoints(early, later, roster_);
  EXPECT_EQ(compared.status().code(), Code::kInvalidInput);
  EXPECT_NE(compared.status().message().find("give an audit bundle holding the larger checkpoint's leaves"),
            std::string::npos)
      << compared.status().message();
}

TEST_F(AuditTest, ACheckpointNotSignedByTheLogKeyCannotBeCompared) {
  std::string good = server_->SignCheckpoint()->note;
  auto note = ParseNote(good);
  auto forged = SignNote(note->text, "stockholm.se/samsync", SigningKey::Generate());
  auto compared = CompareCheckpoints(good, *forged, roster_);
  EXPECT_EQ(compared.status().code(), Code::kBadSignature) << compared.status().message();
}

// --- A larger history, for figures: SAMSYNC_AUDIT_BENCH_OPS=1000000 -----------------

long PeakRssKib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// This process's anonymous resident memory (heap, stacks: not the store's mapped
// file, which is page cache), from /proc/self/status.
long RssAnonKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtol(line.c_str() + 8, nullptr, 10);
  }
  return 0;
}

TEST(AuditBench, VerifiesALargeHistory) {
  const char* ops_env = std::getenv("SAMSYNC_AUDIT_BENCH_OPS");
  if (ops_env == nullptr) GTEST_SKIP() << "set SAMSYNC_AUDIT_BENCH_OPS to run";
  const uint64_t total_ops = std::strtoull(ops_env, nullptr, 10);
  const char* per_env = std::getenv("SAMSYNC_AUDIT_BENCH_OPS_PER_COMMIT");
  const uint64_t per_commit = per_env != nullptr ? std::strtoull(per_env, nullptr, 10) : 5;
  const std::vector<std::string> districts = {"Skarpnäck", "Farsta", "Bromma", "Kungsholmen"};
  TempDir dirs;
  FixedClock clock(kStart);
  SigningKey root = SigningKey::Generate();
  std::vector<std::unique_ptr<TestStore>> devices;
  for (const std::string& d : districts) devices.push_back(std::make_unique<TestStore>(d));
  std::unique_ptr<Store> server = MakeServer(dirs.Sub("server"), clock);
  std::vector<RosterEntry> entries;
  for (size_t i = 0; i < devices.size(); ++i) {
    entries.push_back(Entry(devices[i]->store(), districts[i], Role::kWriter, "device " + std::to_string(i)));
  }
  entries.push_back(Entry(*server, "", Role::kServer, "sync server"));
  auto roster = Roster::Sign(root, "stockholm.se", 1, kStart, entries);
  ASSERT_TRUE(roster.ok());
  for (auto& d : devices) ASSERT_TRUE(d->store().InstallRoster(roster->signed_bytes()).ok());
  ASSERT_TRUE(server->InstallRoster(roster->signed_bytes()).ok());

  auto t0 = std::chrono::steady_clock::now();
  uint64_t made = 0, n = 0;
  while (made < total_ops) {
    for (auto& d : devices) {
      WriteBatch batch;
      for (uint64_t k = 0; k < per_commit; ++k) {
        batch.Put(MakeRecord(RecordType::kSchool, {{"name", "Skola " + std::to_string(n++)},
                                                   {"principal", "municipal"},
                                                   {"forms", "compulsory"}}));
      }
      ASSERT_TRUE(d->store().Apply(batch).ok());
      made += per_commit;
    }
    if (made % (per_commit * devices.size() * 500) == 0 || made >= total_ops) {
      for (auto& d : devices) Push(d->store(), *server);
    }
  }
  auto checkpoint = server->SignCheckpoint();
  ASSERT_TRUE(checkpoint.ok());
  std::string path = dirs.Sub("city.audit");
  {
    auto writer = AuditBundleWriter::Create(path, "bench", kStart);
    ASSERT_TRUE(writer.ok());
    auto rosters = server->RosterHistory();
    ASSERT_TRUE(rosters.ok());
    for (const auto& r : *rosters) ASSERT_TRUE(writer->AddRoster(r).ok());
    ASSERT_TRUE(writer->SetCheckpoint(checkpoint->note, *server->SignStateStatement()).ok());
    Status added;
    ASSERT_TRUE(server->LogCommits(0, [&](uint64_t, const Commit& c) {
                        added = writer->AddCommit(c.signed_bytes());
                        return added.ok();
                      }).ok());
    ASSERT_TRUE(added.ok());
    ASSERT_TRUE(writer->Finish().ok());
  }
  double made_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (const char* keep = std::getenv("SAMSYNC_AUDIT_BENCH_KEEP"); keep != nullptr) {
    // For `samsync audit verify` (and a profiler) on the same bundle.
    fs::copy_file(path, keep, fs::copy_options::overwrite_existing);
    std::cout << "audit bench: kept " << keep << ", root key " << root.public_key().ToHex() << "\n";
  }
  server.reset();
  devices.clear();

  long anon_before = RssAnonKib();
  long anon_peak = anon_before;
  double merged_at = 0;
  AuditOptions options;
  options.root_key = root.public_key();
  options.progress = [&](const AuditProgress& p) {
    anon_peak = std::max(anon_peak, RssAnonKib());
    merged_at = p.elapsed_seconds;
  };
  auto report = VerifyAuditBundle(path, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_TRUE(report->ok()) << report->failure->Describe();
  double s = report->elapsed_seconds;

  // The raw rates in the same run: Ed25519 verifies of commit-sized messages, SHA-256.
  const int kRaw = 20000;
  SigningKey key = SigningKey::Generate();
  std::vector<uint8_t> message(fs::file_size(path) / std::max<uint64_t>(report->commits, 1), 7);
  Signature sig = key.Sign(message);
  auto r0 = std::chrono::steady_clock::now();
  int valid = 0;
  for (int i = 0; i < kRaw; ++i) valid += VerifySignature(key.public_key(), message, sig) ? 1 : 0;
  double verify_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
  EXPECT_EQ(valid, kRaw);
  r0 = std::chrono::steady_clock::now();
  Hash h;
  for (int i = 0; i < kRaw * 10; ++i) h = Sha256(message);
  double sha_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();

  std::cout << "audit bench: " << report->commits << " commits, " << report->ops << " ops, "
            << fs::file_size(path) / 1048576 << " MiB bundle (made in " << made_s << " s)\n"
            << "  verify    " << s << " s: " << static_cast<uint64_t>(static_cast<double>(report->commits) / s) << " commits/s, "
            << static_cast<uint64_t>(static_cast<double>(report->ops) / s) << " ops/s\n"
            << "  raw       Ed25519 verify " << static_cast<uint64_t>(kRaw / verify_s) << "/s on one core ("
            << message.size() << "-byte messages), SHA-256 " << static_cast<uint64_t>(kRaw * 10 / sha_s)
            << "/s; cores " << std::thread::hardware_concurrency() << "\n"
            << "  merge     done at " << merged_at << " s (then the state hash and clean-up)\n"
            << "  memory    anonymous RSS " << anon_before / 1024 << " MiB before the verify, at most "
            << anon_peak / 1024 << " MiB during it (sampled each chunk); peak RSS of the process "
            << PeakRssKib() / 1024 << " MiB (with the generation and mapped store files)\n";
}

}  // namespace
}  // namespace samsync
