// The sync server's transparency log kept in its store (Store::SignCheckpoint and the
// Log* calls, store_log.cc) and the witness checks of witness.h, through the engine:
// every accepted commit is one leaf, proofs from the stored tree verify against the
// signed checkpoints, cosignatures are checked before they are kept, and a witness
// refuses a log that shrank or forked.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "samsync/note.h"
#include "samsync/store.h"
#include "samsync/tlog.h"
#include "samsync/witness.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::TempDir;
using testing::TestStore;

constexpr int64_t kStart = 1'479'211'200'000;  // 2016-11-15 12:00 UTC

Checkpoint Body(const Store::LogCheckpoint& c) { return Checkpoint{c.origin, c.size, c.root, {}}; }

// A district machine, a witness machine of another district, and the server's store,
// all in one roster that names the server (its log key).
class StoreLogTest : public ::testing::Test {
 protected:
  StoreLogTest() : district_("Farsta"), witness_("Bromma"), clock_(kStart + 3'600'000) {
    std::string key = dirs_.Sub("server.key");
    EXPECT_TRUE(CreateKeyFile(key).ok());
    CreateOptions options;
    options.city_wide = true;
    options.transparency_log = true;
    auto server = Store::Create(dirs_.Sub("server"), KeySource::KeyFile(key), std::move(options), clock_);
    EXPECT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    entries_ = {Entry(district_.store(), Role::kWriter, "Farsta"), Entry(witness_.store(), Role::kWriter, "Bromma"),
                Entry(*server_, Role::kServer, "")};
    Install(1);
  }

  static RosterEntry Entry(const Store& store, Role role, std::string district) {
    RosterEntry entry;
    entry.signing_key = store.device_key();
    entry.transport_key = store.transport_key();
    entry.role = role;
    entry.district = std::move(district);
    entry.label = std::string(RoleName(role)) + " " + entry.district;
    return entry;
  }
  void Install(uint64_t version) {
    auto roster = Roster::Sign(root_, "stockholm.se", version, kStart, entries_);
    ASSERT_TRUE(roster.ok()) << roster.status().message();
    roster_ = std::make_unique<Roster>(*roster);
    for (Store* s : {&district_.store(), &witness_.store(), server_.get()}) {
      ASSERT_TRUE(s->InstallRoster(roster->signed_bytes()).ok());
    }
  }
  // `n` new commits in the district's store, pushed to the server (with `cosignature`
  // kept in the same write, when given).
  void Push(int n, const Store::Cosignature* cosignature = nullptr) {
    for (int i = 0; i < n; ++i) testing::AddSchool(district_.store(), "Skola " + std::to_string(schools_++));
    auto have = server_->Heads();
    ASSERT_TRUE(have.ok());
    std::vector<std::vector<uint8_t>> commits;
    ASSERT_TRUE(district_->CommitsAfter(*have, [&](const Commit& c) {
                             commits.push_back(c.signed_bytes());
                             return true;
                           }).ok());
    size_t next = 0;
    auto imported = server_->ImportCommits([&]() -> Result<std::optional<Commit>> {
      if (next == commits.size()) return std::optional<Commit>();
      SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode(commits[next++]));
      return std::optional<Commit>(std::move(commit));
    }, nullptr, cosignature);
    ASSERT_TRUE(imported.ok()) << imported.status().message();
  }

  // The server's latest checkpoint, opened, and the witness's cosignature of it.
  void CosignLatest(std::optional<OpenedCheckpoint>& opened, std::optional<std::string>& line) {
    auto checkpoint = server_->SignCheckpoint();
    ASSERT_TRUE(checkpoint.ok());
    auto opening = OpenCheckpoint(checkpoint->note, *roster_);
    ASSERT_TRUE(opening.ok());
    opened = std::move(opening).value();
    auto cosigned = witness_->CosignCheckpoint(opened->text);
    ASSERT_TRUE(cosigned.ok()) << cosigned.status().message();
    line = std::move(cosigned).value();
  }

  TempDir dirs_;
  TestStore district_, witness_;
  FixedClock clock_;
  SigningKey root_ = SigningKey::Generate();
  std::vector<RosterEntry> entries_;
  std::unique_ptr<Roster> roster_;
  std::unique_ptr<Store> server_;
  int schools_ = 0;
};

TEST_F(StoreLogTest, EveryAcceptedCommitIsOneLeafAndProofsVerifyAgainstSignedCheckpoints) {
  Push(3);
  auto first = server_->SignCheckpoint();
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->size, 3u);
  EXPECT_EQ(first->origin, "stockholm.se/samsync");
  Push(10);
  Push(0);  // nothing new: nothing appended
  auto second = server_->SignCheckpoint();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->size, 13u);

  // The root, recomputed from the leaves in log order, is the signed one.
  MerkleRootBuilder builder;
  std::vector<Hash> ids;
  ASSERT_TRUE(server_->LogCommits(0, [&](uint64_t index, const Commit& commit) {
                        EXPECT_EQ(index, ids.size());
                        ids.push_back(commit.id());
                        builder.Add(MerkleLeafHash(commit.id().span()));
                        return true;
                      }).ok());
  ASSERT_EQ(ids.size(), 13u);
  EXPECT_EQ(builder.Root(), second->root);
  auto opened = OpenCheckpoint(second->note, *roster_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->checkpoint.root, second->root);

  for (uint64_t i = 0; i < ids.size(); ++i) {
    auto inclusion = server_->LogInclusionProof(ids[i], 13);
    ASSERT_TRUE(inclusion.ok()) << inclusion.status().message();
    EXPECT_EQ(inclusion->index, i);
    EXPECT_TRUE(VerifyInclusion(MerkleLeafHash(ids[i].span()), i, 13, inclusion->proof, second->root).ok());
  }
  EXPECT_EQ(server_->LogInclusionProof(ids[5], 3).status().code(), Code::kNotFound);
  auto proof = server_->LogConsistencyProof(3, 13);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(CheckExtends(Body(*first), Body(*second), *proof).ok());
}

TEST_F(StoreLogTest, CosignaturesAreCheckedBeforeTheyAreKeptAndServedWithTheCheckpoint) {
  Push(2);
  std::optional<OpenedCheckpoint> opened;
  std::optional<std::string> line;
  ASSERT_NO_FATAL_FAILURE(CosignLatest(opened, line));
  // Claimed by another key: refused.
  EXPECT_EQ(server_->AddCosignature({2, district_->device_key(), *line}).code(), Code::kBadSignature);
  // Of a checkpoint never signed: refused.
  EXPECT_EQ(server_->AddCosignature({7, witness_->device_key(), *line}).code(), Code::kNotFound);
  ASSERT_TRUE(server_->AddCosignature({2, witness_->device_key(), *line}).ok());
  auto served = server_->SignCheckpoint();
  ASSERT_TRUE(served.ok());
  auto cosigners = VerifiedCosigners(served->note, *opened, *roster_);
  ASSERT_EQ(cosigners.size(), 1u);
  EXPECT_EQ(cosigners[0].entry->district, "Bromma");
  EXPECT_EQ(cosigners[0].timestamp, static_cast<uint64_t>(witness_.clock().NowMs() / 1000));

  // The same witness cosigning the same checkpoint later: checked, but the first is kept.
  const uint64_t first_timestamp = cosigners[0].timestamp;
  witness_.clock().AdvanceMs(90'000);
  auto again = witness_->CosignCheckpoint(opened->text);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(server_->AddCosignature({2, district_->device_key(), *again}).code(), Code::kBadSignature);
  ASSERT_TRUE(server_->AddCosignature({2, witness_->device_key(), *again}).ok());
  auto served_again = server_->SignCheckpoint();
  ASSERT_TRUE(served_again.ok());
  auto kept = VerifiedCosigners(served_again->note, *opened, *roster_);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].timestamp, first_timestamp);
}

// The sync's exchange keeps a witness's cosignature of the last checkpoint in the
// durable write of the push that follows it: checked first, kept once.
TEST_F(StoreLogTest, ACosignatureCheckedFirstIsKeptByThePushThatCarriesIt) {
  Push(2);
  std::optional<OpenedCheckpoint> opened;
  std::optional<std::string> line;
  ASSERT_NO_FATAL_FAILURE(CosignLatest(opened, line));
  Store::Cosignature cosignature{2, witness_->device_key(), *line};
  EXPECT_EQ(server_->CheckCosignature({2, district_->device_key(), *line}).status().code(), Code::kBadSignature);
  EXPECT_EQ(server_->CheckCosignature({3, witness_->device_key(), *line}).status().code(), Code::kNotFound);
  auto fresh = server_->CheckCosignature(cosignature);
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_TRUE(*fresh);
  // Checking writes nothing.
  auto unchanged = server_->CheckpointAt(2);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_TRUE(VerifiedCosigners(unchanged->note, *opened, *roster_).empty());

  Push(1, &cosignature);
  auto held = server_->CheckpointAt(2);
  ASSERT_TRUE(held.ok());
  auto cosigners = VerifiedCosigners(held->note, *opened, *roster_);
  ASSERT_EQ(cosigners.size(), 1u);
  EXPECT_EQ(cosigners[0].entry->district, "Bromma");
  auto again = server_->CheckCosignature(cosignature);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "held: not kept again";
  // The push itself is in, and its checkpoint signed.
  auto size = server_->LogSize();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 3u);
  EXPECT_TRUE(server_->CheckpointAt(3).ok());
}

// A push that grows the log leaves the checkpoint of the new size signed in its own
// transaction: the witness step that follows finds it held and writes nothing.
TEST_F(StoreLogTest, APushSignsTheCheckpointOfWhatItAppended) {
  Push(3);
  auto size = server_->LogSize();
  ASSERT_TRUE(size.ok());
  auto held = server_->CheckpointAt(*size);
  ASSERT_TRUE(held.ok()) << held.status().message();
  auto opened = OpenCheckpoint(held->note, *roster_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->checkpoint.size, *size);
  auto root = server_->LogRoot(*size);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(opened->checkpoint.root, *root);
  auto latest = server_->SignCheckpoint();
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->note, held->note);
}

// The installed roster a store reads is the one last installed, also when the same
// store read the one before (it remembers the last one it opened).
TEST_F(StoreLogTest, TheRosterReadIsTheOneLastInstalled) {
  auto before = server_->InstalledRoster();
  ASSERT_TRUE(before.ok() && *before);
  EXPECT_EQ((*before)->version(), 1u);
  Install(2);
  auto after = server_->InstalledRoster();
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_EQ((*after)->version(), 2u);
}

TEST_F(StoreLogTest, AWitnessRefusesALogThatShrankOrForked) {
  Push(4);
  auto four = server_->SignCheckpoint();
  ASSERT_TRUE(four.ok());
  Push(3);
  auto seven = server_->SignCheckpoint();
  ASSERT_TRUE(seven.ok());
  auto proof = server_->LogConsistencyProof(4, 7);
  ASSERT_TRUE(proof.ok());
  Checkpoint a = Body(*four), b = Body(*seven);
  EXPECT_TRUE(CheckExtends(a, b, *proof).ok());
  Status shrank = CheckExtends(b, a, {});
  EXPECT_EQ(shrank.code(), Code::kBadSignature);
  EXPECT_NE(shrank.message().find("entries were removed"), std::string::npos) << shrank.message();
  Checkpoint forked = b;
  forked.root.bytes[0] ^= 1;
  Status split = CheckExtends(a, forked, *proof);
  EXPECT_EQ(split.code(), Code::kBadSignature);
  EXPECT_NE(split.message().find("inconsistent with what this machine saw"), std::string::npos) << split.message();
  Checkpoint same_size = a;
  same_size.root.bytes[31] ^= 1;
  EXPECT_FALSE(CheckExtends(a, same_size, {}).ok());

  // A checkpoint signed by a key the roster does not name as a server is refused.
  auto text = FormatCheckpoint(b);
  ASSERT_TRUE(text.ok());
  auto forged = SignNote(*text, "stockholm.se/samsync", SigningKey::Generate());
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(OpenCheckpoint(*forged, *roster_).status().code(), Code::kBadSignature);
}

TEST_F(StoreLogTest, TheStateStatementAndTheRosterHistoryAreKept) {
  Push(2);
  entries_.push_back(Entry(district_.store(), Role::kWriter, "Farsta"));
  entries_.back().signing_key = SigningKey::Generate().public_key();
  entries_.back().transport_key = TransportKey::Generate().public_key();
  Install(2);
  auto rosters = server_->RosterHistory();
  ASSERT_TRUE(rosters.ok());
  EXPECT_EQ(rosters->size(), 2u);
  auto statement = server_->SignStateStatement();
  ASSERT_TRUE(statement.ok()) << statement.status().message();
  auto opened = OpenStateStatement(*statement, *roster_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->size, 2u);
  auto summary = server_->Summary();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(opened->state_hash, summary->state_hash);
  // A district's store keeps no log.
  EXPECT_EQ(district_->SignCheckpoint().status().code(), Code::kInvalidInput);
}

}  // namespace
}  // namespace samsync
