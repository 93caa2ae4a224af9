// The encrypted store: round trips, indexes, atomicity, encryption at rest, keys.
#include <lmdb.h>

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <string>

#include "samsync/store.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::AddChild;
using testing::AddSchool;
using testing::MakeRecord;
using testing::PutOrDie;
using testing::RawLmdb;
using testing::TempDir;
using testing::TestStore;

std::string RecordKey(RecordType type, const RecordId& id) {
  std::string key(1, static_cast<char>(type));
  key.append(reinterpret_cast<const char*>(id.bytes.data()), 16);
  return key;
}

Record Concern(const RecordId& school, const ChildRef& child, const std::string& received) {
  return MakeRecord(RecordType::kConcern,
                    {{"schoolId", school.ToText()}, {"receivedDate", received}, {"childRef", child.ToText()}});
}

TEST(StoreTest, RoundTripsEveryFieldKindAndSurvivesReopen) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Skarpnäcksskolan");
  RecordId forum = PutOrDie(t.store(), MakeRecord(RecordType::kForum, {{"kind", "localForum"},
                                                                       {"date", "2016-10-04"},
                                                                       {"invitedSchoolIds", school.ToText()},
                                                                       {"attendedSchoolIds", school.ToText()}}));
  RecordId agreement = PutOrDie(t.store(), MakeRecord(RecordType::kAgreement, {{"version", "3"},
                                                                               {"parties", "Skarpnäck SDN, Grundskoleavdelningen"},
                                                                               {"adoptedDate", "2014-02-01"},
                                                                               {"revisionDates", "2015-02-01,2016-02-10"}}));
  t.Reopen();
  auto got = t->Get(agreement);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->district(), "Skarpnäck");
  EXPECT_EQ(FieldToText(*got, *FindField(RecordType::kAgreement, "parties")), "Skarpnäck SDN,Grundskoleavdelningen");
  EXPECT_EQ(FieldToText(*got, *FindField(RecordType::kAgreement, "revisionDates")), "2015-02-01,2016-02-10");
  auto f = t->Get(forum);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(FieldToText(*f, *FindField(RecordType::kForum, "kind")), "localForum");
  EXPECT_EQ(FieldToText(*f, *FindField(RecordType::kForum, "attendedSchoolIds")), school.ToText());
}

TEST(StoreTest, GetOfUnknownIdIsNotFound) {
  TestStore t;
  auto got = t->Get(RecordId{});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
}

TEST(StoreTest, IdsIncreaseSoInsertsAppend) {
  TestStore t;
  RecordId a = AddSchool(t.store(), "A");
  RecordId b = AddSchool(t.store(), "B");
  RecordId c = AddSchool(t.store(), "C");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(StoreTest, ListsBySchoolByDateRangeAndByTerm) {
  TestStore t;
  RecordId s1 = AddSchool(t.store(), "Ett");
  RecordId s2 = AddSchool(t.store(), "Två", /*independent=*/true);
  ChildRef child = AddChild(t.store(), 1);
  PutOrDie(t.store(), Concern(s1, child, "2016-06-30"));  // last day of VT
  PutOrDie(t.store(), Concern(s1, child, "2016-07-01"));  // first day of HT
  PutOrDie(t.store(), Concern(s2, child, "2016-09-15"));
  PutOrDie(t.store(), Concern(s2, child, "2015-09-15"));

  auto by_school = t->ListAll(RecordType::kConcern, {.school = s1});
  ASSERT_TRUE(by_school.ok());
  EXPECT_EQ(by_school->size(), 2u);

  auto ht = Term::Parse("2016HT");
  auto in_ht = t->ListAll(RecordType::kConcern, {.from = ht->Start(), .to = ht->End()});
  ASSERT_TRUE(in_ht.ok());
  ASSERT_EQ(in_ht->size(), 2u);
  EXPECT_EQ(IndexDateOf((*in_ht)[0]).ToString(), "2016-07-01");  // date order
  EXPECT_EQ(IndexDateOf((*in_ht)[1]).ToString(), "2016-09-15");

  auto vt = Term::Parse("2016VT");
  auto in_vt = t->ListAll(RecordType::kConcern, {.from = vt->Start(), .to = vt->End()});
  ASSERT_EQ(in_vt->size(), 1u);

  auto s2_in_2016 = t->ListAll(RecordType::kConcern, {.from = Date::Parse("2016-01-01").value(), .school = s2});
  EXPECT_EQ(s2_in_2016->size(), 1u);
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.child = child})->size(), 4u);
}

TEST(StoreTest, UpdateMovesIndexEntries) {
  TestStore t;
  RecordId s1 = AddSchool(t.store(), "Ett");
  RecordId s2 = AddSchool(t.store(), "Två");
  ChildRef child = AddChild(t.store(), 1);
  RecordId concern = PutOrDie(t.store(), Concern(s1, child, "2016-03-01"));
  Record changed = t->Get(concern).value();
  ASSERT_TRUE(SetFieldFromText(changed, *FindField(RecordType::kConcern, "schoolId"), s2.ToText()).ok());
  ASSERT_TRUE(SetFieldFromText(changed, *FindField(RecordType::kConcern, "receivedDate"), "2016-09-01").ok());
  PutOrDie(t.store(), std::move(changed));
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.school = s1})->size(), 0u);
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.school = s2})->size(), 1u);
  auto vt = Term::Parse("2016VT").value();
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.from = vt.Start(), .to = vt.End()})->size(), 0u);
}

// A record given with its id, as demo-data and an import write them. An id no commit
// has touched is taken as new without looking up each type's record and tombstone, so
// these are the cases that must still find what is held: the same id twice in one
// batch (the second is an update of the first, though its commit is not stored yet),
// and an id held as another type.
TEST(StoreTest, AGivenIdWrittenTwiceInOneBatchIsAddedThenUpdated) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 1);
  RecordId id = RecordIdGenerator().Next(SystemClock());
  WriteBatch batch;
  Record first = Concern(school, child, "2016-03-01");
  first.set_id(id);
  batch.Put(std::move(first));
  Record second = Concern(school, child, "2016-09-01");
  second.set_id(id);
  batch.Put(std::move(second));
  ASSERT_TRUE(t->Apply(batch).ok());

  auto vt = Term::Parse("2016VT").value();
  auto ht = Term::Parse("2016HT").value();
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.from = vt.Start(), .to = vt.End()})->size(), 0u);
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {.from = ht.Start(), .to = ht.End()})->size(), 1u);
  auto report = t->Verify();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
}

TEST(StoreTest, AGivenIdHeldAsAnotherTypeIsRefused) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 1);
  Record concern = Concern(school, child, "2016-03-01");
  concern.set_id(school);
  WriteBatch batch;
  batch.Put(std::move(concern));
  auto refused = t->Apply(batch);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("is a school, not a concern"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(t->ListAll(RecordType::kConcern, {})->size(), 0u);
}

// An update writes only the index entries that change: whatever it keeps or moves,
// the record is listed where it now belongs, once, and nowhere else; deleted, it
// leaves no entry behind (one would read as an entry for a missing record).
TEST(StoreTest, AnUpdateIsListedWhereItNowBelongsWhateverItKeeps) {
  TestStore t;
  RecordId s1 = AddSchool(t.store(), "Ett");
  RecordId s2 = AddSchool(t.store(), "Två");
  ChildRef child = AddChild(t.store(), 1);
  RecordId concern = PutOrDie(t.store(), Concern(s1, child, "2016-03-01"));
  const Term vt = Term::Parse("2016VT").value(), ht = Term::Parse("2016HT").value();
  auto count = [](const Result<std::vector<Record>>& listed) {
    EXPECT_TRUE(listed.ok()) << listed.status().message();
    return listed.ok() ? listed->size() : size_t{99};
  };
  auto at = [&](const RecordId& school) { return count(t->ListAll(RecordType::kConcern, {.school = school})); };
  auto in = [&](const Term& term) {
    return count(t->ListAll(RecordType::kConcern, {.from = term.Start(), .to = term.End()}));
  };
  auto change = [&](std::vector<std::pair<const char*, std::string>> fields) {
    Record changed = t->Get(concern).value();
    for (const auto& [field, value] : fields) {
      ASSERT_TRUE(SetFieldFromText(changed, *FindField(RecordType::kConcern, field), value).ok());
    }
    PutOrDie(t.store(), std::move(changed));
  };

  // The district gave the school feedback: neither the school nor the date changes.
  change({{"feedbackDate", "2016-03-10"}, {"feedbackForm", "meeting"}});
  EXPECT_EQ(at(s1), 1u);
  EXPECT_EQ(at(s2), 0u);
  EXPECT_EQ(in(vt), 1u);
  EXPECT_EQ(in(ht), 0u);
  change({{"schoolId", s2.ToText()}});  // the school only
  EXPECT_EQ(at(s1), 0u);
  EXPECT_EQ(at(s2), 1u);
  EXPECT_EQ(in(vt), 1u);
  change({{"receivedDate", "2016-09-01"}, {"feedbackDate", "2016-09-10"}});  // the date (and so its feedback's)
  EXPECT_EQ(at(s2), 1u);
  EXPECT_EQ(in(vt), 0u);
  EXPECT_EQ(in(ht), 1u);
  EXPECT_EQ(RecordToJson(t->Get(concern).value())["feedbackForm"], "meeting");
  auto verified = t->Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->failure.ok()) << verified->failure.message();

  WriteBatch deletion;
  deletion.Delete(concern);
  ASSERT_TRUE(t->Apply(deletion).ok());
  EXPECT_EQ(at(s1), 0u);
  EXPECT_EQ(at(s2), 0u);
  EXPECT_EQ(in(vt), 0u);
  EXPECT_EQ(in(ht), 0u);
}

TEST(StoreTest, ABatchIsWholeOrNothing) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  WriteBatch batch;
  batch.Put(MakeRecord(RecordType::kSchool, {{"name", "Ny skola"}, {"principal", "municipal"}}), "row 2");
  batch.Put(MakeRecord(RecordType::kContact, {{"schoolId", school.ToText()}, {"socialWorker", "AB"}}), "row 3");
  auto result = t->Apply(batch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kInvalidInput);
  EXPECT_EQ(result.status().message(), "row 3: fromDate: is required");
  EXPECT_EQ(t->ListAll(RecordType::kSchool)->size(), 1u);  // "Ny skola" was not written
}

TEST(StoreTest, RefusesReferencesToMissingSchoolsAndChildren) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 1);
  RecordId unknown = RecordId::Parse("01M83V3D5CWHZ1P416TVF4CJY8").value();
  WriteBatch missing_school;
  missing_school.Put(Concern(unknown, child, "2016-03-01"));
  auto r1 = t->Apply(missing_school);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("schoolId: no school 01M83V3D5CWHZ1P416TVF4CJY8"), std::string::npos)
      << r1.status().message();

  WriteBatch missing_child;
  missing_child.Put(Concern(school, unknown, "2016-03-01"));
  auto r2 = t->Apply(missing_child);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("childRef: no child"), std::string::npos);
  EXPECT_EQ(t->ListAll(RecordType::kConcern)->size(), 0u);
}

TEST(StoreTest, ABatchCannotNameASchoolItHasDeleted) {
  // Apply looks each school or child a batch names up once; a delete in the batch must
  // make it look again.
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 1);
  RecordId first = RecordId::Parse("01M83V3D5CWHZ1P416TVF4CJY8").value();
  Record named = Concern(school, child, "2016-03-01");
  named.set_id(first);
  WriteBatch batch;
  batch.Put(std::move(named), "row 1");
  batch.Delete(first, "row 2");
  batch.Delete(school, "row 3");
  batch.Put(Concern(school, child, "2016-03-02"), "row 4");
  auto result = t->Apply(batch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "row 4: schoolId: no school " + school.ToText() + " in this store");
  EXPECT_TRUE(t->Get(school).ok());  // nothing of the batch was written
  EXPECT_EQ(t->ListAll(RecordType::kConcern)->size(), 0u);

  WriteBatch again;  // and without the delete, the same school named twice is fine
  again.Put(Concern(school, child, "2016-03-01"));
  again.Put(Concern(school, child, "2016-03-02"));
  ASSERT_TRUE(t->Apply(again).ok());
  EXPECT_EQ(t->ListAll(RecordType::kConcern)->size(), 2u);
}

TEST(StoreTest, DeletingAReferencedSchoolIsRefused) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  RecordId other = AddSchool(t.store(), "Två");
  PutOrDie(t.store(), MakeRecord(RecordType::kContact,
                                 {{"schoolId", school.ToText()}, {"socialWorker", "AB"}, {"fromDate", "2016-01-01"}}));
  WriteBatch refused;
  refused.Delete(school);
  auto r = t->Apply(refused);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("referred to by other records"), std::string::npos);
  EXPECT_TRUE(t->Get(school).ok());

  WriteBatch allowed;
  allowed.Delete(other);
  ASSERT_TRUE(t->Apply(allowed).ok());
  EXPECT_EQ(t->Get(other).status().code(), Code::kNotFound);

  WriteBatch again;
  again.Delete(other);
  EXPECT_EQ(t->Apply(again).status().code(), Code::kNotFound);
}

TEST(StoreTest, NoPlaintextNameOrPersonnummerOrChildRefAnywhereInTheFile) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Hemligaskolan");
  auto ref = t->AddPerson("20080215-1233", "Anna Hemligsson");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  PutOrDie(t.store(), Concern(school, *ref, "2016-10-01"));
  std::string child_bytes(reinterpret_cast<const char*>(ref->bytes.data()), 16);
  t.Close();

  // Also the raw file, in case something bypassed the tables.
  std::ifstream file(t.dir() + "/data.mdb", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_GT(raw.size(), 0u);
  for (std::string_view secret : {"Hemligaskolan", "Hemligsson", "20080215", "0802151233", "Skarpn"}) {
    EXPECT_EQ(raw.find(secret), std::string::npos) << secret << " is in the file";
  }
  EXPECT_EQ(raw.find(child_bytes), std::string::npos) << "a child reference is in the file";

  size_t values = 0;
  RawLmdb(t.dir()).ForEach([&](const std::string& table, std::string_view key, std::string_view value) {
    ++values;
    for (std::string_view secret : {"Hemligaskolan", "Hemligsson", "20080215", "1233"}) {
      EXPECT_EQ(key.find(secret), std::string_view::npos) << table;
      if (table != "meta") {
        EXPECT_EQ(value.find(secret), std::string_view::npos) << table;
      }
    }
    EXPECT_EQ(key.find(child_bytes), std::string_view::npos) << "child reference in a key of " << table;
  });
  EXPECT_GE(values, 6u);
}

TEST(StoreTest, AFlippedByteInAStoredValueNamesTheRecord) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  t.Close();
  RawLmdb(t.dir()).EditValue("records", RecordKey(RecordType::kSchool, school),
                             [](std::string& value) { value[value.size() / 2] ^= 0x01; });
  t.Reopen();
  auto got = t->Get(school);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kCorruption);
  EXPECT_EQ(got.status().message(),
            "school " + school.ToText() + " fails authentication: its stored bytes were altered or moved");
  // Listing meets the same record and fails the same way, rather than skipping it.
  auto listed = t->ListAll(RecordType::kSchool);
  EXPECT_EQ(listed.status().code(), Code::kCorruption);
}

TEST(StoreTest, AValueMovedToAnotherKeyFailsAuthentication) {
  TestStore t;
  RecordId a = AddSchool(t.store(), "A");
  RecordId b = AddSchool(t.store(), "B");
  t.Close();
  RawLmdb raw(t.dir());
  std::string value_of_a = raw.Get("records", RecordKey(RecordType::kSchool, a));
  raw.EditValue("records", RecordKey(RecordType::kSchool, b), [&](std::string& value) { value = value_of_a; });
  t.Reopen();
  EXPECT_EQ(t->Get(b).status().code(), Code::kCorruption);
  EXPECT_TRUE(t->Get(a).ok());
}

TEST(StoreTest, WrongPassphraseIsAClearError) {
  TempDir dir;
  FixedClock clock(1479211200000);
  CreateOptions options;
  options.district = "farsta";
  auto made = Store::Create(dir.Sub("s"), KeySource::Passphrase(SecretBytes::CopyOf("rätt lösenord")), std::move(options), clock);
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_EQ((*made)->district(), "Farsta");
  made->reset();

  auto wrong = Store::Open(dir.Sub("s"), KeySource::Passphrase(SecretBytes::CopyOf("fel lösenord")), clock);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
  EXPECT_EQ(wrong.status().message(), "wrong passphrase, or not a samsync store");

  auto right = Store::Open(dir.Sub("s"), KeySource::Passphrase(SecretBytes::CopyOf("rätt lösenord")), clock);
  EXPECT_TRUE(right.ok()) << right.status().message();
}

TEST(StoreTest, WrongKeyFileAndMissingStoreAreClearErrors) {
  TestStore t;
  t.Close();
  TempDir other;
  ASSERT_TRUE(CreateKeyFile(other.Sub("other.key")).ok());
  FixedClock clock(0);
  auto wrong = Store::Open(t.dir(), KeySource::KeyFile(other.Sub("other.key")), clock);
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
  auto passphrase = Store::Open(t.dir(), KeySource::Passphrase(SecretBytes::CopyOf("x")), clock);
  EXPECT_EQ(passphrase.status().code(), Code::kWrongKey);
  auto missing = Store::Open(other.Sub("nothing"), KeySource::KeyFile(t.key_file()), clock);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(CreateKeyFile(other.Sub("other.key")).code(), Code::kInvalidInput);  // never overwritten
}

TEST(StoreTest, AKeyFileReadableByOthersIsRefused) {
  TestStore t;
  t.Close();
  ASSERT_EQ(::chmod(t.key_file().c_str(), 0644), 0);
  FixedClock clock(0);
  auto opened = Store::Open(t.dir(), KeySource::KeyFile(t.key_file()), clock);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("chmod 600"), std::string::npos);
}

TEST(StoreTest, CreatingOverAnExistingStoreIsRefused) {
  TestStore t;
  AddSchool(t.store(), "Ett");
  t.Close();
  CreateOptions options;
  options.district = "Bromma";
  FixedClock clock(0);
  auto again = Store::Create(t.dir(), KeySource::KeyFile(t.key_file()), std::move(options), clock);
  EXPECT_EQ(again.status().code(), Code::kInvalidInput);
  t.Reopen();
  EXPECT_EQ(t->district(), "Skarpnäck");
  EXPECT_EQ(t->ListAll(RecordType::kSchool)->size(), 1u);
}

TEST(StoreTest, PersonsGetStablePseudonymsAndLookupsAreLogged) {
  TestStore t;
  auto a = t->AddPerson("20080215-1233", "Anna");
  auto again = t->AddPerson("200802151233", "Anna A");
  ASSERT_TRUE(a.ok() && again.ok());
  EXPECT_EQ(*a, *again);
  auto person = t->LookupPerson(*a);
  ASSERT_TRUE(person.ok());
  EXPECT_EQ(person->personnummer, "20080215-1233");
  EXPECT_EQ(person->name, "Anna A");
  EXPECT_FALSE(t->AddPerson("20080215-1234", "Fel").ok());  // Luhn
  auto stats = t->Stats();
  EXPECT_EQ(stats->persons, 1u);
  t.Close();
  size_t log_entries = 0;
  RawLmdb(t.dir()).ForEach([&](const std::string& table, std::string_view, std::string_view) {
    log_entries += table == "person_log";
  });
  EXPECT_EQ(log_entries, 3u);  // added, added again, looked up
}

TEST(StoreTest, TheSamePseudonymisationKeyGivesTheSameChildReferenceInAnotherDistrict) {
  TempDir dir;
  FixedClock clock(0);
  SecretBytes city_key = SecretBytes::Random(32);
  auto make = [&](const char* name, const char* district) {
    CreateOptions options;
    options.district = district;
    options.pseudonym_key = SecretBytes::CopyOf(city_key.span());
    EXPECT_TRUE(CreateKeyFile(dir.Sub(std::string(name) + ".key")).ok());
    return Store::Create(dir.Sub(name), KeySource::KeyFile(dir.Sub(std::string(name) + ".key")), std::move(options), clock);
  };
  auto a = make("a", "Bromma");
  auto b = make("b", "Farsta");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->AddPerson("20080215-1233", "X").value(), (*b)->AddPerson("20080215-1233", "X").value());
}

}  // namespace
}  // namespace samsync
