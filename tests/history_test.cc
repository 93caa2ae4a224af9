// The signed change history: commits made by the store, their checks, verify, and
// every kind of tampering it must name.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "samsync/history.h"
#include "samsync/merge.h"
#include "samsync/record_fields.h"
#include "samsync/roster.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::AddChild;
using testing::AddSchool;
using testing::MakeRecord;
using testing::PutOrDie;
using testing::RawLmdb;
using testing::TestStore;

constexpr int64_t kNow = 1479211200000;  // 2016-11-15 12:00 UTC

std::string CommitKey(uint32_t device, uint64_t seq) {
  std::string key(12, '\0');
  for (int i = 0; i < 4; ++i) key[i] = static_cast<char>(device >> (8 * (3 - i)));
  for (int i = 0; i < 8; ++i) key[4 + i] = static_cast<char>(seq >> (8 * (7 - i)));
  return key;
}

std::vector<Commit> AllCommits(const Store& store) {
  std::vector<Commit> out;
  Status walked = store.History(std::nullopt, [&](const Commit& c) {
    out.push_back(Commit::Decode(c.signed_bytes()).value());
    return true;
  });
  EXPECT_TRUE(walked.ok()) << walked.message();
  return out;
}

// A device that signs commits by hand, for histories the store would never write.
class Device {
 public:
  explicit Device(std::string district = "Farsta") : district_(std::move(district)), key_(SigningKey::Generate()) {}
  // A device whose key comes from `seed`: two such objects are the same device.
  Device(std::string district, uint8_t seed)
      : district_(std::move(district)), key_(SigningKey::FromSeed(std::vector<uint8_t>(32, seed))) {}

  Commit Next(int64_t at_ms, const std::string& school_name = "Skola", std::string record_district = "") {
    Record school = MakeRecord(RecordType::kSchool, {{"name", school_name}, {"principal", "municipal"}});
    school.set_id(ids_.Next(FixedClock(at_ms)));
    school.set_district(record_district.empty() ? district_ : record_district);
    CommitBuilder builder;
    builder.AddSet(school, ChangedFields(nullptr, school));
    CommitBuilder::Header header{district_, seq_ + 1, parent_, Hlc::Next(hlc_, at_ms), "test", {}};
    Commit commit = builder.Sign(key_, header);
    ++seq_;
    parent_ = commit.id();
    hlc_ = commit.hlc();
    return commit;
  }
  const SigningKey& key() const { return key_; }

 private:
  std::string district_;
  SigningKey key_;
  RecordIdGenerator ids_;
  uint64_t seq_ = 0;
  Hash parent_;
  uint64_t hlc_ = 0;
};

CommitRules Rules(const Roster* roster = nullptr) {
  CommitRules rules;
  rules.roster = roster;
  rules.now_ms = kNow + 3'600'000;
  return rules;
}

RosterEntry Writer(const SigningKey& key, const std::string& district, int64_t revoked_ms = 0) {
  RosterEntry entry;
  entry.signing_key = key.public_key();
  entry.transport_key = TransportKey::Generate().public_key();
  entry.district = district;
  entry.role = Role::kWriter;
  entry.label = district + " laptop";
  entry.added_ms = kNow - 86'400'000;
  entry.revoked_ms = revoked_ms;
  return entry;
}

// Replaces a signed commit's signature with `key`'s signature of the same bytes.
std::vector<uint8_t> Resign(const Commit& commit, const SigningKey& key) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::SignedCommit>();
  auto inner = commit.reader();
  kj::Array<capnp::word> canonical = capnp::canonicalize(inner);
  auto bytes = canonical.asBytes();
  std::vector<uint8_t> signed_message;
  std::string prefix = "samsync commit v1\n";
  signed_message.insert(signed_message.end(), prefix.begin(), prefix.end());
  signed_message.insert(signed_message.end(), bytes.begin(), bytes.end());
  Signature signature = key.Sign(signed_message);
  root.setCommit(capnp::Data::Reader(bytes.begin(), bytes.size()));
  root.setSignature(capnp::Data::Reader(signature.data(), 64));
  auto flat = capnp::messageToFlatArray(message);
  return std::vector<uint8_t>(flat.asBytes().begin(), flat.asBytes().end());
}

TEST(HistoryTest, EveryActionIsOneSignedCommitInAChain) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  t.clock().AdvanceMs(1000);
  Record changed = t->Get(school).value();
  ASSERT_TRUE(SetFieldFromText(changed, *FindField(RecordType::kSchool, "name"), "Ett (nytt namn)").ok());
  PutOrDie(t.store(), std::move(changed));
  WriteBatch removal;
  removal.set_note("delete school");
  removal.Delete(school);
  auto removed = t->Apply(removal);
  ASSERT_TRUE(removed.ok());
  ASSERT_TRUE(removed->commit_id.has_value());

  std::vector<Commit> commits = AllCommits(t.store());
  ASSERT_EQ(commits.size(), 3u);
  for (size_t i = 0; i < commits.size(); ++i) {
    EXPECT_EQ(commits[i].seq(), i + 1);
    EXPECT_EQ(commits[i].author(), t->device_key());
    EXPECT_TRUE(commits[i].SignatureValid());
    EXPECT_EQ(commits[i].district(), "Skarpnäck");
    EXPECT_TRUE(CheckCommit(commits[i], i == 0 ? nullptr : &commits[i - 1], Rules()).ok());
  }
  EXPECT_TRUE(commits[0].parent().IsZero());
  EXPECT_EQ(commits[1].parent(), commits[0].id());
  EXPECT_EQ(commits[2].id(), *removed->commit_id);
  EXPECT_EQ(std::string(commits[2].reader().getNote().cStr()), "delete school");
  // The update wrote only the field it changed.
  auto update_ops = commits[1].reader().getOps();
  ASSERT_EQ(update_ops.size(), 1u);
  ASSERT_EQ(update_ops[0].getFields().size(), 1u);
  EXPECT_EQ(FieldsOf(RecordType::kSchool)[update_ops[0].getFields()[0]].name, "name");
  EXPECT_TRUE(commits[2].reader().getOps()[0].isDelete());
}

// Sign builds its Commit from the bytes it signed rather than decoding them again;
// what it returns must be what any reader of those bytes gets.
TEST(HistoryTest, ASignedCommitIsWhatItsBytesDecodeTo) {
  Device device;
  device.Next(kNow);
  Commit built = device.Next(kNow + 1000, "Skola B");
  auto decoded = Commit::Decode(built.signed_bytes());
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(decoded->id(), built.id());
  EXPECT_EQ(decoded->author(), built.author());
  EXPECT_EQ(decoded->parent(), built.parent());
  EXPECT_FALSE(built.parent().IsZero());
  EXPECT_EQ(decoded->seq(), 2u);
  EXPECT_EQ(built.seq(), 2u);
  EXPECT_EQ(decoded->hlc(), built.hlc());
  EXPECT_TRUE(decoded->SignatureValid());
  EXPECT_TRUE(CheckCommitAlone(*decoded, Rules()).ok());
  ASSERT_EQ(built.reader().getOps().size(), 1u);
  EXPECT_EQ(std::string(built.reader().getOps()[0].getSet().getBody().getSchool().getName().cStr()), "Skola B");
}

TEST(HistoryTest, AnUnchangedPutMakesNoCommit) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  WriteBatch same;
  same.Put(t->Get(school).value());
  auto result = t->Apply(same);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->commit_id.has_value());
  EXPECT_EQ(AllCommits(t.store()).size(), 1u);
}

// A batch of `count` material records, as an import of a unit's meetings would make.
WriteBatch Materials(int count) {
  WriteBatch batch;
  for (int i = 0; i < count; ++i) {
    batch.Put(MakeRecord(RecordType::kMaterial,
                         {{"unit", "Enhet " + std::to_string(i % 17)}, {"date", "2016-09-01"}, {"form", "groupMeeting"}}));
  }
  return batch;
}

TEST(HistoryTest, ABigImportIsOneCommitWithOneSignature) {
  TestStore t;
  ASSERT_TRUE(t->Apply(Materials(5000)).ok());
  std::vector<Commit> commits = AllCommits(t.store());
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_EQ(commits[0].reader().getOps().size(), 5000u);
}

// A commit's ops repeat the same layouts and labels, so the store keeps it compressed
// (docs/formats.md, "Coded values"): about 40 % of its signed bytes, where packing kept
// about 65 %. It reads back as the bytes that were signed.
TEST(HistoryTest, AStoredCommitIsCompressedAndReadsBackAsSigned) {
  TestStore t;
  ASSERT_TRUE(t->Apply(Materials(100)).ok());
  std::vector<Commit> before = AllCommits(t.store());
  ASSERT_EQ(before.size(), 1u);
  t.Close();
  std::string stored = RawLmdb(t.dir()).Get("commits", CommitKey(1, 1));
  EXPECT_LT(stored.size(), before[0].signed_bytes().size() / 2);
  t.Reopen();
  std::vector<Commit> after = AllCommits(t.store());
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(std::ranges::equal(after[0].signed_bytes(), before[0].signed_bytes()));
  EXPECT_TRUE(after[0].SignatureValid());
}

TEST(HistoryTest, VerifyPassesAndTheStateHashIsAPureFunctionOfTheCommits) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 3);
  RecordId concern = PutOrDie(t.store(), MakeRecord(RecordType::kConcern, {{"schoolId", school.ToText()},
                                                                         {"receivedDate", "2016-09-01"},
                                                                         {"childRef", child.ToText()}}));
  Record feedback = t->Get(concern).value();
  ASSERT_TRUE(SetFieldsFromJson(feedback, nlohmann::json{{"feedbackDate", "2016-09-12"}, {"feedbackForm", "meeting"}}).ok());
  PutOrDie(t.store(), std::move(feedback));
  RecordId gone = AddSchool(t.store(), "Två");
  WriteBatch removal;
  removal.Delete(gone);
  ASSERT_TRUE(t->Apply(removal).ok());

  auto report = t->Verify();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
  EXPECT_EQ(report->commits, 5u);
  EXPECT_EQ(report->devices, 1u);
  EXPECT_EQ(report->records, 2u);
  EXPECT_EQ(report->roster_version, 0u);

  // Replaying the commits by hand gives the same hash.
  DerivedState derived;
  for (const Commit& commit : AllCommits(t.store())) ASSERT_TRUE(derived.Apply(commit).ok());
  EXPECT_EQ(derived.StateHash(), report->state_hash);
  t.Reopen();
  EXPECT_EQ(t->Verify()->state_hash, report->state_hash);
}

// Regression: a record with unset list and text fields was re-derived with empty (but
// present) values, whose encoding differs, and verify reported it as altered.
TEST(HistoryTest, RecordsWithUnsetFieldsVerify) {
  TestStore t;
  PutOrDie(t.store(), MakeRecord(RecordType::kSchool, {{"name", "Bara namn"}, {"principal", "municipal"}}));
  Record cleared = MakeRecord(RecordType::kSchool, {{"name", "Tom lista"}, {"principal", "municipal"}, {"forms", ""}});
  ASSERT_TRUE(SetFieldsFromJson(cleared, nlohmann::json{{"forms", nlohmann::json::array()}}).ok());
  PutOrDie(t.store(), std::move(cleared));
  auto report = t->Verify();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
}

TEST(HistoryTest, TheClockGoingBackStillGivesIncreasingCommits) {
  TestStore t;
  AddSchool(t.store(), "Ett");
  t.clock().AdvanceMs(-3'600'000);  // an hour back
  AddSchool(t.store(), "Två");
  t.clock().AdvanceMs(-86'400'000);  // a day back
  AddSchool(t.store(), "Tre");
  std::vector<Commit> commits = AllCommits(t.store());
  ASSERT_EQ(commits.size(), 3u);
  EXPECT_LT(commits[0].hlc(), commits[1].hlc());
  EXPECT_LT(commits[1].hlc(), commits[2].hlc());
  t.clock().Set(kNow);
  auto report = t->Verify();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
}

TEST(HistoryTest, ACommitFarInTheFutureIsRefused) {
  Device device;
  Commit future = device.Next(kNow + 2 * 3'600'000);  // two hours after "now"
  CommitRules rules = Rules();
  rules.now_ms = kNow;
  Status checked = CheckCommit(future, nullptr, rules);
  EXPECT_EQ(checked.code(), Code::kCorruption);
  EXPECT_NE(checked.message().find(future.Name() + ": is dated 2016-11-15 14:00:00 UTC, in the future"),
            std::string::npos)
      << checked.message();
  rules.max_skew_ms = 3 * 3'600'000;  // configurable
  EXPECT_TRUE(CheckCommit(future, nullptr, rules).ok());
}

TEST(HistoryTest, AFlippedByteInACommitIsCaught) {
  Device device;
  Commit commit = device.Next(kNow);
  std::vector<uint8_t> bytes = commit.signed_bytes();
  size_t refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<uint8_t> flipped = bytes;
    flipped[i] ^= 0x01;
    auto decoded = Commit::Decode(flipped);
    if (!decoded.ok() || !CheckCommit(*decoded, nullptr, Rules()).ok()) {
      ++refused;
      continue;
    }
    // A flip the checks accept must have left the signed commit itself untouched (it
    // fell in the envelope's framing, e.g. an unused upper bit of a size).
    EXPECT_EQ(decoded->id(), commit.id()) << "byte " << i;
  }
  EXPECT_GE(refused, bytes.size() - 8);
}

TEST(HistoryTest, AGapASwapAndARewriteAreNamed) {
  Device device;
  Commit c1 = device.Next(kNow);
  Commit c2 = device.Next(kNow + 1000);
  Commit c3 = device.Next(kNow + 2000);
  EXPECT_TRUE(CheckCommit(c2, &c1, Rules()).ok());

  Status gap = CheckCommit(c3, &c1, Rules());  // c2 removed
  EXPECT_EQ(gap.message(), c3.Name() + ": follows seq 1: the chain has a gap or is out of order");
  Status swapped = CheckCommit(c2, nullptr, Rules());  // c2 first
  EXPECT_EQ(swapped.message(),
            c2.Name() + ": the device's first commit held has seq 2, not 1: commits 1 to 1 are missing");

  // One device key, two histories: seq 2 of the second names another seq 1.
  Device original("Farsta", 7), rewrite("Farsta", 7);
  Commit a1 = original.Next(kNow, "Ett");
  rewrite.Next(kNow, "Ett, ändrad i efterhand");
  Commit b2 = rewrite.Next(kNow + 1000, "Två");
  Status rewritten = CheckCommit(b2, &a1, Rules());
  EXPECT_EQ(rewritten.message(), b2.Name() + ": names parent " + b2.parent().ToHex() + ", but seq 1 is " +
                                     a1.id().ToHex() + ": the chain was rewritten");
}

TEST(HistoryTest, AForgedSignatureIsRefused) {
  Device device;
  Commit real = device.Next(kNow);
  SigningKey forger = SigningKey::Generate();
  auto forged = Commit::Decode(Resign(real, forger));
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->author(), device.key().public_key());  // claims to be the device
  Status checked = CheckCommit(*forged, nullptr, Rules());
  EXPECT_EQ(checked.code(), Code::kBadSignature);
  EXPECT_EQ(checked.message(), forged->Name() + ": the signature does not verify");
}

TEST(HistoryTest, TheRosterDecidesWhoMayWrite) {
  SigningKey root = SigningKey::Generate();
  Device farsta("Farsta"), revoked("Farsta"), bromma("Bromma"), stranger("Farsta");
  auto roster = Roster::Sign(root, "stockholm.se", 2, kNow,
                             {Writer(farsta.key(), "Farsta"), Writer(revoked.key(), "Farsta", kNow + 60'000),
                              Writer(bromma.key(), "Farsta")});
  ASSERT_TRUE(roster.ok()) << roster.status().message();
  CommitRules rules = Rules(&*roster);

  EXPECT_TRUE(CheckCommit(farsta.Next(kNow), nullptr, rules).ok());

  Commit before_revocation = revoked.Next(kNow);
  EXPECT_TRUE(CheckCommit(before_revocation, nullptr, rules).ok());
  Commit after_revocation = revoked.Next(kNow + 120'000);
  Status late = CheckCommit(after_revocation, &before_revocation, rules);
  EXPECT_EQ(late.code(), Code::kUnauthorised);
  EXPECT_NE(late.message().find(after_revocation.Name()), std::string::npos);
  EXPECT_NE(late.message().find("revoked"), std::string::npos) << late.message();

  // A Farsta writer signing a Bromma commit.
  Commit wrong_district = bromma.Next(kNow);
  Status other = CheckCommit(wrong_district, nullptr, rules);
  EXPECT_EQ(other.code(), Code::kUnauthorised);
  EXPECT_NE(other.message().find(wrong_district.Name()), std::string::npos);

  Status unknown = CheckCommit(stranger.Next(kNow), nullptr, rules);
  EXPECT_EQ(unknown.code(), Code::kUnauthorised);

  // A commit whose record belongs to another district than the commit's.
  Device sneaky("Farsta");
  auto roster2 = Roster::Sign(root, "stockholm.se", 3, kNow, {Writer(sneaky.key(), "Farsta")});
  CommitRules rules2 = Rules(&*roster2);
  Commit smuggled = sneaky.Next(kNow, "Brommaskolan", "Bromma");
  Status smuggling = CheckCommit(smuggled, nullptr, rules2);
  EXPECT_EQ(smuggling.code(), Code::kUnauthorised);
  EXPECT_EQ(smuggling.message(), smuggled.Name() + ": writes a record of Bromma, not of its own district Farsta");
}

TEST(HistoryTest, VerifyNamesACommitAlteredOnDisk) {
  TestStore t;
  AddSchool(t.store(), "Ett");
  AddSchool(t.store(), "Två");
  AddSchool(t.store(), "Tre");
  t.Close();
  RawLmdb(t.dir()).EditValue("commits", CommitKey(1, 2), [](std::string& v) { v[v.size() / 2] ^= 0x04; });
  t.Reopen();
  auto report = t->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failure.code(), Code::kCorruption);
  EXPECT_NE(report->failure.message().find(" seq 2 fails authentication"), std::string::npos)
      << report->failure.message();
}

TEST(HistoryTest, VerifyNamesACommitRemovedFromTheMiddleOrTheEnd) {
  TestStore t;
  for (const char* name : {"Ett", "Två", "Tre", "Fyra"}) AddSchool(t.store(), name);
  std::vector<Commit> commits = AllCommits(t.store());
  t.Close();
  RawLmdb(t.dir()).Delete("commits", CommitKey(1, 2));
  t.Reopen();
  auto middle = t->Verify();
  EXPECT_EQ(middle->failure.message(), commits[2].Name() + ": follows seq 1: the chain has a gap or is out of order");

  TestStore u;
  for (const char* name : {"Ett", "Två"}) AddSchool(u.store(), name);
  u.Close();
  RawLmdb(u.dir()).Delete("commits", CommitKey(1, 2));
  u.Reopen();
  auto end = u->Verify();
  EXPECT_NE(end->failure.message().find("its head is seq 2 but the last commit held is seq 1"), std::string::npos)
      << end->failure.message();
}

TEST(HistoryTest, VerifyFindsRecordsThatNoCommitMade) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  AddSchool(t.store(), "Två");
  t.Close();
  std::string key(1, static_cast<char>(RecordType::kSchool));
  key.append(reinterpret_cast<const char*>(school.bytes.data()), 16);
  RawLmdb(t.dir()).Delete("records", key);
  t.Reopen();
  auto report = t->Verify();
  EXPECT_EQ(report->failure.message(), "1 record(s) made by commits are missing from the store");
}

TEST(HistoryTest, AnInstalledRosterIsCheckedByVerify) {
  TestStore t;
  SigningKey root = SigningKey::Generate();
  RosterEntry self;
  self.signing_key = t->device_key();
  self.transport_key = t->transport_key();
  self.district = "Skarpnäck";
  self.role = Role::kWriter;
  self.added_ms = kNow - 1000;
  auto v1 = Roster::Sign(root, "stockholm.se", 1, kNow, {self});
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(t->InstallRoster(v1->signed_bytes()).ok());
  AddSchool(t.store(), "Ett");
  auto good = t->Verify();
  EXPECT_TRUE(good->failure.ok()) << good->failure.message();
  EXPECT_EQ(good->roster_version, 1u);

  // Revoked before the next commit: verify names it.
  self.revoked_ms = kNow + 500;
  auto v2 = Roster::Sign(root, "stockholm.se", 2, kNow + 500, {self});
  ASSERT_TRUE(t->InstallRoster(v2->signed_bytes()).ok());
  t.clock().AdvanceMs(1000);
  AddSchool(t.store(), "Två");
  auto bad = t->Verify();
  EXPECT_EQ(bad->failure.code(), Code::kUnauthorised);
  EXPECT_NE(bad->failure.message().find("seq 2)"), std::string::npos) << bad->failure.message();

  // Rollback and another root are refused; nothing changes.
  EXPECT_FALSE(t->InstallRoster(v1->signed_bytes()).ok());
  auto foreign = Roster::Sign(SigningKey::Generate(), "stockholm.se", 9, kNow, {});
  EXPECT_EQ(t->InstallRoster(foreign->signed_bytes()).code(), Code::kUnauthorised);
  EXPECT_EQ(t->InstalledRoster().value()->version(), 2u);
}

}  // namespace
}  // namespace samsync
