// Merge: several devices of one district editing offline, their commits exchanged in
// any order, one state and one set of conflicts on every replica.
#include "samsync/merge.h"
#include "samsync/bundle.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include "samsync/record_fields.h"
#include "samsync/roster.h"
#include "samsync/store.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::AddSchool;
using testing::MakeRecord;
using testing::PutOrDie;
using testing::TestStore;

constexpr int64_t kStart = 1479211200000;  // TestStore's clock: 2016-11-15 12:00 UTC

// Fsyncs cost nothing on tmpfs; the property test makes thousands of commits.
class TmpfsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
  }
};
const auto* const kTmpfs = ::testing::AddGlobalTestEnvironment(new TmpfsEnvironment);

Commit Copy(const Commit& commit) { return std::move(Commit::Decode(commit.signed_bytes())).value(); }

// Every commit `store` holds that `have` lacks, as independent copies.
std::vector<Commit> CommitsAfter(Store& store, const VersionVector& have = {}) {
  std::vector<Commit> out;
  Status walked = store.CommitsAfter(have, [&](const Commit& commit) {
    out.push_back(Copy(commit));
    return true;
  });
  EXPECT_TRUE(walked.ok()) << walked.message();
  return out;
}

Result<ImportReport> Import(Store& store, std::vector<Commit> commits) {
  size_t next = 0;
  return store.ImportCommits([&]() -> Result<std::optional<Commit>> {
    if (next == commits.size()) return std::optional<Commit>();
    return std::optional<Commit>(std::move(commits[next++]));
  });
}

// Brings `to` up to date with `from`.
void Sync(Store& from, Store& to) {
  auto heads = to.Heads();
  ASSERT_TRUE(heads.ok());
  auto imported = Import(to, CommitsAfter(from, *heads));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
}

// A district's devices, each its own store on its own clock, all writers in a
// roster every store has installed.
class District {
 public:
  explicit District(int devices, int replicas = 0) {
    for (int i = 0; i < devices + replicas; ++i) stores_.push_back(std::make_unique<TestStore>());
    std::vector<RosterEntry> entries;
    for (auto& store : stores_) {
      RosterEntry entry;
      entry.signing_key = store->store().device_key();
      entry.transport_key = store->store().transport_key();
      entry.district = "Skarpnäck";
      entry.role = Role::kWriter;
      entry.label = "device " + std::to_string(entries.size() + 1);
      entries.push_back(entry);
    }
    auto roster = Roster::Sign(root_, "stockholm.se", 1, kStart, entries);
    EXPECT_TRUE(roster.ok()) << roster.status().message();
    for (auto& store : stores_) EXPECT_TRUE(store->store().InstallRoster(roster->signed_bytes()).ok());
  }
  Store& operator[](size_t i) { return stores_[i]->store(); }
  FixedClock& clock(size_t i) { return stores_[i]->clock(); }
  TestStore& test_store(size_t i) { return *stores_[i]; }
  size_t size() const { return stores_.size(); }

 private:
  SigningKey root_ = SigningKey::Generate();
  std::vector<std::unique_ptr<TestStore>> stores_;
};

void Rename(Store& store, const RecordId& id, const std::string& name) {
  auto record = store.Get(id);
  ASSERT_TRUE(record.ok()) << record.status().message();
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "name"), name).ok());
  PutOrDie(store, std::move(*record));
}

std::string NameOf(Store& store, const RecordId& id) {
  auto record = store.Get(id);
  return record.ok() ? FieldToText(*record, *FindField(RecordType::kSchool, "name")) : "(" + record.status().message() + ")";
}

// A replica's conflicts in a form two replicas can compare: devices by key.
std::vector<std::string> ConflictSet(Store& store) {
  std::vector<std::string> out;
  auto conflicts = store.Conflicts();
  EXPECT_TRUE(conflicts.ok()) << conflicts.status().message();
  if (!conflicts.ok()) return out;
  for (const Conflict& c : *conflicts) {
    std::string line = c.id.ToText() + (c.deleted ? " deleted by " + c.deleted_by->device.ToHex() : " field " + std::to_string(c.field));
    for (const ConflictWrite& w : c.writes) line += " " + w.device.ToHex() + ":" + std::to_string(w.seq);
    out.push_back(line);
  }
  return out;
}

Hash StateHash(Store& store) {
  auto summary = store.Summary();
  EXPECT_TRUE(summary.ok()) << summary.status().message();
  return summary.ok() ? summary->state_hash : Hash();
}

void ExpectVerifies(Store& store) {
  auto report = store.Verify();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
  EXPECT_EQ(report->state_hash, StateHash(store));
}

TEST(MergeTest, ConcurrentEditsOfOneFieldAreKeptAsAConflictAndTheLaterWins) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  d.clock(0).AdvanceMs(1000);
  d.clock(1).AdvanceMs(2000);  // B's edit is the later one
  Rename(d[0], school, "Ekskolan A");
  Rename(d[1], school, "Ekskolan B");
  Sync(d[0], d[1]);
  Sync(d[1], d[0]);
  EXPECT_EQ(NameOf(d[0], school), "Ekskolan B");
  EXPECT_EQ(NameOf(d[1], school), "Ekskolan B");
  auto conflicts = d[0].Conflicts();
  ASSERT_TRUE(conflicts.ok());
  ASSERT_EQ(conflicts->size(), 1u);
  const Conflict& c = conflicts->front();
  EXPECT_EQ(c.id, school);
  EXPECT_FALSE(c.deleted);
  EXPECT_EQ(FieldsOf(RecordType::kSchool)[c.field].name, "name");
  ASSERT_EQ(c.writes.size(), 2u);
  const FieldInfo& name = FieldsOf(RecordType::kSchool)[c.field];
  EXPECT_EQ(c.writes[0].device, d[1].device_key());
  EXPECT_EQ(FieldToText(*c.writes[0].value, name), "Ekskolan B");
  EXPECT_EQ(c.writes[1].device, d[0].device_key());
  EXPECT_EQ(FieldToText(*c.writes[1].value, name), "Ekskolan A");
  EXPECT_EQ(c.writes[1].time_ms, kStart + 1000);
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
  EXPECT_EQ(ConflictSet(d[0]), ConflictSet(d[1]));
  ExpectVerifies(d[0]);
  ExpectVerifies(d[1]);

  // Settling it on A (even choosing the value shown) ends it everywhere.
  auto record = d[0].Get(school);
  ASSERT_TRUE(record.ok());
  WriteBatch settle;
  settle.Settle(std::move(*record), c.field);
  ASSERT_TRUE(d[0].Apply(settle).ok());
  Sync(d[0], d[1]);
  EXPECT_TRUE(ConflictSet(d[0]).empty());
  EXPECT_TRUE(ConflictSet(d[1]).empty());
  EXPECT_EQ(NameOf(d[1], school), "Ekskolan B");
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
  ExpectVerifies(d[1]);
}

TEST(MergeTest, AnEditThatSawTheOtherIsNoConflict) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Rename(d[0], school, "Ekskolan A");
  Sync(d[0], d[1]);
  d.clock(0).AdvanceMs(60'000);  // A's clock runs ahead; B's later edit still wins: it saw A's
  Rename(d[1], school, "Ekskolan B");
  Sync(d[1], d[0]);
  EXPECT_EQ(NameOf(d[0], school), "Ekskolan B");
  EXPECT_TRUE(ConflictSet(d[0]).empty());
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
}

TEST(MergeTest, ConcurrentEditsOfDifferentFieldsBothLand) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Rename(d[0], school, "Ekskolan A");
  auto record = d[1].Get(school);
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "principal"), "independent").ok());
  PutOrDie(d[1], std::move(*record));
  Sync(d[0], d[1]);
  Sync(d[1], d[0]);
  for (size_t i = 0; i < 2; ++i) {
    auto merged = d[i].Get(school);
    ASSERT_TRUE(merged.ok());
    EXPECT_EQ(FieldToText(*merged, *FindField(RecordType::kSchool, "name")), "Ekskolan A");
    EXPECT_EQ(FieldToText(*merged, *FindField(RecordType::kSchool, "principal")), "independent");
    EXPECT_TRUE(ConflictSet(d[i]).empty());
  }
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
}

TEST(MergeTest, ADeleteRacingAnEditWinsAndKeepsTheEditAsAConflict) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  d.clock(1).AdvanceMs(5000);  // the edit is later by the clock, and still does not revive it
  Rename(d[1], school, "Ekskolan B");
  WriteBatch del;
  del.Delete(school);
  ASSERT_TRUE(d[0].Apply(del).ok());
  Sync(d[0], d[1]);
  Sync(d[1], d[0]);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(d[i].Get(school).status().code(), Code::kNotFound);
    auto conflicts = d[i].Conflicts();
    ASSERT_TRUE(conflicts.ok());
    ASSERT_EQ(conflicts->size(), 1u);
    EXPECT_TRUE(conflicts->front().deleted);
    EXPECT_EQ(conflicts->front().deleted_by->device, d[0].device_key());
    ASSERT_EQ(conflicts->front().writes.size(), 1u);
    EXPECT_EQ(conflicts->front().writes[0].device, d[1].device_key());
    EXPECT_EQ(FieldToText(*conflicts->front().writes[0].value, *FindField(RecordType::kSchool, "name")), "Ekskolan B");
  }
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
  ExpectVerifies(d[0]);

  // A record that is gone cannot be written again; deleting it again settles the conflict.
  Record again = MakeRecord(RecordType::kSchool, {{"name", "Ekskolan C"}, {"principal", "municipal"}});
  again.set_id(school);
  WriteBatch revive;
  revive.Put(std::move(again));
  auto refused = d[1].Apply(revive);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("was deleted"), std::string::npos);
  WriteBatch settle;
  settle.Delete(school);
  ASSERT_TRUE(d[1].Apply(settle).ok());
  Sync(d[1], d[0]);
  EXPECT_TRUE(ConflictSet(d[0]).empty());
  EXPECT_TRUE(ConflictSet(d[1]).empty());
  EXPECT_EQ(StateHash(d[0]), StateHash(d[1]));
  // With nothing left to settle, deleting it again is refused.
  WriteBatch twice;
  twice.Delete(school);
  EXPECT_EQ(d[1].Apply(twice).status().code(), Code::kNotFound);
}

TEST(MergeTest, AnEditTheDeleteSawGoesWithTheRecord) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Rename(d[1], school, "Ekskolan B");
  Sync(d[1], d[0]);
  WriteBatch del;
  del.Delete(school);
  ASSERT_TRUE(d[0].Apply(del).ok());
  Sync(d[0], d[1]);
  EXPECT_EQ(d[1].Get(school).status().code(), Code::kNotFound);
  EXPECT_TRUE(ConflictSet(d[1]).empty());
}

TEST(MergeTest, TheSameFieldEditedOnThreeDevices) {
  District d(3);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Sync(d[0], d[2]);
  for (size_t i = 0; i < 3; ++i) Rename(d[i], school, "Ekskolan " + std::to_string(i));
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      if (i != j) Sync(d[i], d[j]);
    }
  }
  auto conflicts = d[2].Conflicts();
  ASSERT_TRUE(conflicts.ok());
  ASSERT_EQ(conflicts->size(), 1u);
  EXPECT_EQ(conflicts->front().writes.size(), 3u);
  EXPECT_EQ(ConflictSet(d[0]), ConflictSet(d[1]));
  EXPECT_EQ(ConflictSet(d[0]), ConflictSet(d[2]));
  EXPECT_EQ(StateHash(d[0]), StateHash(d[2]));
}

TEST(MergeTest, ASettleSettlesOnlyTheValuesItSaw) {
  District d(3);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Sync(d[0], d[2]);
  for (size_t i = 0; i < 3; ++i) Rename(d[i], school, "Ekskolan " + std::to_string(i));
  Sync(d[1], d[0]);  // A has seen B's value, not C's
  auto record = d[0].Get(school);
  ASSERT_TRUE(record.ok());
  const FieldInfo& name = *FindField(RecordType::kSchool, "name");
  ASSERT_TRUE(SetFieldFromText(*record, name, "Ekskolan AB").ok());
  WriteBatch settle;
  settle.Settle(std::move(*record), name.ordinal);
  ASSERT_TRUE(d[0].Apply(settle).ok());
  Sync(d[0], d[2]);
  Sync(d[2], d[0]);
  auto conflicts = d[0].Conflicts();
  ASSERT_TRUE(conflicts.ok());
  ASSERT_EQ(conflicts->size(), 1u);
  ASSERT_EQ(conflicts->front().writes.size(), 2u);  // A's settled value and C's
  std::vector<PublicKey> writers = {conflicts->front().writes[0].device, conflicts->front().writes[1].device};
  std::sort(writers.begin(), writers.end());
  std::vector<PublicKey> expected = {d[0].device_key(), d[2].device_key()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(writers, expected);
  EXPECT_EQ(ConflictSet(d[0]), ConflictSet(d[2]));
}

TEST(MergeTest, CommitsArrivingBeforeWhatTheyFollowWaitAndThenApply) {
  District d(2, 1);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Rename(d[0], school, "Ekskolan 2");
  Rename(d[0], school, "Ekskolan 3");
  std::vector<Commit> all = CommitsAfter(d[0]);
  ASSERT_EQ(all.size(), 3u);
  std::vector<Commit> late;
  late.push_back(Copy(all[2]));
  late.push_back(Copy(all[1]));
  auto first = Import(d[2], std::move(late));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->applied, 0u);
  EXPECT_EQ(first->waiting, 2u);
  EXPECT_EQ(d[2].Get(school).status().code(), Code::kNotFound);
  std::vector<Commit> rest;
  rest.push_back(Copy(all[0]));
  rest.push_back(Copy(all[0]));  // a duplicate changes nothing
  auto second = Import(d[2], std::move(rest));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->applied, 3u);
  EXPECT_EQ(second->duplicates, 1u);
  EXPECT_EQ(second->waiting, 0u);
  EXPECT_EQ(NameOf(d[2], school), "Ekskolan 3");
  EXPECT_EQ(StateHash(d[2]), StateHash(d[0]));
  ExpectVerifies(d[2]);
}

TEST(MergeTest, AnImportWithOneBadCommitWritesNothing) {
  District d(2, 1);
  AddSchool(d[0], "Ekskolan");
  AddSchool(d[0], "Aspskolan");
  std::vector<Commit> good = CommitsAfter(d[0]);
  // The second commit with one signature byte flipped.
  std::vector<uint8_t> bytes = good[1].signed_bytes();
  bytes[bytes.size() - 9] ^= 0x01;
  auto forged = Commit::Decode(bytes);
  ASSERT_TRUE(forged.ok());
  std::vector<Commit> batch;
  batch.push_back(Copy(good[0]));
  batch.push_back(std::move(*forged));
  Hash before = StateHash(d[2]);
  auto imported = Import(d[2], std::move(batch));
  EXPECT_EQ(imported.status().code(), Code::kBadSignature);
  EXPECT_NE(imported.status().message().find(good[1].id().ToHex()), std::string::npos);
  EXPECT_EQ(StateHash(d[2]), before);
  EXPECT_TRUE(d[2].Heads()->empty());
}

TEST(MergeTest, ImportRefusesStrangersOtherDistrictsAndForks) {
  District d(1, 1);
  TestStore stranger;  // not in the roster
  AddSchool(stranger.store(), "Främlingsskolan");
  auto refused = Import(d[1], CommitsAfter(stranger.store()));
  EXPECT_EQ(refused.status().code(), Code::kUnauthorised);

  TestStore farsta("Farsta");
  AddSchool(farsta.store(), "Farstaskolan");
  auto other = Import(d[1], CommitsAfter(farsta.store()));
  EXPECT_EQ(other.status().code(), Code::kUnauthorised);
  EXPECT_NE(other.status().message().find("Farsta"), std::string::npos);

  TestStore no_roster;
  auto unrostered = Import(no_roster.store(), CommitsAfter(d[0]));
  EXPECT_EQ(unrostered.status().code(), Code::kInvalidInput);
  EXPECT_NE(unrostered.status().message().find("roster"), std::string::npos);
}

TEST(MergeTest, ADeviceThatSignsTwoHistoriesIsCaught) {
  District d(1, 1);
  AddSchool(d[0], "Ekskolan");
  // A copy of the device's store (a restored backup) goes on signing: its seq 2
  // differs from the original's seq 2.
  testing::TempDir copy;
  std::filesystem::copy(d.test_store(0).dir(), copy.Sub("store"), std::filesystem::copy_options::recursive);
  auto twin = Store::Open(copy.Sub("store"), KeySource::KeyFile(d.test_store(0).key_file()), d.clock(0));
  ASSERT_TRUE(twin.ok()) << twin.status().message();
  AddSchool(d[0], "Aspskolan");
  AddSchool(**twin, "Björkskolan");
  Sync(d[0], d[1]);
  Hash before = StateHash(d[1]);
  auto forked = Import(d[1], CommitsAfter(**twin));
  ASSERT_FALSE(forked.ok());
  EXPECT_EQ(forked.status().code(), Code::kCorruption);
  EXPECT_NE(forked.status().message().find("signed two histories"), std::string::npos) << forked.status().message();
  EXPECT_EQ(StateHash(d[1]), before);
}

TEST(MergeTest, ARecordAboutAChildThisMachineDoesNotKnowCanStillBeUpdated) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  ChildRef child = testing::AddChild(d[0], 1);  // only in A's identity table
  RecordId concern = PutOrDie(d[0], MakeRecord(RecordType::kConcern, {{"schoolId", school.ToText()},
                                                                     {"receivedDate", "2016-11-01"},
                                                                     {"childRef", child.ToText()}}));
  Sync(d[0], d[1]);
  auto record = d[1].Get(concern);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kConcern, "feedbackDate"), "2016-11-10").ok());
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kConcern, "feedbackForm"), "phone").ok());
  auto updated = d[1].Apply([&] {
    WriteBatch batch;
    batch.Put(record->Clone());
    return batch;
  }());
  EXPECT_TRUE(updated.ok()) << updated.status().message();
  // Naming a child this machine does not know is still refused.
  ChildRef stranger = child;
  stranger.bytes[0] ^= 1;
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kConcern, "childRef"), stranger.ToText()).ok());
  WriteBatch batch;
  batch.Put(std::move(*record));
  auto refused = d[1].Apply(batch);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("identity table"), std::string::npos) << refused.status().message();
}

// The same signed commit with one bit of its signature flipped.
std::vector<uint8_t> WithSignatureFlipped(const Commit& commit) {
  const std::vector<uint8_t>& bytes = commit.signed_bytes();
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  auto original = reader.getRoot<schema::SignedCommit>();
  capnp::MallocMessageBuilder message;
  auto forged = message.initRoot<schema::SignedCommit>();
  forged.setCommit(original.getCommit());
  std::vector<uint8_t> signature(original.getSignature().begin(), original.getSignature().end());
  signature[7] ^= 0x01;
  forged.setSignature(capnp::Data::Reader(signature.data(), signature.size()));
  auto flat = capnp::messageToFlatArray(message);
  return {flat.asBytes().begin(), flat.asBytes().end()};
}

// A bundle larger than one import transaction (2 MiB of commits): applied whole when
// good, refused whole when its last commit is forged.
TEST(MergeTest, ABigBundleIsCheckedWholeBeforeItIsAppliedInParts) {
  District d(1, 2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  for (int c = 0; c < 60; ++c) {
    WriteBatch batch;
    for (int i = 0; i < 1000; ++i) {
      batch.Put(MakeRecord(RecordType::kContact, {{"schoolId", school.ToText()},
                                                 {"socialWorker", "handläggare " + std::to_string(c * 1000 + i)},
                                                 {"fromDate", "2016-08-15"}}));
    }
    ASSERT_TRUE(d[0].Apply(batch).ok());
  }
  std::vector<Commit> commits = CommitsAfter(d[0]);
  testing::TempDir files;
  auto write = [&](const std::string& name, bool forge_last) {
    BundleHeader header;
    header.district = "Skarpnäck";
    header.exporter = d[0].device_key();
    auto writer = BundleWriter::Create(files.Sub(name), header);
    EXPECT_TRUE(writer.ok());
    for (size_t i = 0; i < commits.size(); ++i) {
      if (forge_last && i + 1 == commits.size()) {
        auto forged_commit = Commit::Decode(WithSignatureFlipped(commits[i]));
        EXPECT_TRUE(forged_commit.ok()) << forged_commit.status().message();
        if (forged_commit.ok()) {
          EXPECT_TRUE(writer->Add(*forged_commit).ok());
        }
      } else {
        EXPECT_TRUE(writer->Add(commits[i]).ok());
      }
    }
    EXPECT_TRUE(writer->Finish().ok());
    EXPECT_GT(std::filesystem::file_size(files.Sub(name)), uint64_t{8} << 20);
    return files.Sub(name);
  };
  std::string forged = write("forged.bundle", true);
  auto refused = d[1].ImportBundle(forged);
  EXPECT_EQ(refused.status().code(), Code::kBadSignature);
  EXPECT_TRUE(d[1].Heads()->empty());
  EXPECT_EQ(d[1].Summary()->records, 0u);

  auto imported = d[2].ImportBundle(write("good.bundle", false));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_EQ(imported->applied, commits.size());
  EXPECT_EQ(imported->ops, 60'001u);
  EXPECT_EQ(StateHash(d[2]), StateHash(d[0]));
  ExpectVerifies(d[2]);
}

TEST(MergeTest, VerifyFindsAHiddenConflictOrAnAlteredClock) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Rename(d[0], school, "Ekskolan A");
  Rename(d[1], school, "Ekskolan B");
  Sync(d[0], d[1]);
  ExpectVerifies(d[1]);
  std::string key(1, '\0');
  key.append(reinterpret_cast<const char*>(school.bytes.data()), 16);
  std::string dir = d.test_store(1).dir();
  d.test_store(1).Close();
  {
    testing::RawLmdb raw(dir);
    raw.Delete("conflicts", key);  // someone hides the conflict
  }
  d.test_store(1).Reopen();
  auto hidden = d[1].Verify();
  ASSERT_TRUE(hidden.ok());
  EXPECT_NE(hidden->failure.message().find("conflict list is wrong about record " + school.ToText()), std::string::npos)
      << hidden->failure.message();
  d.test_store(1).Close();
  {
    testing::RawLmdb raw(dir);
    raw.EditValue("clocks", key, [](std::string& value) { value[value.size() / 2] ^= 0x20; });
  }
  d.test_store(1).Reopen();
  auto altered = d[1].Verify();
  ASSERT_TRUE(altered.ok());
  EXPECT_NE(altered->failure.message().find("fails authentication"), std::string::npos) << altered->failure.message();
}

// --- 1. A fork whose two versions both wait is not caught --------------------------
TEST(MergeHardeningTest, AForkWhoseTwoVersionsBothWaitIsCaught) {
  District d(1, 2);
  AddSchool(d[0], "Ekskolan");  // seq 1
  testing::TempDir copy;
  std::filesystem::copy(d.test_store(0).dir(), copy.Sub("store"), std::filesystem::copy_options::recursive);
  auto twin = Store::Open(copy.Sub("store"), KeySource::KeyFile(d.test_store(0).key_file()), d.clock(0));
  ASSERT_TRUE(twin.ok()) << twin.status().message();
  AddSchool(d[0], "Aspskolan");      // seq 2 (original)
  AddSchool(**twin, "Björkskolan");  // seq 2 (the fork)
  std::vector<Commit> original = CommitsAfter(d[0]);
  std::vector<Commit> forked = CommitsAfter(**twin);
  ASSERT_EQ(original.size(), 2u);
  ASSERT_EQ(forked.size(), 2u);
  ASSERT_NE(original[1].id(), forked[1].id());

  // Replica 1 gets both seq 2s before seq 1: both wait, the second replaces the first.
  std::vector<Commit> batch;
  batch.push_back(Copy(original[1]));
  batch.push_back(Copy(forked[1]));
  batch.push_back(Copy(original[0]));
  Hash before = StateHash(d[1]);
  auto imported = Import(d[1], std::move(batch));
  ASSERT_FALSE(imported.ok()) << "the fork was accepted: " << imported->applied << " applied";
  EXPECT_NE(imported.status().message().find("signed two histories"), std::string::npos) << imported.status().message();
  EXPECT_EQ(StateHash(d[1]), before);
  EXPECT_TRUE(d[1].Heads()->empty());
}

// Same through a bundle file (kCheck pass parks both copies unchecked).
TEST(MergeHardeningTest, ABundleHoldingAForkWhoseVersionsBothWaitIsRefused) {
  District d(1, 1);
  AddSchool(d[0], "Ekskolan");
  testing::TempDir copy;
  std::filesystem::copy(d.test_store(0).dir(), copy.Sub("store"), std::filesystem::copy_options::recursive);
  auto twin = Store::Open(copy.Sub("store"), KeySource::KeyFile(d.test_store(0).key_file()), d.clock(0));
  ASSERT_TRUE(twin.ok());
  AddSchool(d[0], "Aspskolan");
  AddSchool(**twin, "Björkskolan");
  std::vector<Commit> original = CommitsAfter(d[0]);
  std::vector<Commit> forked = CommitsAfter(**twin);
  testing::TempDir files;
  BundleHeader header;
  header.district = "Skarpnäck";
  header.exporter = d[0].device_key();
  auto writer = BundleWriter::Create(files.Sub("b"), header);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Add(original[1]).ok());
  ASSERT_TRUE(writer->Add(forked[1]).ok());
  ASSERT_TRUE(writer->Add(original[0]).ok());
  ASSERT_TRUE(writer->Finish().ok());
  auto imported = d[1].ImportBundle(files.Sub("b"));
  EXPECT_FALSE(imported.ok()) << "a bundle holding a fork was imported";
  EXPECT_TRUE(d[1].Heads()->empty());
}

// --- Malformed commits are refused before anything is written ---------------------
struct RogueDistrict {
  TestStore honest, replica;
  SigningKey rogue = SigningKey::Generate();
  SigningKey root = SigningKey::Generate();
  RogueDistrict() {
    std::vector<RosterEntry> entries;
    for (TestStore* s : {&honest, &replica}) {
      RosterEntry e;
      e.signing_key = s->store().device_key();
      e.transport_key = s->store().transport_key();
      e.district = "Skarpnäck";
      e.label = "device " + std::to_string(entries.size() + 1);
      entries.push_back(e);
    }
    RosterEntry e;
    e.signing_key = rogue.public_key();
    e.transport_key = TransportKey::Generate().public_key();
    e.district = "Skarpnäck";
    e.label = "rogue";
    entries.push_back(e);
    auto roster = Roster::Sign(root, "stockholm.se", 1, kStart, entries);
    EXPECT_TRUE(roster.ok()) << roster.status().message();
    for (TestStore* s : {&honest, &replica}) EXPECT_TRUE(s->store().InstallRoster(roster->signed_bytes()).ok());
  }
  // rogue seq 1 (a well-formed new school) and seq 2 (a set op naming field 999).
  std::pair<Commit, Commit> RogueCommits() {
    Record school = MakeRecord(RecordType::kSchool, {{"name", "Rogue"}, {"principal", "municipal"}});
    RecordId id;
    id.bytes[0] = 0x42;
    id.bytes[15] = 0x01;
    school.set_id(id);
    school.set_district("Skarpnäck");
    std::vector<uint16_t> all;
    for (size_t i = 0; i < FieldsOf(RecordType::kSchool).size(); ++i) all.push_back(static_cast<uint16_t>(i));
    CommitBuilder b1;
    b1.AddSet(school, all);
    CommitBuilder::Header h1;
    h1.district = "Skarpnäck";
    h1.seq = 1;
    h1.hlc = static_cast<uint64_t>(kStart + 10) << 16;
    Commit c1 = b1.Sign(rogue, h1);
    CommitBuilder b2;
    b2.AddSet(school, {999});
    CommitBuilder::Header h2 = h1;
    h2.seq = 2;
    h2.parent = c1.id();
    h2.hlc = static_cast<uint64_t>(kStart + 20) << 16;
    Commit c2 = b2.Sign(rogue, h2);
    return {std::move(c1), std::move(c2)};
  }
};

TEST(MergeHardeningTest, ABigBundleWithAMalformedOpIsRefusedWhole) {
  RogueDistrict d;
  RecordId school = AddSchool(d.honest.store(), "Ekskolan");
  for (int c = 0; c < 60; ++c) {
    WriteBatch batch;
    for (int i = 0; i < 1000; ++i) {
      batch.Put(MakeRecord(RecordType::kContact, {{"schoolId", school.ToText()},
                                                 {"socialWorker", "h " + std::to_string(c * 1000 + i)},
                                                 {"fromDate", "2016-08-15"}}));
    }
    ASSERT_TRUE(d.honest->Apply(batch).ok());
  }
  auto [r1, r2] = d.RogueCommits();
  testing::TempDir files;
  BundleHeader header;
  header.district = "Skarpnäck";
  header.exporter = d.honest->device_key();
  auto writer = BundleWriter::Create(files.Sub("b"), header);
  ASSERT_TRUE(writer.ok());
  for (const Commit& c : CommitsAfter(d.honest.store())) ASSERT_TRUE(writer->Add(c).ok());
  ASSERT_TRUE(writer->Add(r1).ok());
  ASSERT_TRUE(writer->Add(r2).ok());
  ASSERT_TRUE(writer->Finish().ok());
  auto imported = d.replica->ImportBundle(files.Sub("b"));
  ASSERT_FALSE(imported.ok());
  EXPECT_NE(imported.status().message().find("field its record type lacks"), std::string::npos)
      << imported.status().message();
  EXPECT_TRUE(d.replica->Heads()->empty()) << "a refused bundle left " << d.replica->Heads()->begin()->second
                                           << " commits of the honest device in the store";
}

TEST(MergeHardeningTest, AMalformedCommitIsNotLeftWaiting) {
  RogueDistrict d;
  auto [r1, r2] = d.RogueCommits();
  std::vector<Commit> first;
  first.push_back(Copy(r2));  // would wait for seq 1, but its op is malformed: refused now
  auto parked = Import(d.replica.store(), std::move(first));
  EXPECT_EQ(parked.status().code(), Code::kCorruption);
  EXPECT_EQ(d.replica->Summary()->waiting, 0u);
  AddSchool(d.honest.store(), "Ekskolan");
  std::vector<Commit> next;
  next.push_back(Copy(r1));
  for (Commit& c : CommitsAfter(d.honest.store())) next.push_back(std::move(c));
  auto later = Import(d.replica.store(), std::move(next));
  EXPECT_TRUE(later.ok()) << later.status().message();
}

// A well-formed commit that waits, and once ready does not follow its device's chain,
// is discarded and reported; it blocks nothing.
TEST(MergeHardeningTest, AWaitingCommitThatFailsOnceReadyIsDiscarded) {
  RogueDistrict d;
  auto [r1, r2] = d.RogueCommits();
  Record school = MakeRecord(RecordType::kSchool, {{"name", "Rogue 2"}, {"principal", "municipal"}});
  school.set_id(d.honest->Get(AddSchool(d.honest.store(), "x")).value().id());
  school.set_district("Skarpnäck");
  CommitBuilder b;
  b.AddSet(school, {0});
  CommitBuilder::Header h;
  h.district = "Skarpnäck";
  h.seq = 2;
  h.parent = Sha256(std::span<const uint8_t>());  // not r1's id: a rewritten chain
  h.hlc = static_cast<uint64_t>(kStart + 30) << 16;
  Commit wrong = b.Sign(d.rogue, h);
  std::vector<Commit> first;
  first.push_back(Copy(wrong));
  auto parked = Import(d.replica.store(), std::move(first));
  ASSERT_TRUE(parked.ok()) << parked.status().message();
  EXPECT_EQ(parked->waiting, 1u);
  std::vector<Commit> next;
  next.push_back(Copy(r1));
  auto later = Import(d.replica.store(), std::move(next));
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_EQ(later->applied, 1u);
  EXPECT_EQ(later->discarded, 1u);
  ASSERT_EQ(later->discard_reasons.size(), 1u);
  EXPECT_NE(later->discard_reasons[0].find("chain was rewritten"), std::string::npos) << later->discard_reasons[0];
  EXPECT_EQ(later->waiting, 0u);
  ExpectVerifies(d.replica.store());
}

// --- The city-wide store: a district cannot touch another district's record ---
// A city-wide store in `dirs` (folder `name`), made with a key file of its own.
std::unique_ptr<Store> CityStore(const testing::TempDir& dirs, const std::string& name, const Clock& clock) {
  std::string key = dirs.Sub(name + ".key");
  EXPECT_TRUE(CreateKeyFile(key).ok());
  CreateOptions options;
  options.city_wide = true;
  auto s = Store::Create(dirs.Sub(name), KeySource::KeyFile(key), std::move(options), clock);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(MergeHardeningTest, ACityStoreRefusesAWriteToAnotherDistrictsRecordInAnyOrder) {
  TestStore skarpnack;  // honest Skarpnäck device
  SigningKey farsta = SigningKey::Generate();
  SigningKey root = SigningKey::Generate();
  testing::TempDir dirs;
  FixedClock city_clock(kStart + 3'600'000);
  std::vector<std::unique_ptr<Store>> city;
  for (int i = 0; i < 2; ++i) {
    city.push_back(CityStore(dirs, "s" + std::to_string(i), city_clock));
    ASSERT_NE(city.back(), nullptr);
  }
  std::vector<RosterEntry> entries(2);
  entries[0].signing_key = skarpnack->device_key();
  entries[0].transport_key = skarpnack->transport_key();
  entries[0].district = "Skarpnäck";
  entries[0].label = "s";
  entries[1].signing_key = farsta.public_key();
  entries[1].transport_key = TransportKey::Generate().public_key();
  entries[1].district = "Farsta";
  entries[1].label = "f";
  auto roster = Roster::Sign(root, "stockholm.se", 1, kStart, entries);
  ASSERT_TRUE(roster.ok()) << roster.status().message();
  for (auto& s : city) ASSERT_TRUE(s->InstallRoster(roster->signed_bytes()).ok());

  RecordId school = AddSchool(skarpnack.store(), "Ekskolan");  // S:1
  skarpnack.clock().AdvanceMs(5000);
  Rename(skarpnack.store(), school, "Ekskolan 2");  // S:2 (later than F:1 below)
  std::vector<Commit> s = CommitsAfter(skarpnack.store());
  // Farsta's device writes the principal of Skarpnäck's school (its own district on the op,
  // as CheckCommit demands), concurrently with S:2.
  auto record = skarpnack->Get(school);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "principal"), "independent").ok());
  record->set_district("Farsta");
  CommitBuilder b;
  b.AddSet(*record, {FindField(RecordType::kSchool, "principal")->ordinal});
  CommitBuilder::Header h;
  h.district = "Farsta";
  h.seq = 1;
  h.hlc = static_cast<uint64_t>(kStart + 1000) << 16;
  h.seen[skarpnack->device_key()] = 1;
  Commit f1 = b.Sign(farsta, h);

  std::vector<Commit> a, c;
  a.push_back(Copy(s[0])); a.push_back(Copy(s[1])); a.push_back(Copy(f1));
  c.push_back(Copy(s[0])); c.push_back(Copy(f1)); c.push_back(Copy(s[1]));
  for (size_t i = 0; i < 2; ++i) {
    auto refused = Import(*city[i], std::move(i == 0 ? a : c));
    EXPECT_EQ(refused.status().code(), Code::kUnauthorised) << refused.status().message();
    EXPECT_NE(refused.status().message().find("not of its own district Farsta"), std::string::npos)
        << refused.status().message();
    std::vector<Commit> honest;
    honest.push_back(Copy(s[0]));
    honest.push_back(Copy(s[1]));
    ASSERT_TRUE(Import(*city[i], std::move(honest)).ok());
  }
  EXPECT_EQ(city[0]->Get(school)->district(), "Skarpnäck");
  EXPECT_EQ(StateHash(*city[0]), StateHash(*city[1]));
  ExpectVerifies(*city[0]);
  ExpectVerifies(*city[1]);
}

// The city's store reads every op's record before it merges a commit, to refuse one
// that touches another district's record, and merges against what it read. An op
// whose record an earlier op of the same commit changed must merge against the record
// as changed: here the put's record must be gone after the delete that follows it.
TEST(MergeHardeningTest, ACityStoreMergesACommitThatChangesARecordTwice) {
  TestStore skarpnack;
  SigningKey root = SigningKey::Generate();
  testing::TempDir dirs;
  FixedClock city_clock(kStart + 3'600'000);
  std::unique_ptr<Store> city = CityStore(dirs, "city", city_clock);
  ASSERT_NE(city, nullptr);
  std::vector<RosterEntry> entries(1);
  entries[0].signing_key = skarpnack->device_key();
  entries[0].transport_key = skarpnack->transport_key();
  entries[0].district = "Skarpnäck";
  entries[0].label = "s";
  auto roster = Roster::Sign(root, "stockholm.se", 1, kStart, entries);
  ASSERT_TRUE(roster.ok()) << roster.status().message();
  ASSERT_TRUE(city->InstallRoster(roster->signed_bytes()).ok());

  RecordId school = AddSchool(skarpnack.store(), "Ekskolan");
  RecordId kept = AddSchool(skarpnack.store(), "Björkskolan");
  Record renamed = skarpnack->Get(school).value();
  ASSERT_TRUE(SetFieldFromText(renamed, *FindField(RecordType::kSchool, "name"), "Ekskolan 2").ok());
  WriteBatch twice;
  twice.Put(std::move(renamed));
  twice.Delete(school);
  ASSERT_TRUE(skarpnack->Apply(twice).ok());
  std::vector<Commit> commits = CommitsAfter(skarpnack.store());
  ASSERT_EQ(commits.size(), 3u);
  ASSERT_EQ(commits[2].reader().getOps().size(), 2u);

  ASSERT_TRUE(Import(*city, std::move(commits)).ok());
  EXPECT_EQ(city->Get(school).status().code(), Code::kNotFound);
  EXPECT_EQ(NameOf(*city, kept), "Björkskolan");
  EXPECT_EQ(StateHash(*city), StateHash(skarpnack.store()));
  ExpectVerifies(*city);
}

// --- Property: convergence whatever the delivery --------------------------------

struct Scenario {
  explicit Scenario(uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
  bool Chance(int percent) { return Pick(100) < static_cast<size_t>(percent); }
};

// Records of `type` that `store` holds.
std::vector<RecordId> Ids(Store& store, RecordType type) {
  std::vector<RecordId> ids;
  auto listed = store.ListAll(type);
  if (listed.ok()) {
    for (const Record& r : *listed) ids.push_back(r.id());
  }
  return ids;
}

const char* kNames[] = {"Ekskolan", "Aspskolan", "Björkskolan", "Lindskolan", "Almskolan", "Granskolan"};

// One device's random action: add, edit (often the same field), delete.
void Act(Scenario& s, Store& store) {
  std::vector<RecordId> schools = Ids(store, RecordType::kSchool);
  std::vector<RecordId> contacts = Ids(store, RecordType::kContact);
  size_t action = s.Pick(10);
  if (schools.empty() || action < 2) {
    AddSchool(store, std::string(kNames[s.Pick(6)]) + " " + std::to_string(s.Pick(1000)), s.Chance(30));
  } else if (action < 7) {
    RecordId id = schools[s.Pick(std::min<size_t>(schools.size(), 3))];  // a few hot records
    auto record = store.Get(id);
    ASSERT_TRUE(record.ok());
    if (s.Chance(70)) {
      ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "name"),
                                   std::string(kNames[s.Pick(6)]) + " " + std::to_string(s.Pick(1000)))
                      .ok());
    } else {
      ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "principal"),
                                   s.Chance(50) ? "independent" : "municipal")
                      .ok());
    }
    WriteBatch batch;
    batch.Put(std::move(*record));
    ASSERT_TRUE(store.Apply(batch).ok());
  } else if (action < 8 && !contacts.empty()) {
    WriteBatch batch;
    batch.Delete(contacts[s.Pick(contacts.size())]);
    ASSERT_TRUE(store.Apply(batch).ok());
  } else if (action < 9) {
    Record contact = MakeRecord(RecordType::kContact, {{"schoolId", schools[s.Pick(schools.size())].ToText()},
                                                        {"socialWorker", "AB"},
                                                        {"fromDate", "2016-08-15"}});
    WriteBatch batch;
    batch.Put(std::move(contact));
    ASSERT_TRUE(store.Apply(batch).ok());
  } else {
    // Delete a school nobody refers to (here), racing whatever others do with it.
    WriteBatch batch;
    batch.Delete(schools[s.Pick(schools.size())]);
    auto deleted = store.Apply(batch);
    ASSERT_TRUE(deleted.ok() || deleted.status().code() == Code::kInvalidInput) << deleted.status().message();
  }
}

// How often the scenarios reached the cases that matter, so the property is not
// passing vacuously.
struct Coverage {
  int field_conflicts = 0, delete_conflicts = 0, waited = 0;
};

void RunScenario(uint64_t seed, Coverage& coverage) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun: SAMSYNC_MERGE_SEED=" + std::to_string(seed) + ")");
  Scenario s(seed);
  constexpr size_t kDevices = 3, kReplicas = 2;
  District d(kDevices, kReplicas);
  for (size_t i = 0; i < d.size(); ++i) d.clock(i).AdvanceMs(static_cast<int64_t>(s.Pick(5000)));
  size_t steps = 12 + s.Pick(12);
  for (size_t step = 0; step < steps; ++step) {
    size_t device = s.Pick(kDevices);
    d.clock(device).AdvanceMs(static_cast<int64_t>(s.Pick(3000)) - 500);  // clocks drift, and step back
    if (s.Chance(25)) {
      size_t from = s.Pick(kDevices);
      if (from != device) Sync(d[from], d[device]);
    } else {
      Act(s, d[device]);
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Every commit made, delivered to each replica in a random order, in random
  // batches, with duplicates.
  std::vector<Commit> all;
  for (size_t i = 0; i < kDevices; ++i) {
    for (Commit& commit : CommitsAfter(d[i])) all.push_back(std::move(commit));
  }
  for (size_t r = kDevices; r < d.size(); ++r) {
    d.clock(r).AdvanceMs(3'600'000);
    std::vector<size_t> order(all.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t extra = s.Pick(4); extra > 0; --extra) order.push_back(s.Pick(all.size()));
    std::shuffle(order.begin(), order.end(), s.rng);
    size_t at = 0;
    bool waited = false;
    while (at < order.size()) {
      size_t n = 1 + s.Pick(6);
      std::vector<Commit> batch;
      for (; n > 0 && at < order.size(); --n, ++at) batch.push_back(Copy(all[order[at]]));
      auto imported = Import(d[r], std::move(batch));
      ASSERT_TRUE(imported.ok()) << imported.status().message();
      waited = waited || imported->waiting > 0;
    }
    auto summary = d[r].Summary();
    ASSERT_TRUE(summary.ok());
    EXPECT_EQ(summary->waiting, 0u);
    if (waited) ++coverage.waited;
  }
  // Devices too, by a full exchange.
  for (size_t i = 0; i < kDevices; ++i) {
    for (size_t j = 0; j < kDevices; ++j) {
      if (i != j) Sync(d[j], d[i]);
    }
  }
  Hash expected = StateHash(d[kDevices]);
  std::vector<std::string> conflicts = ConflictSet(d[kDevices]);
  for (size_t i = 0; i < d.size(); ++i) {
    SCOPED_TRACE("store " + std::to_string(i));
    EXPECT_EQ(StateHash(d[i]), expected);
    EXPECT_EQ(ConflictSet(d[i]), conflicts);
    EXPECT_EQ(*d[i].Heads(), *d[kDevices].Heads());
  }
  ExpectVerifies(d[kDevices + 1]);
  ExpectVerifies(d[0]);
  auto found = d[0].Conflicts();
  ASSERT_TRUE(found.ok());
  for (const Conflict& c : *found) (c.deleted ? coverage.delete_conflicts : coverage.field_conflicts)++;
}

TEST(MergePropertyTest, EveryReplicaConvergesWhateverTheDeliveryOrder) {
  Coverage coverage;
  if (const char* seed = std::getenv("SAMSYNC_MERGE_SEED")) {
    RunScenario(std::strtoull(seed, nullptr, 10), coverage);
    return;
  }
  uint64_t cases = 1000;
  if (const char* n = std::getenv("SAMSYNC_MERGE_CASES")) cases = std::strtoull(n, nullptr, 10);
  for (uint64_t seed = 1; seed <= cases; ++seed) {
    RunScenario(seed, coverage);
    if (HasFailure()) {
      ADD_FAILURE() << "failed at seed " << seed;
      return;
    }
  }
  std::cout << cases << " cases: " << coverage.field_conflicts << " field conflicts, " << coverage.delete_conflicts
            << " deletes racing edits, " << coverage.waited << " replicas held commits back\n";
  if (cases >= 100) {
    EXPECT_GT(coverage.field_conflicts, 0);
    EXPECT_GT(coverage.delete_conflicts, 0);
    EXPECT_GT(coverage.waited, 0);
  }
}

// --- The state hash kept as records change -----------------------------------------

TEST(StateHashTest, ItIsAHashOfTheSetAndRemovingUndoesAdding) {
  TestStore t;
  std::vector<Record> records;
  for (const char* name : {"Ett", "Två", "Tre"}) records.push_back(t->Get(AddSchool(t.store(), name)).value());
  StateHasher empty, forward, backward;
  for (const Record& r : records) forward.Add(r);
  for (auto r = records.rbegin(); r != records.rend(); ++r) backward.Add(*r);
  EXPECT_EQ(forward.Finish(), backward.Finish());
  EXPECT_NE(forward.Finish(), empty.Finish());
  StateHasher two;
  two.Add(records[0]);
  two.Add(records[2]);
  EXPECT_NE(two.Finish(), forward.Finish());
  forward.Remove(records[1]);
  EXPECT_EQ(forward.Finish(), two.Finish());
  // One changed field is another element.
  Record renamed = records[0].Clone();
  ASSERT_TRUE(SetFieldsFromJson(renamed, nlohmann::json{{"name", "Ettan"}}).ok());
  StateHasher changed;
  changed.Add(renamed);
  changed.Add(records[2]);
  EXPECT_NE(changed.Finish(), two.Finish());
  changed.Remove(renamed);
  changed.Remove(records[2]);
  EXPECT_EQ(changed.Finish(), empty.Finish());
  auto bytes = two.Serialize();
  ASSERT_EQ(bytes.size(), StateHasher::kBytes);
  auto back = StateHasher::Deserialize(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Finish(), two.Finish());
  bytes.pop_back();
  EXPECT_FALSE(StateHasher::Deserialize(bytes).has_value());
}

// A store made before the state hash was kept (no meta "state", conflicts listed with
// empty values) reports the same hash, verifies, and keeps the hash from its next write.
TEST(StateHashTest, AStoreWithoutAKeptStateHashDerivesItAndKeepsItFromItsNextWrite) {
  District d(2);
  RecordId school = AddSchool(d[0], "Ekskolan");
  Sync(d[0], d[1]);
  Rename(d[0], school, "Ekskolan A");
  Rename(d[1], school, "Ekskolan B");
  Sync(d[0], d[1]);
  ASSERT_EQ(ConflictSet(d[1]).size(), 1u);
  Hash before = StateHash(d[1]);
  std::string key(1, '\0');
  key.append(reinterpret_cast<const char*>(school.bytes.data()), 16);
  std::string dir = d.test_store(1).dir();
  d.test_store(1).Close();
  {
    testing::RawLmdb raw(dir);
    ASSERT_EQ(raw.Get("conflicts", key).size(), 32u);
    raw.Delete("meta", "state");
    raw.EditValue("conflicts", key, [](std::string& value) { value.clear(); });
  }
  d.test_store(1).Reopen();
  EXPECT_EQ(StateHash(d[1]), before);
  ExpectVerifies(d[1]);
  AddSchool(d[1], "Aspskolan");
  Sync(d[1], d[0]);
  EXPECT_EQ(StateHash(d[1]), StateHash(d[0]));
  ExpectVerifies(d[1]);
  d.test_store(1).Close();
  testing::RawLmdb raw(dir);
  EXPECT_FALSE(raw.Get("meta", "state").empty());
  EXPECT_EQ(raw.Get("conflicts", key).size(), 32u);
}

TEST(StateHashTest, VerifyFindsAKeptStateHashOutOfStepWithTheRecords) {
  TestStore t;
  AddSchool(t.store(), "Ett");
  t.Close();
  std::string earlier;
  {
    testing::RawLmdb raw(t.dir());
    earlier = raw.Get("meta", "state");
    ASSERT_FALSE(earlier.empty());
  }
  t.Reopen();
  AddSchool(t.store(), "Två");
  ExpectVerifies(t.store());
  t.Close();
  {
    testing::RawLmdb raw(t.dir());  // an earlier, authentic value put back
    raw.EditValue("meta", "state", [&](std::string& value) { value = earlier; });
  }
  t.Reopen();
  auto report = t->Verify();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_NE(report->failure.message().find("state hash kept in the store differs"), std::string::npos)
      << report->failure.message();
}

}  // namespace
}  // namespace samsync
