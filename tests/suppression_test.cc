// Small-cell suppression: counts under 5 are hidden, and no hidden count can be
// derived from the totals published beside it (suppression.h states the rule).
//
// Reports are computed from small hand-built districts (followup_builder.h) for 2016HT
// as of 2016-11-15, then suppressed as the citywide report does.
#include "samsync/suppression.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "followup_builder.h"

namespace samsync {
namespace {

using nlohmann::json;
using testing::DistrictBuilder;
using testing::InputList;

const Term kTerm{2016, true};
const Date kRef = Date::Parse("2016-11-15").value();

FollowupReport Report(const FollowupInput& input) {
  auto report = ComputeFollowup(input, kTerm, kRef);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? std::move(report).value() : FollowupReport{};
}

FollowupReport City(const std::vector<FollowupInput>& inputs) {
  auto report = ComputeCityFollowup(inputs, kTerm, kRef);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? std::move(report).value() : FollowupReport{};
}

IndicatorResult& Find(FollowupReport& report, const std::string& key) {
  for (IndicatorResult& result : report.indicators) {
    if (result.indicator.key == key) return result;
  }
  ADD_FAILURE() << "no indicator " << key;
  static IndicatorResult none;
  return none;
}

const json& At(FollowupReport& report, const std::string& key, const std::string& pointer) {
  return Find(report, key).values[json::json_pointer(pointer)];
}

// `feedback` of `reports` reports of concern, received in T, in a new district.
FollowupInput Concerns(const std::string& district, int reports, int feedback) {
  DistrictBuilder d(district);
  RecordId school = d.School();
  for (int i = 0; i < reports; ++i) d.Concern(school, i, "2016-09-01", i < feedback ? "2016-09-05" : "");
  return d.Take();
}

TEST(SuppressionTest, ACountUnderFiveHidesItsShareAndVerdict) {
  FollowupReport report = Report(Concerns("Farsta", 10, 3));
  SuppressSmallCells({&report}, nullptr);
  IndicatorResult& feedback = Find(report, "concern_feedback");
  EXPECT_TRUE(IsSuppressed(feedback.values["numerator"])) << feedback.values;
  EXPECT_TRUE(IsSuppressed(feedback.values["share"]));
  EXPECT_TRUE(IsSuppressed(feedback.values["median_days"])) << "a median of 3 values shows them";
  EXPECT_EQ(feedback.values["denominator"], 10);
  EXPECT_TRUE(feedback.suppressed);
  EXPECT_EQ(feedback.met, std::nullopt);
  EXPECT_EQ(feedback.summary, "<5");
}

TEST(SuppressionTest, FiveIsShownAndZeroIsACountUnderFive) {
  FollowupReport report = Report(Concerns("Farsta", 5, 5));
  SuppressSmallCells({&report}, nullptr);
  IndicatorResult& feedback = Find(report, "concern_feedback");
  EXPECT_EQ(feedback.values["numerator"], 5);
  EXPECT_EQ(feedback.values["share"], 1.0);
  EXPECT_EQ(feedback.met, std::optional<bool>(true));
  EXPECT_FALSE(feedback.suppressed);
  EXPECT_EQ(feedback.summary, "100 %");
  // Nothing at all is a count of 0: hidden too, not shown as "no data" or 0.
  IndicatorResult& absence = Find(report, "absence_escalation");
  EXPECT_TRUE(IsSuppressed(absence.values["denominator"]));
  EXPECT_EQ(absence.summary, "<5");
}

// The rule's secondary step: Skarpnäck's 3 reports would be the city's 33 minus the
// other two districts' 10 and 20; the smallest of those is hidden as well.
TEST(SuppressionTest, ASingleHiddenDistrictCellIsNotDerivableFromTheCityTotal) {
  std::vector<FollowupInput> inputs = InputList(Concerns("Farsta", 10, 8), Concerns("Skarpnäck", 3, 3),
                                       Concerns("Bromma", 20, 15));
  std::vector<FollowupReport> rows = {Report(inputs[0]), Report(inputs[1]), Report(inputs[2])};
  FollowupReport city = City(inputs);
  ASSERT_EQ(At(city, "concern_feedback", "/denominator"), 33);
  SuppressSmallCells({&rows[0], &rows[1], &rows[2]}, &city);
  EXPECT_TRUE(IsSuppressed(At(rows[1], "concern_feedback", "/denominator")));
  EXPECT_TRUE(IsSuppressed(At(rows[0], "concern_feedback", "/denominator"))) << "the smallest other, 10";
  EXPECT_EQ(At(rows[2], "concern_feedback", "/denominator"), 20);
  EXPECT_EQ(At(city, "concern_feedback", "/denominator"), 33);
  // Numerators 8, 3, 15 of 26: the same.
  EXPECT_TRUE(IsSuppressed(At(rows[1], "concern_feedback", "/numerator")));
  EXPECT_TRUE(IsSuppressed(At(rows[0], "concern_feedback", "/numerator")));
  EXPECT_EQ(At(rows[2], "concern_feedback", "/numerator"), 15);
  EXPECT_EQ(At(city, "concern_feedback", "/numerator"), 26);
  // Farsta's share goes with its hidden figures; Bromma's stays.
  EXPECT_TRUE(IsSuppressed(At(rows[0], "concern_feedback", "/share")));
  EXPECT_DOUBLE_EQ(At(rows[2], "concern_feedback", "/share").get<double>(), 0.75);
}

// Bromma's 10 reports are in the city's 13 but Bromma is not published as a row: the
// city's total is then all that could give Farsta's 3 away (Bromma's 10 being
// known elsewhere), and as no other row is left to hide, the total is hidden.
TEST(SuppressionTest, WithNoOtherRowToHideTheCityTotalIsHidden) {
  std::vector<FollowupInput> inputs = InputList(Concerns("Farsta", 3, 1), Concerns("Bromma", 10, 10));
  std::vector<FollowupReport> rows = {Report(inputs[0])};
  FollowupReport city = City(inputs);
  ASSERT_EQ(At(city, "concern_feedback", "/denominator"), 13);
  SuppressSmallCells({&rows[0]}, &city);
  EXPECT_TRUE(IsSuppressed(At(rows[0], "concern_feedback", "/denominator")));
  EXPECT_TRUE(IsSuppressed(At(city, "concern_feedback", "/denominator")));
  EXPECT_TRUE(Find(city, "concern_feedback").suppressed);
}

TEST(SuppressionTest, TwoHiddenDistrictCellsNeedNoMore) {
  std::vector<FollowupInput> inputs = InputList(Concerns("Farsta", 4, 4), Concerns("Skarpnäck", 3, 3),
                                       Concerns("Bromma", 20, 15));
  std::vector<FollowupReport> rows = {Report(inputs[0]), Report(inputs[1]), Report(inputs[2])};
  FollowupReport city = City(inputs);
  SuppressSmallCells({&rows[0], &rows[1], &rows[2]}, &city);
  EXPECT_EQ(At(rows[2], "concern_feedback", "/denominator"), 20);
  EXPECT_EQ(At(city, "concern_feedback", "/denominator"), 27);
}

// Municipal + independent schools make the whole: 9 = 6 + 3 would give away the 3.
TEST(SuppressionTest, MunicipalAndIndependentPartsProtectEachOther) {
  DistrictBuilder d("Farsta");
  for (int i = 0; i < 6; ++i) d.Contact(d.School(), "W" + std::to_string(i), "2016-01-01");
  for (int i = 0; i < 3; ++i) d.Contact(d.School(true), "V" + std::to_string(i), "2016-01-01");
  FollowupReport report = Report(d.input());
  SuppressSmallCells({&report}, nullptr);
  EXPECT_EQ(At(report, "contact_coverage", "/numerator"), 9);
  EXPECT_TRUE(IsSuppressed(At(report, "contact_coverage", "/independent/numerator")));
  EXPECT_TRUE(IsSuppressed(At(report, "contact_coverage", "/municipal/numerator")));
  EXPECT_TRUE(IsSuppressed(At(report, "contact_coverage", "/municipal/share")));
  EXPECT_EQ(Find(report, "contact_coverage").met, std::optional<bool>(true)) << "the headline is 9/9";
}

// Forum attendance (8) is the sum of the municipal and independent pairs of parity (7).
TEST(SuppressionTest, PartsInAnotherIndicatorProtectTheTotal) {
  DistrictBuilder d("Farsta");
  std::vector<RecordId> municipal, independent;
  for (int i = 0; i < 8; ++i) municipal.push_back(d.School());
  for (int i = 0; i < 3; ++i) independent.push_back(d.School(true));
  std::vector<RecordId> all = municipal;
  all.insert(all.end(), independent.begin(), independent.end());
  d.Forum("localForum", "2016-09-01", all, all);
  FollowupReport report = Report(d.input());
  SuppressSmallCells({&report}, nullptr);
  EXPECT_TRUE(IsSuppressed(At(report, "participation_parity", "/independent/denominator")));
  EXPECT_TRUE(IsSuppressed(At(report, "participation_parity", "/municipal/denominator")));
  EXPECT_EQ(At(report, "forum_attendance", "/denominator"), 11);
  EXPECT_TRUE(IsSuppressed(At(report, "participation_parity", "/ratio")));
  EXPECT_TRUE(Find(report, "participation_parity").suppressed);
}

TEST(SuppressionTest, MeansAndMaximaGoWithTheCountsTheyComeFrom) {
  DistrictBuilder d("Farsta");
  for (int i = 0; i < 8; ++i) d.Contact(d.School(), i < 5 ? "AB" : "CD", "2016-01-01");
  FollowupReport report = Report(d.input());
  SuppressSmallCells({&report}, nullptr);
  EXPECT_TRUE(IsSuppressed(At(report, "schools_per_contact", "/workers")));
  EXPECT_EQ(At(report, "schools_per_contact", "/school_links"), 8);
  EXPECT_TRUE(IsSuppressed(At(report, "schools_per_contact", "/mean"))) << "8 / mean would give the workers";
  EXPECT_TRUE(IsSuppressed(At(report, "schools_per_contact", "/max")));
  EXPECT_EQ(Find(report, "schools_per_contact").summary, "<5");
}

// PPSS publishes one count twice: children with both terms, and the denominator of
// "passed rose". Hiding one hides the other.
TEST(SuppressionTest, ACountPublishedUnderTwoNamesIsHiddenUnderBoth) {
  std::vector<FollowupInput> inputs;
  int child = 0;
  for (const auto& [district, children] : std::vector<std::pair<std::string, int>>{
           {"Farsta", 3}, {"Bromma", 7}, {"Skarpnäck", 9}}) {
    DistrictBuilder d(district);
    RecordId school = d.School(false, true);
    for (int c = 0; c < children; ++c) {
      ++child;
      d.Enrolment(child, school, "ppss", "2016-01-01");
      d.FollowUp(child, "2016-03-01", {{"subjectsPassedPct", "50"}});
      d.FollowUp(child, "2016-09-01", {{"subjectsPassedPct", c % 2 ? "60" : "40"}});
    }
    inputs.push_back(d.Take());
  }
  std::vector<FollowupReport> rows = {Report(inputs[0]), Report(inputs[1]), Report(inputs[2])};
  FollowupReport city = City(inputs);
  SuppressSmallCells({&rows[0], &rows[1], &rows[2]}, &city);
  for (FollowupReport* row : {&rows[0], &rows[1]}) {  // Farsta's 3, then Bromma's 7 (the smallest other)
    SCOPED_TRACE(row->district);
    EXPECT_TRUE(IsSuppressed(At(*row, "ppss_outcomes", "/with_both_terms")));
    EXPECT_TRUE(IsSuppressed(At(*row, "ppss_outcomes", "/passed_rose/denominator")));
    EXPECT_TRUE(IsSuppressed(At(*row, "ppss_outcomes", "/mean_attendance_change")));
  }
  EXPECT_EQ(At(rows[2], "ppss_outcomes", "/with_both_terms"), 9);
  EXPECT_EQ(At(rows[2], "ppss_outcomes", "/passed_rose/denominator"), 9);
}

TEST(SuppressionTest, MeetingsDaysAndNormsAreNotCells) {
  DistrictBuilder d("Farsta");
  d.Forum("steeringGroup", "2016-09-01");
  d.Forum("localForum", "2016-09-10");
  d.Forum("localForum", "2016-10-10");
  d.Agreement("2016-11-12");
  FollowupReport report = Report(d.input());
  SuppressSmallCells({&report}, nullptr);
  EXPECT_EQ(At(report, "forum_cadence", "/steering_group/held"), 1);
  EXPECT_EQ(At(report, "forum_cadence", "/local_forum/held"), 2);
  EXPECT_EQ(Find(report, "forum_cadence").summary, "S1 M0 L2");
  EXPECT_EQ(At(report, "agreement_currency", "/days_since_revision"), 3);
  EXPECT_EQ(Find(report, "agreement_currency").met, std::optional<bool>(true));
}

TEST(SuppressionTest, ASecondRunChangesNothing) {
  std::vector<FollowupInput> inputs = InputList(Concerns("Farsta", 10, 8), Concerns("Skarpnäck", 3, 3),
                                       Concerns("Bromma", 20, 15));
  std::vector<FollowupReport> rows = {Report(inputs[0]), Report(inputs[1]), Report(inputs[2])};
  FollowupReport city = City(inputs);
  SuppressSmallCells({&rows[0], &rows[1], &rows[2]}, &city);
  json before = json::array({FollowupToJson(rows[0]), FollowupToJson(rows[1]), FollowupToJson(rows[2]),
                             FollowupToJson(city)});
  SuppressSmallCells({&rows[0], &rows[1], &rows[2]}, &city);
  json after = json::array({FollowupToJson(rows[0]), FollowupToJson(rows[1]), FollowupToJson(rows[2]),
                            FollowupToJson(city)});
  EXPECT_EQ(before, after);
}

// Every cell of `report`: (where, value or nullopt when hidden).
void Cells(FollowupReport& report, std::map<std::string, std::optional<int64_t>>& out) {
  std::function<void(const IndicatorResult&, const json&, const std::string&)> walk =
      [&](const IndicatorResult& result, const json& value, const std::string& at) {
        if (!value.is_object() || IsSuppressed(value)) return;
        if (value.contains("numerator")) {
          for (const char* part : {"/numerator", "/denominator"}) {
            const json& figure = value[json::json_pointer(part)];
            out[result.indicator.key + at + part] =
                IsSuppressed(figure) ? std::nullopt : std::optional<int64_t>(figure.get<int64_t>());
          }
        }
        for (const auto& [name, child] : value.items()) walk(result, child, at + "/" + name);
      };
  for (const IndicatorResult& result : report.indicators) {
    walk(result, result.values, "");
    for (const std::string& count : result.indicator.cells.counts) {
      const json& figure = result.values[json::json_pointer(count)];
      out[result.indicator.key + count] =
          IsSuppressed(figure) ? std::nullopt : std::optional<int64_t>(figure.get<int64_t>());
    }
  }
}

// Fourteen random districts, most of them small: after suppression no cell shows a
// count under 5, no hidden share or verdict is left, and wherever a cell is hidden in
// a district, at least one other district's same cell is hidden too (or the city's),
// so that the city's total gives away none of them.
TEST(SuppressionTest, RandomCitiesShowNoCountUnderFiveAndNoLoneHiddenCell) {
  std::mt19937 random(20161115);
  for (int city_number = 0; city_number < 20; ++city_number) {
    SCOPED_TRACE("city " + std::to_string(city_number));
    std::vector<FollowupInput> inputs;
    int child = 0;
    for (int i = 0; i < 14; ++i) {
      DistrictBuilder d("District " + std::to_string(i));
      auto up_to = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n + 1)); };
      std::vector<RecordId> schools;
      int municipal = up_to(12), independent = up_to(6);
      for (int s = 0; s < municipal + independent; ++s) schools.push_back(d.School(s >= municipal, s == 0));
      for (size_t s = 0; s < schools.size(); ++s) {
        if (up_to(4) != 0) d.Contact(schools[s], "W" + std::to_string(s / 2), "2016-01-01");
      }
      if (!schools.empty()) {
        for (int r = up_to(15); r > 0; --r) d.Concern(schools[0], ++child, "2016-09-01", up_to(3) ? "2016-09-05" : "");
        for (int r = up_to(8); r > 0; --r) d.Enrolment(++child, schools[0], "placed", "2016-01-01", up_to(4) != 0);
        for (int r = up_to(9); r > 0; --r) d.Absence(++child, schools[0], "2016-10-01", up_to(1) ? "2016-10-02" : "");
        std::vector<RecordId> attended;
        for (const RecordId& s : schools) {
          if (up_to(2)) attended.push_back(s);
        }
        d.Forum("localForum", "2016-09-01", schools, attended);
      }
      inputs.push_back(d.Take());
    }
    std::vector<FollowupReport> rows;
    for (const FollowupInput& input : inputs) rows.push_back(Report(input));
    FollowupReport city = City(inputs);
    std::vector<FollowupReport*> pointers;
    for (FollowupReport& row : rows) pointers.push_back(&row);
    SuppressSmallCells(pointers, &city);

    std::vector<std::map<std::string, std::optional<int64_t>>> cells(rows.size() + 1);
    for (size_t r = 0; r < rows.size(); ++r) Cells(rows[r], cells[r]);
    Cells(city, cells.back());
    for (const auto& row : cells) {
      for (const auto& [where, value] : row) {
        if (value) {
          EXPECT_GE(*value, kMinPublishedCount) << where;
        }
      }
    }
    for (const auto& [where, city_value] : cells.back()) {
      int hidden = !city_value;
      for (size_t r = 0; r < rows.size(); ++r) hidden += cells[r].count(where) && !cells[r].at(where);
      EXPECT_NE(hidden, 1) << where << ": one hidden cell would be the city's total minus the others";
    }
    for (FollowupReport* report : pointers) {
      for (const IndicatorResult& result : report->indicators) {
        if (result.suppressed) {
          EXPECT_EQ(result.met, std::nullopt);
        }
        EXPECT_EQ(result.summary, IndicatorHeadline(result));
      }
    }
  }
}

}  // namespace
}  // namespace samsync
