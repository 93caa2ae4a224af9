#include "samsync/demo_data.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "samsync/districts.h"
#include "samsync/identity.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::TestStore;

const Date kToday = Date::FromNumber(20161115).value();

DemoSummary Generate(Store& store, uint64_t seed, double scale = 1.0) {
  DemoOptions options;
  options.seed = seed;
  options.scale = scale;
  options.today = kToday;
  auto summary = GenerateDemoDistrict(store, options);
  EXPECT_TRUE(summary.ok()) << summary.status().message();
  return summary.ok() ? *summary : DemoSummary();
}

std::vector<Record> All(Store& store, RecordType type) {
  auto records = store.ListAll(type);
  EXPECT_TRUE(records.ok()) << records.status().message();
  return records.ok() ? std::move(records).value() : std::vector<Record>();
}

// Every record of every type as JSON, without child references (which depend on the
// store's pseudonymisation key).
std::vector<nlohmann::json> Dump(Store& store) {
  std::vector<nlohmann::json> out;
  for (RecordType type : AllRecordTypes()) {
    for (const Record& record : All(store, type)) {
      nlohmann::json json = RecordToJson(record);
      json.erase("childRef");
      out.push_back(std::move(json));
    }
  }
  return out;
}

Date DateField(const nlohmann::json& json, const char* field) {
  if (!json.contains(field) || json[field].is_null()) return Date();
  return Date::Parse(json[field].get<std::string>()).value();
}

class DemoDataTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    store_ = new TestStore("Skarpnäck");
    summary_ = Generate(store_->store(), 7);
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
  }
  static Store& store() { return store_->store(); }

  static TestStore* store_;
  static DemoSummary summary_;
};

TestStore* DemoDataTest::store_ = nullptr;
DemoSummary DemoDataTest::summary_;

TEST_F(DemoDataTest, EveryRecordTypeIsPresentAndCounted) {
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  uint64_t expected[kRecordTypeCount] = {summary_.schools,    summary_.contacts,  summary_.agreements,
                                         summary_.materials,  summary_.forums,    summary_.concerns,
                                         summary_.enrolments, summary_.followups, summary_.absences};
  for (RecordType type : AllRecordTypes()) {
    int t = static_cast<int>(type);
    EXPECT_GT(stats->records_by_type[t], 0u) << RecordTypeName(type);
    EXPECT_EQ(stats->records_by_type[t], expected[t]) << RecordTypeName(type);
  }
  EXPECT_EQ(stats->persons, summary_.children);
  EXPECT_GE(summary_.schools, 20u);
  EXPECT_LE(summary_.schools, 35u);
  EXPECT_GE(summary_.agreements, 1u);
}

TEST_F(DemoDataTest, NothingIsDatedAfterToday) {
  for (const nlohmann::json& json : Dump(store())) {
    for (const auto& [field, value] : json.items()) {
      std::vector<nlohmann::json> values =
          value.is_array() ? value.get<std::vector<nlohmann::json>>() : std::vector<nlohmann::json>{value};
      for (const nlohmann::json& v : values) {
        if (!v.is_string()) continue;
        auto date = Date::Parse(v.get<std::string>());
        if (date.ok()) {
          EXPECT_LE(*date, kToday) << field << " in " << json.dump();
        }
      }
    }
  }
}

TEST_F(DemoDataTest, IdsCarryTodayAndIncrease) {
  std::vector<RecordId> ids;
  for (RecordType type : AllRecordTypes()) {
    for (const Record& record : All(store(), type)) ids.push_back(record.id());
  }
  int64_t day_ms = int64_t{kToday.Days()} * 86400000;
  std::set<RecordId> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  for (const RecordId& id : ids) {
    int64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = (ms << 8) | id.bytes[i];
    EXPECT_GE(ms, day_ms);
    EXPECT_LT(ms, day_ms + 86400000);
  }
  // Schools are written first, so every school id sorts before every other id.
  auto schools = All(store(), RecordType::kSchool);
  auto contacts = All(store(), RecordType::kContact);
  ASSERT_FALSE(schools.empty());
  ASSERT_FALSE(contacts.empty());
  EXPECT_LT(schools.back().id(), contacts.front().id());
}

TEST_F(DemoDataTest, ChildrenHaveValidMadeUpIdentities) {
  std::set<std::string> seen;
  for (const Record& record : All(store(), RecordType::kEnrolment)) {
    for (const ChildRef& ref : ChildRefsOf(record)) {
      auto person = store().LookupPerson(ref);
      ASSERT_TRUE(person.ok()) << person.status().message();
      EXPECT_TRUE(NormalisePersonnummer(person->personnummer).ok());
      EXPECT_NE(person->name.find(' '), std::string::npos) << person->name;
      seen.insert(person->personnummer);
    }
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST_F(DemoDataTest, SchoolsMixPrincipalsFormsAndStatus) {
  int independent = 0, municipal = 0, focus = 0, closed = 0, upper = 0, preschool = 0;
  std::set<std::string> names;
  for (const Record& record : All(store(), RecordType::kSchool)) {
    nlohmann::json json = RecordToJson(record);
    (json["principal"] == "independent" ? independent : municipal)++;
    if (json["ppssFocus"] == true) ++focus;
    if (!json["closedDate"].is_null()) ++closed;
    for (const auto& form : json["forms"]) {
      if (form == "upperSecondary") ++upper;
      if (form == "preschool") ++preschool;
    }
    names.insert(json["name"].get<std::string>());
  }
  EXPECT_GT(independent, 0);
  EXPECT_GT(municipal, independent);  // Skarpnäck is an outer district
  EXPECT_EQ(focus, 2);                // one of the eight PPSS districts
  EXPECT_GE(closed, 1);
  EXPECT_LE(closed, 2);
  EXPECT_GT(upper, 0);
  EXPECT_GT(preschool, 0);
  EXPECT_EQ(names.size(), summary_.schools);
}

TEST_F(DemoDataTest, ContactChangesAreToldInTimeLateAndNever) {
  const Date period_start = Date::FromNumber(20150101).value();
  int in_time = 0, late = 0, never = 0;
  std::map<std::string, std::set<std::string>> schools_of_worker;
  for (const Record& record : All(store(), RecordType::kContact)) {
    nlohmann::json json = RecordToJson(record);
    Date from = DateField(json, "fromDate"), informed = DateField(json, "informedDate");
    if (DateField(json, "toDate").empty()) {
      schools_of_worker[json["socialWorker"]].insert(json["schoolId"].get<std::string>());
    }
    if (from < period_start) continue;
    if (informed.empty()) {
      ++never;
    } else if (DaysBetween(from, informed) <= 14) {
      ++in_time;
    } else {
      ++late;
    }
  }
  EXPECT_GT(in_time, 0);
  EXPECT_GT(late, 0);
  EXPECT_GT(never, 0);
  // About two schools per contact person today.
  size_t assigned = 0;
  for (const auto& [worker, schools] : schools_of_worker) assigned += schools.size();
  ASSERT_FALSE(schools_of_worker.empty());
  double mean = static_cast<double>(assigned) / static_cast<double>(schools_of_worker.size());
  EXPECT_GE(mean, 1.5);
  EXPECT_LE(mean, 3.0);
}

TEST_F(DemoDataTest, ForumsHaveEveryKindAndIndependentSchoolsAttendLess) {
  std::map<std::string, bool> independent;
  for (const Record& record : All(store(), RecordType::kSchool)) {
    nlohmann::json json = RecordToJson(record);
    independent[json["id"]] = json["principal"] == "independent";
  }
  std::map<std::string, int> kinds;
  int cancelled = 0;
  int invited[2] = {0, 0}, attended[2] = {0, 0};  // [municipal, independent]
  for (const Record& record : All(store(), RecordType::kForum)) {
    nlohmann::json json = RecordToJson(record);
    kinds[json["kind"]]++;
    if (json["cancelled"] == true) {
      ++cancelled;
      continue;
    }
    for (const auto& id : json["invitedSchoolIds"]) invited[independent.at(id)]++;
    for (const auto& id : json["attendedSchoolIds"]) attended[independent.at(id)]++;
  }
  EXPECT_GT(kinds["steeringGroup"], 0);
  EXPECT_GT(kinds["managers"], 0);
  EXPECT_GT(kinds["transition"], 0);
  EXPECT_GE(kinds["localForum"], 2 * 2 * 3);  // 2–3 areas, 2–3 a term, over 3+ terms
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(attended[0], 0);
  EXPECT_GT(attended[1], 0);
  double municipal_rate = static_cast<double>(attended[0]) / invited[0];
  double independent_rate = static_cast<double>(attended[1]) / invited[1];
  EXPECT_LT(independent_rate, municipal_rate);
}

TEST_F(DemoDataTest, SomeConcernReportsLackFeedback) {
  int with = 0, without = 0;
  std::set<std::string> forms;
  for (const Record& record : All(store(), RecordType::kConcern)) {
    nlohmann::json json = RecordToJson(record);
    if (json["feedbackDate"].is_null()) {
      ++without;
      EXPECT_EQ(json["feedbackForm"], "none");
    } else {
      ++with;
      forms.insert(json["feedbackForm"].get<std::string>());
    }
  }
  EXPECT_GT(without, 0);
  EXPECT_GT(with, without);
  EXPECT_EQ(forms, (std::set<std::string>{"meeting", "phone", "letter", "email"}));
}

TEST_F(DemoDataTest, ProgrammesAndFollowUpsLookLikeTheEvaluations) {
  int placed = 0, with_plan = 0;
  std::set<std::string> programmes;
  for (const Record& record : All(store(), RecordType::kEnrolment)) {
    nlohmann::json json = RecordToJson(record);
    programmes.insert(json["programme"].get<std::string>());
    if (json["programme"] == "placed") {
      ++placed;
      if (json["hasSchoolPlan"] == true) ++with_plan;
    }
  }
  EXPECT_EQ(programmes, (std::set<std::string>{"ppss", "skolfam", "placed"}));
  EXPECT_GT(with_plan, placed / 2);
  EXPECT_LT(with_plan, placed);

  // Follow-ups per child, in date order: mostly at most 8 weeks apart, some late.
  std::map<ChildRef, std::vector<Date>> dates;
  int eligible = 0;
  for (const Record& record : All(store(), RecordType::kFollowup)) {
    auto f = record.reader().getBody().getFollowup();
    EXPECT_GE(f.getAttendancePct(), 0.0f);
    EXPECT_LE(f.getAttendancePct(), 100.0f);
    EXPECT_LE(f.getSchoolYear(), 12);
    if (f.getEligibleUpperSecondary()) {
      ++eligible;
      EXPECT_EQ(f.getSchoolYear(), 9);
    }
    dates[ChildRefsOf(record).at(0)].push_back(Date::FromNumber(f.getDate()).value());
  }
  int on_time = 0, late = 0;
  for (auto& [child, list] : dates) {
    std::sort(list.begin(), list.end());
    for (size_t i = 1; i < list.size(); ++i) (DaysBetween(list[i - 1], list[i]) <= 56 ? on_time : late)++;
  }
  EXPECT_GT(on_time, late);
  EXPECT_GT(late, 0);
  EXPECT_GT(eligible, 0);
}

TEST_F(DemoDataTest, AbsenceFlagsSometimesReachSocialServices) {
  int contacted = 0, not_contacted = 0;
  for (const Record& record : All(store(), RecordType::kAbsence)) {
    (record.reader().getBody().getAbsence().getContactedDate() != 0 ? contacted : not_contacted)++;
  }
  EXPECT_GT(contacted, 0);
  EXPECT_GT(not_contacted, 0);
}

TEST(DemoData, SameSeedGivesSameRecordsAndChildren) {
  TestStore a, b;
  DemoSummary first = Generate(a.store(), 42, 0.5);
  DemoSummary second = Generate(b.store(), 42, 0.5);
  EXPECT_EQ(first.records(), second.records());
  EXPECT_EQ(first.children, second.children);
  EXPECT_EQ(Dump(a.store()), Dump(b.store()));
  // The children behind the references are the same people.
  auto in_a = a->ListAll(RecordType::kConcern);
  auto in_b = b->ListAll(RecordType::kConcern);
  ASSERT_TRUE(in_a.ok() && in_b.ok());
  ASSERT_EQ(in_a->size(), in_b->size());
  for (size_t i = 0; i < in_a->size() && i < 30; ++i) {  // each lookup is a logged write
    auto pa = a->LookupPerson(ChildRefsOf((*in_a)[i]).at(0));
    auto pb = b->LookupPerson(ChildRefsOf((*in_b)[i]).at(0));
    ASSERT_TRUE(pa.ok() && pb.ok());
    EXPECT_EQ(pa->personnummer, pb->personnummer);
    EXPECT_EQ(pa->name, pb->name);
  }
}

TEST(DemoData, DifferentSeedsDiffer) {
  TestStore a, b;
  Generate(a.store(), 1, 0.3);
  Generate(b.store(), 2, 0.3);
  EXPECT_NE(Dump(a.store()), Dump(b.store()));
}

TEST(DemoData, RunningAgainReplacesInsteadOfDuplicating) {
  TestStore store;
  DemoSummary first = Generate(store.store(), 5, 0.3);
  std::vector<nlohmann::json> before = Dump(store.store());
  DemoSummary again = Generate(store.store(), 5, 0.3);
  EXPECT_EQ(first.records(), again.records());
  EXPECT_EQ(Dump(store.store()), before);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->persons, first.children);
}

TEST(DemoData, ScaleMultipliesCounts) {
  TestStore small, big;
  DemoSummary s = Generate(small.store(), 3, 0.2);
  DemoSummary l = Generate(big.store(), 3, 2.0);
  EXPECT_GT(s.records(), 0u);
  EXPECT_LT(s.records() * 4, l.records());
  EXPECT_LT(s.children * 4, l.children);
  EXPECT_LT(s.schools * 4, l.schools);
}

TEST(DemoData, RecordsPerCommitSplitsTheSameRecordsIntoCommits) {
  TestStore whole, split;
  DemoSummary one = Generate(whole.store(), 7, 0.3);
  DemoOptions options;
  options.seed = 7;
  options.scale = 0.3;
  options.today = kToday;
  options.records_per_commit = 10;
  auto many = GenerateDemoDistrict(split.store(), options);
  ASSERT_TRUE(many.ok()) << many.status().message();
  EXPECT_EQ(many->records(), one.records());
  EXPECT_EQ(Dump(split.store()), Dump(whole.store()));
  auto verified_whole = whole->Verify(), verified_split = split->Verify();
  ASSERT_TRUE(verified_whole.ok() && verified_split.ok());
  EXPECT_TRUE(verified_split->failure.ok()) << verified_split->failure.message();
  EXPECT_EQ(verified_split->commits - verified_whole->commits, (one.records() + 9) / 10 - 1)
      << "ceil(records / 10) commits instead of one";
}

TEST(DemoData, InnerCityHasMoreIndependentSchoolsAndNoPpss) {
  auto share = [](Store& store, int* focus) {
    int independent = 0, all = 0;
    *focus = 0;
    auto schools = store.ListAll(RecordType::kSchool);
    EXPECT_TRUE(schools.ok());
    for (const Record& record : *schools) {
      auto s = record.reader().getBody().getSchool();
      ++all;
      if (s.getPrincipal() == schema::Principal::INDEPENDENT) ++independent;
      if (s.getPpssFocus()) ++*focus;
    }
    return static_cast<double>(independent) / all;
  };
  TestStore inner("Östermalm"), outer("Rinkeby-Kista");
  Generate(inner.store(), 9);
  Generate(outer.store(), 9);
  int inner_focus = 0, outer_focus = 0;
  EXPECT_GT(share(inner.store(), &inner_focus), share(outer.store(), &outer_focus));
  EXPECT_EQ(inner_focus, 0);
  EXPECT_EQ(outer_focus, 2);
}

TEST(DemoData, EveryDistrictGenerates) {
  std::set<std::string> personnummer;
  for (const std::string& district : Districts()) {
    TestStore store(district);
    DemoSummary summary = Generate(store.store(), 11, 0.2);
    EXPECT_GT(summary.schools, 0u) << district;
    EXPECT_GT(summary.records(), summary.schools) << district;
    // Districts draw personnummer from their own serial ranges.
    auto concerns = store->ListAll(RecordType::kConcern);
    ASSERT_TRUE(concerns.ok());
    std::set<std::string> here;
    for (size_t i = 0; i < concerns->size() && i < 20; ++i) {
      const Record& record = (*concerns)[i];
      auto person = store->LookupPerson(ChildRefsOf(record).at(0));
      ASSERT_TRUE(person.ok());
      here.insert(person->personnummer);
    }
    for (const std::string& p : here) EXPECT_TRUE(personnummer.insert(p).second) << district;
  }
}

TEST(DemoData, RejectsBadOptions) {
  TestStore store;
  DemoOptions options;
  auto no_today = GenerateDemoDistrict(store.store(), options);
  EXPECT_EQ(no_today.status().code(), Code::kInvalidInput);
  options.today = kToday;
  options.scale = 0;
  EXPECT_EQ(GenerateDemoDistrict(store.store(), options).status().code(), Code::kInvalidInput);
  options.scale = 1000;
  EXPECT_EQ(GenerateDemoDistrict(store.store(), options).status().code(), Code::kInvalidInput);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->persons, 0u);
}

}  // namespace
}  // namespace samsync
