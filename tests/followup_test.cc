// The follow-up model: each indicator on a small hand-made district with exact figures,
// including the boundaries of the term, of R and of each window.
//
// Unless a test says otherwise the report is for 2016HT with reference date
// 2016-11-15, so T = [2016-07-01, 2016-11-15] and R = 2016-11-15.
#include "samsync/followup.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "samsync/demo_data.h"
#include "test_support.h"

namespace samsync {
namespace {

using nlohmann::json;
using testing::AddChild;
using testing::MakeRecord;
using testing::PutOrDie;
using testing::TestStore;
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string IdList(const std::vector<RecordId>& ids) {
  std::string out;
  for (const RecordId& id : ids) out += (out.empty() ? "" : ",") + id.ToText();
  return out;
}

class FollowupTest : public ::testing::Test {
 protected:
  Store& store() { return test_store_.store(); }

  RecordId School(std::string name, bool independent = false, std::string closed = "", bool ppss_focus = false) {
    return PutOrDie(store(), MakeRecord(RecordType::kSchool, {{"name", std::move(name)},
                                                              {"principal", independent ? "independent" : "municipal"},
                                                              {"closedDate", std::move(closed)},
                                                              {"ppssFocus", ppss_focus ? "true" : "false"}}));
  }
  void Contact(const RecordId& school, std::string worker, std::string from, std::string to = "",
               std::string informed = "") {
    PutOrDie(store(), MakeRecord(RecordType::kContact, {{"schoolId", school.ToText()},
                                                        {"socialWorker", std::move(worker)},
                                                        {"fromDate", std::move(from)},
                                                        {"toDate", std::move(to)},
                                                        {"informedDate", std::move(informed)}}));
  }
  void Agreement(int version, std::string adopted, std::string revisions = "") {
    PutOrDie(store(), MakeRecord(RecordType::kAgreement, {{"version", std::to_string(version)},
                                                          {"parties", "SDN,Grundskola"},
                                                          {"adoptedDate", std::move(adopted)},
                                                          {"revisionDates", std::move(revisions)}}));
  }
  void Material(std::string unit, std::string date) {
    PutOrDie(store(), MakeRecord(RecordType::kMaterial,
                                 {{"unit", std::move(unit)}, {"date", std::move(date)}, {"form", "groupMeeting"}}));
  }
  void Forum(std::string kind, std::string date, const std::vector<RecordId>& invited = {},
             const std::vector<RecordId>& attended = {}, bool cancelled = false) {
    PutOrDie(store(), MakeRecord(RecordType::kForum, {{"kind", std::move(kind)},
                                                      {"date", std::move(date)},
                                                      {"invitedSchoolIds", IdList(invited)},
                                                      {"attendedSchoolIds", IdList(attended)},
                                                      {"cancelled", cancelled ? "true" : "false"}}));
  }
  void Concern(const RecordId& school, const ChildRef& child, std::string received, std::string feedback = "") {
    std::string form = feedback.empty() ? "none" : "phone";
    PutOrDie(store(), MakeRecord(RecordType::kConcern, {{"schoolId", school.ToText()},
                                                        {"childRef", child.ToText()},
                                                        {"receivedDate", std::move(received)},
                                                        {"feedbackDate", std::move(feedback)},
                                                        {"feedbackForm", form}}));
  }
  void Enrolment(const ChildRef& child, const RecordId& school, std::string programme, std::string start,
                 std::string end = "", bool school_plan = false) {
    PutOrDie(store(), MakeRecord(RecordType::kEnrolment, {{"childRef", child.ToText()},
                                                          {"schoolId", school.ToText()},
                                                          {"programme", std::move(programme)},
                                                          {"startDate", std::move(start)},
                                                          {"endDate", std::move(end)},
                                                          {"hasSchoolPlan", school_plan ? "true" : "false"}}));
  }
  void FollowUp(const ChildRef& child, std::string date, Fields more = {}) {
    Fields fields = {{"childRef", child.ToText()}, {"date", std::move(date)}};
    fields.insert(fields.end(), more.begin(), more.end());
    PutOrDie(store(), MakeRecord(RecordType::kFollowup, fields));
  }
  void Absence(const ChildRef& child, const RecordId& school, std::string flagged, std::string contacted = "") {
    PutOrDie(store(), MakeRecord(RecordType::kAbsence, {{"childRef", child.ToText()},
                                                        {"schoolId", school.ToText()},
                                                        {"flaggedDate", std::move(flagged)},
                                                        {"contactedDate", std::move(contacted)}}));
  }

  FollowupReport Compute(std::string_view term = "2016HT", std::string_view reference_date = "2016-11-15") {
    auto input = LoadFollowupInput(store());
    EXPECT_TRUE(input.ok()) << input.status().message();
    if (!input.ok()) return {};
    auto report = ComputeFollowup(*input, Term::Parse(term).value(), Date::Parse(reference_date).value());
    EXPECT_TRUE(report.ok()) << report.status().message();
    return report.ok() ? std::move(report).value() : FollowupReport{};
  }

  // The result of the indicator with `key`; an empty result (and a test failure) if absent.
  static IndicatorResult Find(const FollowupReport& report, std::string_view key) {
    for (const IndicatorResult& result : report.indicators) {
      if (result.indicator.key == key) return result;
    }
    ADD_FAILURE() << "no indicator " << key;
    return {};
  }

  TestStore test_store_;
};

void ExpectShare(const json& value, int64_t numerator, int64_t denominator) {
  EXPECT_EQ(value["numerator"], numerator) << value;
  EXPECT_EQ(value["denominator"], denominator) << value;
  if (denominator == 0) {
    EXPECT_TRUE(value["share"].is_null()) << value;
  } else {
    EXPECT_DOUBLE_EQ(value["share"].get<double>(), static_cast<double>(numerator) / static_cast<double>(denominator));
  }
}

TEST(FollowupDefinitions, ThirteenInNumberOrderWithUniqueKeys) {
  const auto& definitions = FollowupIndicators();
  ASSERT_EQ(definitions.size(), 13u);
  std::set<std::string> keys;
  for (size_t i = 0; i < definitions.size(); ++i) {
    const IndicatorDefinition& d = definitions[i];
    EXPECT_EQ(d.number, static_cast<int>(i) + 1);
    EXPECT_TRUE(keys.insert(d.key).second) << d.key;
    EXPECT_FALSE(d.name_sv.empty());
    EXPECT_FALSE(d.name_en.empty());
    EXPECT_FALSE(d.definition.empty());
  }
  EXPECT_EQ(definitions[0].key, "contact_coverage");
  EXPECT_EQ(definitions[0].target, "100 %");
  EXPECT_EQ(definitions[6].target, "≥ 0.9");
  EXPECT_EQ(definitions[2].target, "");  // schools per contact person is informational
}

TEST_F(FollowupTest, ReportCarriesDistrictTermAndDates) {
  FollowupReport report = Compute();
  EXPECT_EQ(report.district, "Skarpnäck");
  EXPECT_EQ(report.term.ToString(), "2016HT");
  EXPECT_EQ(report.period_start.ToString(), "2016-07-01");
  EXPECT_EQ(report.reference_date.ToString(), "2016-11-15");
  ASSERT_EQ(report.indicators.size(), 13u);
  for (size_t i = 0; i < report.indicators.size(); ++i) {
    EXPECT_EQ(report.indicators[i].indicator.number, static_cast<int>(i) + 1);
  }
}

TEST_F(FollowupTest, ReferenceDateIsClampedToTermEnd) {
  FollowupReport report = Compute("2016VT", "2016-11-15");
  EXPECT_EQ(report.reference_date.ToString(), "2016-06-30");
}

TEST_F(FollowupTest, EmptyReferenceDateMeansTermEnd) {
  auto input = LoadFollowupInput(store());
  ASSERT_TRUE(input.ok());
  auto report = ComputeFollowup(*input, Term{2016, true}, Date());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->reference_date.ToString(), "2016-12-31");
}

TEST_F(FollowupTest, ReferenceDateBeforeTermStartIsRefused) {
  auto input = LoadFollowupInput(store());
  ASSERT_TRUE(input.ok());
  auto report = ComputeFollowup(*input, Term{2017, false}, Date::Parse("2016-12-31").value());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kInvalidInput);
  EXPECT_NE(report.status().message().find("2017VT"), std::string::npos) << report.status().message();
}

TEST_F(FollowupTest, EmptyDistrictGivesNullSharesAndNoVerdict) {
  FollowupReport report = Compute();
  for (const char* key : {"contact_coverage", "contact_changes_informed", "material_reach", "forum_attendance",
                          "concern_feedback", "placed_school_plan", "skolfam_timeliness", "absence_escalation"}) {
    IndicatorResult r = Find(report, key);
    SCOPED_TRACE(key);
    ExpectShare(r.values, 0, 0);
    EXPECT_EQ(r.met, std::nullopt);
    EXPECT_EQ(r.summary, "no data");
  }
  ExpectShare(Find(report, "contact_coverage").values["municipal"], 0, 0);
  ExpectShare(Find(report, "contact_coverage").values["independent"], 0, 0);
  EXPECT_TRUE(Find(report, "contact_changes_informed").values["median_days"].is_null());
  EXPECT_TRUE(Find(report, "concern_feedback").values["median_days"].is_null());

  IndicatorResult per_contact = Find(report, "schools_per_contact");
  EXPECT_EQ(per_contact.values["workers"], 0);
  EXPECT_TRUE(per_contact.values["mean"].is_null());
  EXPECT_TRUE(per_contact.values["max"].is_null());
  EXPECT_EQ(per_contact.met, std::nullopt);

  IndicatorResult parity = Find(report, "participation_parity");
  EXPECT_TRUE(parity.values["ratio"].is_null());
  ExpectShare(parity.values["independent"], 0, 0);
  EXPECT_EQ(parity.met, std::nullopt);

  IndicatorResult ppss = Find(report, "ppss_outcomes");
  EXPECT_EQ(ppss.values["enrolled"], 0);
  EXPECT_TRUE(ppss.values["mean_attendance_change"].is_null());
  ExpectShare(ppss.values["passed_rose"], 0, 0);
  ExpectShare(ppss.values["eligible_year9"], 0, 0);
  EXPECT_EQ(ppss.met, std::nullopt);

  // Having no agreement, and holding no meetings, are findings rather than missing data.
  IndicatorResult agreement = Find(report, "agreement_currency");
  EXPECT_EQ(agreement.met, std::optional<bool>(false));
  EXPECT_EQ(agreement.values["has_agreement"], false);
  EXPECT_TRUE(agreement.values["days_since_revision"].is_null());
  EXPECT_EQ(agreement.summary, "no agreement");
  EXPECT_EQ(Find(report, "forum_cadence").met, std::optional<bool>(false));
}

TEST_F(FollowupTest, ContactCoverageSplitsByPrincipalAndSkipsClosedSchools) {
  RecordId m1 = School("M1"), m2 = School("M2"), m3 = School("M3");
  RecordId closed_before = School("M4", false, "2016-09-01");
  RecordId closed_on_r = School("M5", false, "2016-11-15");
  RecordId i1 = School("I1", true), i2 = School("I2", true);
  Contact(m1, "AB", "2016-01-10");
  Contact(m2, "AB", "2016-01-10", "2016-10-01");  // ended before R
  Contact(m3, "CD", "2016-12-01");                // starts after R
  Contact(closed_before, "CD", "2016-01-10");
  Contact(closed_on_r, "CD", "2016-01-10");
  Contact(i1, "EF", "2016-02-01", "2016-11-15");  // ends on R: still running
  (void)i2;                                       // independent, no contact

  IndicatorResult r = Find(Compute(), "contact_coverage");
  ExpectShare(r.values, 2, 5);
  ExpectShare(r.values["municipal"], 1, 3);
  ExpectShare(r.values["independent"], 1, 2);
  EXPECT_EQ(r.met, std::optional<bool>(false));
  EXPECT_EQ(r.summary, "40 % (2/5); municipal 33 % (1/3), independent 50 % (1/2)");
}

TEST_F(FollowupTest, ContactCoverageMetWhenEverySchoolHasAContact) {
  RecordId m1 = School("M1"), i1 = School("I1", true);
  Contact(m1, "AB", "2016-01-10");
  Contact(i1, "AB", "2016-08-10");
  IndicatorResult r = Find(Compute(), "contact_coverage");
  ExpectShare(r.values, 2, 2);
  EXPECT_EQ(r.met, std::optional<bool>(true));
}

TEST_F(FollowupTest, ContactChangesInformedWithinFourteenDays) {
  RecordId a = School("A"), b = School("B"), c = School("C"), d = School("D"), e = School("E");
  RecordId g = School("G");
  Contact(g, "W1", "2016-01-01");
  Contact(g, "W2", "2016-05-01");
  Contact(g, "W1", "2016-09-01", "", "2016-09-02");  // back to the first person: a change
  Contact(a, "W1", "2016-01-01", "2016-07-31");
  Contact(a, "W2", "2016-08-01", "", "2016-08-21");  // informed after 20 days: late
  Contact(b, "W3", "2015-05-01", "2016-08-31");
  Contact(b, "W4", "2016-09-01", "", "2016-09-05");  // 4 days
  Contact(c, "W5", "2016-07-10");                    // first at the school: not a change
  Contact(d, "W6", "2016-02-01", "2016-09-30");
  Contact(d, "W7", "2016-10-01", "2016-11-09", "2016-10-15");  // exactly 14 days: in time
  Contact(d, "W8", "2016-11-10");                    // not told yet, 5 days before R: pending
  Contact(e, "W9", "2016-03-01", "2016-10-19");
  Contact(e, "W10", "2016-10-20", "", "2016-11-20");  // told after R: not known on R
  Contact(e, "W1", "2016-06-15");                    // a change, but before T
  RecordId f = School("F");
  Contact(f, "W11", "2016-01-01", "2016-08-31");
  Contact(f, "W11", "2016-09-01");                   // the same person again: no change
  Contact(f, "W12", "2016-01-01");                   // alongside from the start: no change

  IndicatorResult r = Find(Compute(), "contact_changes_informed");
  ExpectShare(r.values, 3, 6);
  EXPECT_EQ(r.values["informed"], 4);
  EXPECT_DOUBLE_EQ(r.values["median_days"].get<double>(), 9.0);  // of 1, 4, 14, 20
  EXPECT_EQ(r.values["pending"], 1);
  EXPECT_EQ(r.met, std::optional<bool>(false));
  EXPECT_EQ(r.summary, "50 % (3/6) within 14 days; median 9 days");
}

TEST_F(FollowupTest, ContactChangeInformedOnTheSameDayIsZeroDaysAndInTime) {
  RecordId a = School("A");
  Contact(a, "W1", "2016-01-01", "2016-09-30");
  Contact(a, "W2", "2016-10-01", "", "2016-10-01");  // told the day the new person started
  IndicatorResult r = Find(Compute(), "contact_changes_informed");
  ExpectShare(r.values, 1, 1);
  EXPECT_EQ(r.values["informed"], 1);
  EXPECT_DOUBLE_EQ(r.values["median_days"].get<double>(), 0.0);
  EXPECT_EQ(r.values["pending"], 0);
  EXPECT_EQ(r.met, std::optional<bool>(true));
  EXPECT_EQ(r.summary, "100 % (1/1) within 14 days; median 0 days");
}

TEST_F(FollowupTest, ContactChangeOnTheFirstDayOfAutumnCountsInAutumnNotSpring) {
  RecordId a = School("A"), b = School("B");
  Contact(a, "W1", "2016-01-01", "2016-06-30");
  Contact(a, "W2", "2016-07-01", "", "2016-07-20");  // first day of HT; told after 19 days
  Contact(b, "W3", "2016-01-01", "2016-06-29");
  Contact(b, "W4", "2016-06-30", "", "2016-07-01");  // last day of VT; told the next day
  IndicatorResult autumn = Find(Compute("2016HT", "2016-11-15"), "contact_changes_informed");
  ExpectShare(autumn.values, 0, 1);
  EXPECT_EQ(autumn.met, std::optional<bool>(false));
  // Spring's report is as of its last day: the change of 30 June was not yet told then.
  IndicatorResult spring = Find(Compute("2016VT", "2016-06-30"), "contact_changes_informed");
  ExpectShare(spring.values, 0, 1);
  EXPECT_EQ(spring.values["pending"], 1);
  // Asked later, of the same term (R is still its last day), the telling is not known
  // on R either: a report for a past date does not change.
  IndicatorResult spring_later = Find(Compute("2016VT", "2016-11-15"), "contact_changes_informed");
  ExpectShare(spring_later.values, 0, 1);
}

TEST_F(FollowupTest, NoSchoolsStillCountsMeetingsButGivesNoCoverageOrAttendance) {
  Forum("steeringGroup", "2016-09-01");
  Forum("localForum", "2016-09-10");
  Forum("localForum", "2016-10-10");
  Forum("managers", "2016-03-01");
  FollowupReport report = Compute();
  IndicatorResult coverage = Find(report, "contact_coverage");
  ExpectShare(coverage.values, 0, 0);
  EXPECT_EQ(coverage.met, std::nullopt);
  IndicatorResult cadence = Find(report, "forum_cadence");
  EXPECT_EQ(cadence.values["local_forum"]["held"], 2);
  EXPECT_EQ(cadence.met, std::optional<bool>(true));
  ExpectShare(Find(report, "forum_attendance").values, 0, 0);
  EXPECT_EQ(Find(report, "participation_parity").met, std::nullopt);
  EXPECT_EQ(Find(report, "schools_per_contact").values["workers"], 0);
  EXPECT_EQ(Find(report, "ppss_outcomes").values["focus_schools"], 0);
}

TEST_F(FollowupTest, ContactChangeMedianOfEvenCountIsMeanOfMiddleTwo) {
  RecordId a = School("A"), b = School("B");
  Contact(a, "W1", "2016-01-01");
  Contact(a, "W2", "2016-08-01", "", "2016-08-04");  // 3 days
  Contact(b, "W3", "2016-01-01");
  Contact(b, "W4", "2016-09-01", "", "2016-09-11");  // 10 days
  IndicatorResult r = Find(Compute(), "contact_changes_informed");
  ExpectShare(r.values, 2, 2);
  EXPECT_DOUBLE_EQ(r.values["median_days"].get<double>(), 6.5);
  EXPECT_EQ(r.met, std::optional<bool>(true));
}

TEST_F(FollowupTest, SchoolsPerContactCountsDistinctActiveSchoolsPerWorker) {
  RecordId s1 = School("S1"), s2 = School("S2"), s3 = School("S3", true);
  RecordId closed = School("S4", false, "2016-10-01");
  Contact(s1, "AB", "2016-01-01");
  Contact(s2, "AB", "2016-01-01");
  Contact(s3, "AB", "2016-08-01");
  Contact(s1, "CD", "2016-01-01");
  Contact(s1, "CD", "2016-03-01");  // the same school twice counts once
  Contact(s2, "EF", "2016-01-01", "2016-10-31");  // ended before R
  Contact(closed, "GH", "2016-01-01");            // school closed before R

  IndicatorResult r = Find(Compute(), "schools_per_contact");
  EXPECT_EQ(r.values["workers"], 2);
  EXPECT_EQ(r.values["school_links"], 4);
  EXPECT_DOUBLE_EQ(r.values["mean"].get<double>(), 2.0);
  EXPECT_EQ(r.values["max"], 3);
  EXPECT_EQ(r.met, std::nullopt);  // a norm, not a target
  EXPECT_EQ(r.summary, "mean 2, max 3 (2 workers)");
}

TEST_F(FollowupTest, AgreementRevisedFourHundredDaysAgoIsFlagged) {
  Agreement(1, "2014-01-01", "2016-06-01");      // a lower version: ignored
  Agreement(2, "2015-10-12", "2017-01-10");      // the revision is after R: ignored
  Agreement(3, "2016-12-01");                    // adopted after R: not there yet
  IndicatorResult r = Find(Compute(), "agreement_currency");
  EXPECT_EQ(r.values["has_agreement"], true);
  EXPECT_EQ(r.values["version"], 2);
  EXPECT_EQ(r.values["last_revised"], "2015-10-12");
  EXPECT_EQ(r.values["days_since_revision"], 400);
  EXPECT_EQ(r.values["limit_days"], 365);
  EXPECT_EQ(r.met, std::optional<bool>(false));
  EXPECT_EQ(r.summary, "400 days since 2015-10-12 (version 2)");
}

TEST_F(FollowupTest, AgreementRevisedExactlyAYearAgoIsCurrent) {
  Agreement(1, "2014-01-01", "2015-06-01,2015-11-16");
  IndicatorResult on_day_365 = Find(Compute("2016HT", "2016-11-15"), "agreement_currency");
  EXPECT_EQ(on_day_365.values["last_revised"], "2015-11-16");
  EXPECT_EQ(on_day_365.values["days_since_revision"], 365);
  EXPECT_EQ(on_day_365.met, std::optional<bool>(true));
  IndicatorResult on_day_366 = Find(Compute("2016HT", "2016-11-16"), "agreement_currency");
  EXPECT_EQ(on_day_366.values["days_since_revision"], 366);
  EXPECT_EQ(on_day_366.met, std::optional<bool>(false));
}

TEST_F(FollowupTest, MaterialReachCountsUnitsReachedInTheLastYear) {
  Material("Mottagningsgruppen", "2016-03-01");
  Material(" Mottagningsgruppen ", "2014-01-01");  // the same unit
  Material("Barn och unga", "2015-06-01");
  Material("Barn och unga", "2015-11-16");         // exactly 365 days before R: outside
  Material("Skola Väst", "2015-11-17");            // 364 days before R: inside
  Material("Framtid", "2016-12-01");               // after R: not yet a unit
  IndicatorResult r = Find(Compute(), "material_reach");
  ExpectShare(r.values, 2, 3);
  EXPECT_EQ(r.met, std::optional<bool>(false));
  EXPECT_EQ(r.summary, "67 % (2/3)");
}

TEST_F(FollowupTest, ForumCadenceMetWhenEveryNormIs) {
  Forum("steeringGroup", "2016-09-01");
  Forum("steeringGroup", "2016-10-01", {}, {}, true);  // cancelled
  Forum("managers", "2015-12-01");                     // 350 days before R
  Forum("localForum", "2016-08-20");
  Forum("localForum", "2016-10-10");
  Forum("localForum", "2016-11-01", {}, {}, true);     // cancelled
  Forum("localForum", "2016-11-20");                   // after R
  Forum("localForum", "2016-06-30");                   // last day of VT
  Forum("transition", "2016-08-15");
  IndicatorResult r = Find(Compute(), "forum_cadence");
  EXPECT_EQ(r.values["steering_group"]["held"], 1);
  EXPECT_EQ(r.values["steering_group"]["met"], true);
  EXPECT_EQ(r.values["managers"]["held"], 1);
  EXPECT_EQ(r.values["local_forum"]["held"], 2);
  EXPECT_EQ(r.values["local_forum"]["met"], true);
  EXPECT_EQ(r.values["transition"]["held"], 1);
  EXPECT_EQ(r.values["cancelled"], 2);
  EXPECT_EQ(r.met, std::optional<bool>(true));
}

TEST_F(FollowupTest, ForumCadenceNotMetWhenOneNormFails) {
  Forum("steeringGroup", "2016-09-01");
  Forum("managers", "2015-11-16");  // exactly 365 days before R: outside the year
  Forum("localForum", "2016-08-20");
  Forum("localForum", "2016-10-10");
  IndicatorResult r = Find(Compute(), "forum_cadence");
  EXPECT_EQ(r.values["managers"]["held"], 0);
  EXPECT_EQ(r.values["managers"]["met"], false);
  EXPECT_EQ(r.values["steering_group"]["met"], true);
  EXPECT_EQ(r.met, std::optional<bool>(false));
}

TEST_F(FollowupTest, ParticipationParityRatioIsExact) {
  RecordId m1 = School("M1"), m2 = School("M2"), m3 = School("M3");
  RecordId i1 = School("I1", true), i2 = School("I2", true), i3 = School("I3", true);
  Forum("localForum", "2016-09-01", {m1, m2, m3, i1, i2}, {m1, m2, m3, i1, i2});
  Forum("steeringGroup", "2016-10-01", {m1, m2, m3, i1, i2}, {m1, m2, i1});
  Forum("localForum", "2016-10-15", {m3, i3}, {}, true);  // cancelled: not counted
  Forum("localForum", "2016-06-30", {i3}, {});            // in VT: not counted
  FollowupReport report = Compute();

  IndicatorResult parity = Find(report, "participation_parity");
  ExpectShare(parity.values["independent"], 3, 4);
  ExpectShare(parity.values["municipal"], 5, 6);
  // (3/4) / (5/6) is 0.9 exactly, on target; dividing the rounded rates would give
  // 0.8999999999999999 and miss it.
  EXPECT_EQ(parity.values["ratio"].get<double>(), 0.9);
  EXPECT_EQ(parity.met, std::optional<bool>(true));
  EXPECT_EQ(parity.summary, "ratio 0.9; independent 75 % (3/4), municipal 83 % (5/6)");

  IndicatorResult attendance = Find(report, "forum_attendance");
  ExpectShare(attendance.values, 8, 10);
  EXPECT_EQ(attendance.met, std::nullopt);
}

TEST_F(FollowupTest, ParticipationParityBelowTarget) {
  RecordId m1 = School("M1"), m2 = School("M2");
  RecordId i1 = School("I1", true), i2 = School("I2", true);
  Forum("localForum", "2016-09-01", {m1, m2, i1, i2}, {m1, m2, i1});
  Forum("localForum", "2016-10-01", {m1, m2, i1}, {m1});
  IndicatorResult r = Find(Compute(), "participation_parity");
  ExpectShare(r.values["municipal"], 3, 4);
  ExpectShare(r.values["independent"], 1, 3);
  EXPECT_DOUBLE_EQ(r.values["ratio"].get<double>(), 4.0 / 9.0);
  EXPECT_EQ(r.met, std::optional<bool>(false));
}

TEST_F(FollowupTest, ParticipationParityWithoutIndependentInvitationsHasNoVerdict) {
  RecordId m1 = School("M1");
  School("I1", true);
  Forum("localForum", "2016-09-01", {m1}, {m1});
  IndicatorResult r = Find(Compute(), "participation_parity");
  ExpectShare(r.values["independent"], 0, 0);
  EXPECT_TRUE(r.values["ratio"].is_null());
  EXPECT_EQ(r.met, std::nullopt);
}

TEST_F(FollowupTest, ConcernFeedbackShareAndMedianDays) {
  RecordId school = School("S");
  ChildRef child = AddChild(store(), 1);
  Concern(school, child, "2016-07-01", "2016-07-04");  // first day of HT; 3 days
  Concern(school, child, "2016-09-01", "2016-09-11");  // 10 days
  Concern(school, child, "2016-10-01");                // no feedback
  Concern(school, child, "2016-11-01", "2016-11-20");  // feedback after R: not yet
  Concern(school, child, "2016-06-30", "2016-07-02");  // last day of VT
  IndicatorResult r = Find(Compute(), "concern_feedback");
  ExpectShare(r.values, 2, 4);
  EXPECT_DOUBLE_EQ(r.values["median_days"].get<double>(), 6.5);
  EXPECT_EQ(r.met, std::optional<bool>(false));
  EXPECT_EQ(r.summary, "50 % (2/4); median 6.5 days");
}

TEST_F(FollowupTest, ConcernReceivedOnLastDayOfSpringCountsInSpringNotAutumn) {
  RecordId school = School("S");
  ChildRef child = AddChild(store(), 1);
  Concern(school, child, "2016-06-30", "2016-06-30");
  Concern(school, child, "2016-06-01", "2016-06-30");

  IndicatorResult spring = Find(Compute("2016VT", "2016-11-15"), "concern_feedback");
  ExpectShare(spring.values, 2, 2);
  EXPECT_DOUBLE_EQ(spring.values["median_days"].get<double>(), 14.5);  // of 0 and 29
  EXPECT_EQ(spring.met, std::optional<bool>(true));

  IndicatorResult autumn = Find(Compute("2016HT", "2016-11-15"), "concern_feedback");
  ExpectShare(autumn.values, 0, 0);
  EXPECT_EQ(autumn.met, std::nullopt);
}

TEST_F(FollowupTest, PlacedChildrenWithASchoolPlan) {
  RecordId school = School("S");
  ChildRef c1 = AddChild(store(), 1), c2 = AddChild(store(), 2), c3 = AddChild(store(), 3),
           c4 = AddChild(store(), 4), c5 = AddChild(store(), 5);
  Enrolment(c1, school, "placed", "2016-01-01", "", true);
  Enrolment(c2, school, "placed", "2016-08-01", "2016-11-15", false);  // ends on R: counted
  Enrolment(c3, school, "placed", "2016-01-01", "2016-10-01", true);   // ended before R
  Enrolment(c4, school, "placed", "2016-12-01", "", true);             // starts after R
  Enrolment(c5, school, "ppss", "2016-01-01");                         // another programme
  IndicatorResult r = Find(Compute(), "placed_school_plan");
  ExpectShare(r.values, 1, 2);
  EXPECT_EQ(r.met, std::optional<bool>(false));
}

TEST_F(FollowupTest, SkolfamFollowupsAtMostFiftySixDaysApart) {
  RecordId school = School("S");
  ChildRef on_time = AddChild(store(), 1), from_start = AddChild(store(), 2), late = AddChild(store(), 3),
           none = AddChild(store(), 4), ended = AddChild(store(), 5), first_late = AddChild(store(), 6);
  Enrolment(on_time, school, "skolfam", "2016-01-10");
  FollowUp(on_time, "2016-06-20");
  FollowUp(on_time, "2016-08-10");  // 51 days
  FollowUp(on_time, "2016-10-05");  // 56 days: in time
  Enrolment(from_start, school, "skolfam", "2016-08-01");
  FollowUp(from_start, "2016-09-26");  // 56 days after the start
  FollowUp(from_start, "2016-12-30");  // after R: not looked at
  Enrolment(late, school, "skolfam", "2016-03-01");
  FollowUp(late, "2016-05-01");
  FollowUp(late, "2016-07-15");  // 75 days
  Enrolment(none, school, "skolfam", "2016-09-01");
  Enrolment(ended, school, "skolfam", "2015-01-01", "2016-06-30");  // ended before T
  FollowUp(ended, "2016-03-01");
  Enrolment(first_late, school, "skolfam", "2016-08-01");
  FollowUp(first_late, "2016-09-27");  // 57 days after the start

  IndicatorResult r = Find(Compute(), "skolfam_timeliness");
  ExpectShare(r.values, 2, 5);
  EXPECT_EQ(r.values["without_followup"], 1);
  EXPECT_EQ(r.values["max_gap_days"], 56);
  EXPECT_EQ(r.met, std::optional<bool>(false));
}

TEST_F(FollowupTest, PpssOutcomesCompareLastFollowupsOfConsecutiveTerms) {
  RecordId focus = School("F1", false, "", true);
  School("F2", false, "2016-08-01", true);  // a focus school closed before R
  School("N");
  ChildRef c1 = AddChild(store(), 1), c2 = AddChild(store(), 2), c3 = AddChild(store(), 3),
           c4 = AddChild(store(), 4), c5 = AddChild(store(), 5);
  Enrolment(c1, focus, "ppss", "2016-01-01");
  FollowUp(c1, "2016-03-01", {{"attendancePct", "70"}, {"subjectsPassedPct", "50"}});
  FollowUp(c1, "2016-06-01", {{"attendancePct", "80"}, {"subjectsPassedPct", "60"}});
  FollowUp(c1, "2016-09-01", {{"attendancePct", "85.5"}, {"subjectsPassedPct", "70"}, {"schoolYear", "9"},
                              {"eligibleUpperSecondary", "false"}});
  FollowUp(c1, "2016-11-01", {{"attendancePct", "90.5"}, {"subjectsPassedPct", "75"}, {"schoolYear", "9"},
                              {"eligibleUpperSecondary", "true"}});
  Enrolment(c2, focus, "ppss", "2016-02-01");
  FollowUp(c2, "2016-05-01", {{"attendancePct", "90"}, {"subjectsPassedPct", "80"}});
  // Dated in HT but written for VT: its term field decides.
  FollowUp(c2, "2016-07-02", {{"term", "2016VT"}, {"attendancePct", "88"}, {"subjectsPassedPct", "80"}});
  FollowUp(c2, "2016-10-01", {{"attendancePct", "86"}, {"subjectsPassedPct", "80"}, {"schoolYear", "8"}});
  Enrolment(c3, focus, "ppss", "2016-08-15");
  FollowUp(c3, "2016-10-01", {{"attendancePct", "95"}, {"schoolYear", "9"}, {"eligibleUpperSecondary", "true"}});
  Enrolment(c4, focus, "skolfam", "2016-01-01");  // not PPSS
  FollowUp(c4, "2016-03-01", {{"attendancePct", "10"}});
  FollowUp(c4, "2016-09-01", {{"attendancePct", "90"}});
  Enrolment(c5, focus, "ppss", "2016-09-01");
  FollowUp(c5, "2016-11-30", {{"attendancePct", "50"}, {"schoolYear", "9"}});  // after R

  IndicatorResult r = Find(Compute(), "ppss_outcomes");
  EXPECT_EQ(r.values["enrolled"], 4);
  EXPECT_EQ(r.values["focus_schools"], 1);
  EXPECT_EQ(r.values["with_both_terms"], 2);
  EXPECT_DOUBLE_EQ(r.values["mean_attendance_change"].get<double>(), 4.25);  // (+10.5 − 2) / 2
  ExpectShare(r.values["passed_rose"], 1, 2);
  ExpectShare(r.values["eligible_year9"], 2, 2);  // each child's last year-9 follow-up
  EXPECT_EQ(r.met, std::nullopt);
  EXPECT_EQ(r.summary, "4 enrolled, 1 focus school; attendance +4.25 pp; passed rose 50 % (1/2)");
}

TEST_F(FollowupTest, AbsenceEscalationShareContacted) {
  RecordId school = School("S");
  ChildRef child = AddChild(store(), 1);
  Absence(child, school, "2016-08-01", "2016-08-03");
  Absence(child, school, "2016-09-01");
  Absence(child, school, "2016-11-10", "2016-11-20");  // contacted after R: not yet
  Absence(child, school, "2016-06-30", "2016-07-01");  // flagged in VT
  IndicatorResult r = Find(Compute(), "absence_escalation");
  ExpectShare(r.values, 1, 3);
  EXPECT_EQ(r.met, std::nullopt);
}

TEST_F(FollowupTest, AbsenceFlaggedOnTheFirstDayOfAutumnCountsInAutumn) {
  RecordId school = School("S");
  ChildRef child = AddChild(store(), 1);
  Absence(child, school, "2016-07-01", "2016-07-01");  // contacted the same day
  Absence(child, school, "2016-06-30");                // the day before: spring
  ExpectShare(Find(Compute("2016HT", "2016-11-15"), "absence_escalation").values, 1, 1);
  ExpectShare(Find(Compute("2016VT", "2016-06-30"), "absence_escalation").values, 0, 1);
}

TEST_F(FollowupTest, HeadlinesAreShortFigures) {
  RecordId m1 = School("M1"), m2 = School("M2"), m3 = School("M3");
  Contact(m1, "AB", "2016-01-01");
  Contact(m2, "AB", "2016-01-01");
  Contact(m3, "CD", "2016-01-01");
  School("I1", true);
  Agreement(1, "2015-10-12");
  Forum("steeringGroup", "2016-09-01", {m1, m2}, {m1});
  Forum("localForum", "2016-09-10");
  FollowupReport report = Compute();
  EXPECT_EQ(IndicatorHeadline(Find(report, "contact_coverage")), "75 %");
  EXPECT_EQ(IndicatorHeadline(Find(report, "schools_per_contact")), "1.5");
  EXPECT_EQ(IndicatorHeadline(Find(report, "agreement_currency")), "400 d");
  EXPECT_EQ(IndicatorHeadline(Find(report, "forum_cadence")), "S1 M0 L1");
  EXPECT_EQ(IndicatorHeadline(Find(report, "forum_attendance")), "50 %");
  EXPECT_EQ(IndicatorHeadline(Find(report, "participation_parity")), "no data");
  EXPECT_EQ(IndicatorHeadline(Find(report, "concern_feedback")), "no data");
  // Never 100 % when one case is missing, nor 0 % when one is there.
  IndicatorResult share = Find(report, "contact_coverage");
  share.values = {{"share", 199.0 / 200.0}, {"numerator", 199}, {"denominator", 200}};
  EXPECT_EQ(IndicatorHeadline(share), "99 %");
  IndicatorResult hidden = Find(report, "contact_coverage");
  hidden.values["share"] = {{"suppressed", true}};
  EXPECT_EQ(IndicatorHeadline(hidden), "<5");
}

TEST_F(FollowupTest, WithoutAnAgreementTheHeadlineSaysSo) {
  EXPECT_EQ(IndicatorHeadline(Find(Compute(), "agreement_currency")), "no agreement");
}

// Every figure an indicator's definition names (headline, cells, derived figures,
// parts and totals) is one its values hold, on a full demo district: the table that
// suppression and the one-cell views read is in step with what is computed.
TEST_F(FollowupTest, DefinitionsNameOnlyFiguresTheValuesHold) {
  DemoOptions demo;
  demo.scale = 0.3;
  demo.today = Date::Parse("2016-11-15").value();
  ASSERT_TRUE(GenerateDemoDistrict(store(), demo).ok());
  FollowupReport report = Compute();
  std::map<std::string, const IndicatorResult*> by_key;
  for (const IndicatorResult& result : report.indicators) by_key[result.indicator.key] = &result;
  auto holds = [&](const std::string& key, const std::string& path) {
    size_t colon = path.find(':');
    std::string owner = colon == std::string::npos ? key : path.substr(0, colon);
    std::string pointer = colon == std::string::npos ? path : path.substr(colon + 1);
    EXPECT_TRUE(by_key.count(owner)) << key << ": " << path;
    if (!by_key.count(owner)) return false;
    return by_key[owner]->values.contains(json::json_pointer(pointer));
  };
  for (const IndicatorResult& result : report.indicators) {
    const IndicatorDefinition& d = result.indicator;
    SCOPED_TRACE(d.key);
    EXPECT_FALSE(d.citywide.empty());
    if (d.headline_kind != HeadlineKind::kCadence) {
      EXPECT_TRUE(holds(d.key, d.headline)) << d.headline;
    }
    for (const std::string& count : d.cells.counts) {
      EXPECT_TRUE(holds(d.key, count)) << count;
      EXPECT_TRUE(result.values[json::json_pointer(count)].is_number_integer()) << count;
    }
    for (const auto& [target, sources] : d.cells.derived) {
      EXPECT_TRUE(holds(d.key, target)) << target;
      for (const std::string& source : sources) EXPECT_TRUE(holds(d.key, source)) << source;
    }
    for (const auto& [total, parts] : d.cells.sums) {
      EXPECT_TRUE(holds(d.key, total)) << total;
      for (const std::string& part : parts) EXPECT_TRUE(holds(d.key, part)) << part;
    }
  }
}

TEST_F(FollowupTest, JsonHasStableFieldsAndNullForNoVerdict) {
  RecordId m1 = School("M1");
  Contact(m1, "AB", "2016-01-01");
  json j = FollowupToJson(Compute());
  EXPECT_EQ(j["format"], "samsync-followup");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["district"], "Skarpnäck");
  EXPECT_EQ(j["term"], "2016HT");
  EXPECT_EQ(j["period_start"], "2016-07-01");
  EXPECT_EQ(j["reference_date"], "2016-11-15");
  ASSERT_EQ(j["indicators"].size(), 13u);
  const json& first = j["indicators"][0];
  EXPECT_EQ(first["number"], 1);
  EXPECT_EQ(first["key"], "contact_coverage");
  EXPECT_EQ(first["name_sv"], "Kontaktpersonstäckning");
  EXPECT_EQ(first["target"], "100 %");
  EXPECT_EQ(first["met"], true);
  EXPECT_EQ(first["summary"], "100 % (1/1); municipal 100 % (1/1), independent no data");
  EXPECT_EQ(first["values"]["denominator"], 1);
  EXPECT_TRUE(first["values"]["independent"]["share"].is_null());
  EXPECT_FALSE(first["definition"].get<std::string>().empty());
  EXPECT_TRUE(j["indicators"][2]["met"].is_null());  // informational
}

// Terminal columns of UTF-8 text (every character here is one column wide).
size_t Columns(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

TEST_F(FollowupTest, TableAlignsColumnsAndMarksVerdicts) {
  RecordId m1 = School("Skolan i Årsta");
  School("Fristående skolan", true);
  Contact(m1, "AB", "2016-01-01");
  std::string table = FollowupToTable(Compute());
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u + 2u + 13u);  // title, header, rule, one row per indicator
  EXPECT_EQ(lines[0], "Follow-up Skarpnäck 2016HT (2016-07-01 – 2016-11-15)");
  EXPECT_EQ(lines[1].rfind(" #  Indicator", 0), 0u) << lines[1];
  // The last column (met) starts at the same column on every line.
  std::optional<size_t> met_column;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t cut = lines[i].rfind("  ");
    ASSERT_NE(cut, std::string::npos) << lines[i];
    size_t column = Columns(lines[i].substr(0, cut + 2));
    if (!met_column) met_column = column;
    EXPECT_EQ(column, *met_column) << lines[i];
  }
  EXPECT_NE(lines[3].find("Contact coverage"), std::string::npos);
  EXPECT_NE(lines[3].find("50 % (1/2)"), std::string::npos) << lines[3];
  EXPECT_EQ(lines[3].substr(lines[3].size() - 3), "✗");   // not every school covered
  EXPECT_EQ(lines[5].substr(lines[5].size() - 3), "–");   // 3: informational
  EXPECT_EQ(lines[1].substr(lines[1].size() - 3), "Met");
}

}  // namespace
}  // namespace samsync
