// The citywide report: the city's figures pooled from every district's records (not
// averaged), each district's row its own report, staleness from the server's record
// of syncs, suppression in every format, and the formats themselves.
//
// Reports are for 2016HT as of 2016-11-15; "now" is 2016-11-20 12:00 UTC.
#include "samsync/city_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "followup_builder.h"
#include "samsync/districts.h"
#include "samsync/suppression.h"

namespace samsync {
namespace {

using nlohmann::json;
using testing::DistrictBuilder;
using testing::InputList;
using testing::TempDir;

const Term kTerm{2016, true};
const Date kRef = Date::Parse("2016-11-15").value();
constexpr int64_t kNow = 1479643200000;  // 2016-11-20 12:00 UTC
constexpr int64_t kDay = 24 * 60 * 60 * 1000;

const IndicatorResult& Find(const FollowupReport& report, const std::string& key) {
  for (const IndicatorResult& result : report.indicators) {
    if (result.indicator.key == key) return result;
  }
  ADD_FAILURE() << "no indicator " << key;
  static IndicatorResult none;
  return none;
}

const json& At(const FollowupReport& report, const std::string& key, const std::string& pointer) {
  return Find(report, key).values[json::json_pointer(pointer)];
}

FollowupReport City(const std::vector<FollowupInput>& inputs) {
  auto report = ComputeCityFollowup(inputs, kTerm, kRef);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? std::move(report).value() : FollowupReport{};
}

FollowupReport Own(const FollowupInput& input) {
  auto report = ComputeFollowup(input, kTerm, kRef);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? std::move(report).value() : FollowupReport{};
}

CityReport Report(const CityFollowupInput& input, int32_t stale_days = kDefaultStaleDays) {
  CityReportOptions options;
  options.term = kTerm;
  options.reference_date = kRef;
  options.now_ms = kNow;
  options.stale_days = stale_days;
  auto report = ComputeCityReport(input, options);
  EXPECT_TRUE(report.ok()) << report.status().message();
  return report.ok() ? std::move(report).value() : CityReport{};
}

const DistrictFollowup& Row(const CityReport& report, const std::string& district) {
  for (const DistrictFollowup& row : report.districts) {
    if (row.district == district) return row;
  }
  ADD_FAILURE() << "no row " << district;
  static DistrictFollowup none;
  return none;
}

// `feedback` of `reports` reports of concern received in T.
void Concerns(DistrictBuilder& d, int reports, int feedback, int first_child) {
  RecordId school = d.School();
  for (int i = 0; i < reports; ++i) d.Concern(school, first_child + i, "2016-09-01", i < feedback ? "2016-09-05" : "");
}

TEST(CityFollowupTest, SharesPoolTheRecordsNotTheDistrictShares) {
  DistrictBuilder farsta("Farsta"), bromma("Bromma");
  Concerns(farsta, 10, 9, 0);   // 90 %
  Concerns(bromma, 5, 1, 100);  // 20 %
  FollowupReport city = City(InputList(farsta.Take(), bromma.Take()));
  const json& feedback = Find(city, "concern_feedback").values;
  EXPECT_EQ(feedback["numerator"], 10);
  EXPECT_EQ(feedback["denominator"], 15);
  EXPECT_DOUBLE_EQ(feedback["share"].get<double>(), 10.0 / 15.0) << "not (0.9 + 0.2) / 2";
  EXPECT_EQ(city.district, "");
  EXPECT_EQ(Find(city, "concern_feedback").summary, "67 % (10/15); median 4 days");
}

// A child who moved from Farsta to Bromma: each district sees one term of them; the
// city sees both, and counts them once.
TEST(CityFollowupTest, AChildInTwoDistrictsIsCountedOnceWithEveryFollowUp) {
  DistrictBuilder farsta("Farsta"), bromma("Bromma");
  RecordId f = farsta.School(false, true), b = bromma.School(false, true);
  farsta.Enrolment(7, f, "ppss", "2016-01-10");
  farsta.FollowUp(7, "2016-03-01", {{"attendancePct", "70"}, {"subjectsPassedPct", "40"}});
  bromma.Enrolment(7, b, "ppss", "2016-08-15");
  bromma.FollowUp(7, "2016-10-01", {{"attendancePct", "80"}, {"subjectsPassedPct", "60"}});
  FollowupInput fi = farsta.Take(), bi = bromma.Take();
  for (const FollowupInput* input : {&fi, &bi}) {
    FollowupReport own = Own(*input);
    EXPECT_EQ(At(own, "ppss_outcomes", "/enrolled"), 1) << input->district;
    EXPECT_EQ(At(own, "ppss_outcomes", "/with_both_terms"), 0) << input->district;
  }
  FollowupReport city = City(InputList(std::move(fi), std::move(bi)));
  EXPECT_EQ(At(city, "ppss_outcomes", "/enrolled"), 1);
  EXPECT_EQ(At(city, "ppss_outcomes", "/focus_schools"), 2);
  EXPECT_EQ(At(city, "ppss_outcomes", "/with_both_terms"), 1);
  EXPECT_DOUBLE_EQ(At(city, "ppss_outcomes", "/mean_attendance_change").get<double>(), 10.0);
  EXPECT_EQ(At(city, "ppss_outcomes", "/passed_rose/numerator"), 1);
}

// "AB" is a staff reference in each district: two people. So is a unit's name.
TEST(CityFollowupTest, SocialWorkersAndUnitsAreToldApartByDistrict) {
  DistrictBuilder farsta("Farsta"), bromma("Bromma");
  farsta.Contact(farsta.School(), "AB", "2016-01-01");
  farsta.Contact(farsta.School(), "AB", "2016-01-01");
  bromma.Contact(bromma.School(), "AB", "2016-01-01");
  farsta.Material("Mottagningsgruppen", "2016-09-01");
  bromma.Material("Mottagningsgruppen", "2015-01-01");  // not reached in the last year
  FollowupReport city = City(InputList(farsta.Take(), bromma.Take()));
  EXPECT_EQ(At(city, "schools_per_contact", "/workers"), 2);
  EXPECT_EQ(At(city, "schools_per_contact", "/school_links"), 3);
  EXPECT_DOUBLE_EQ(At(city, "schools_per_contact", "/mean").get<double>(), 1.5);
  EXPECT_EQ(At(city, "schools_per_contact", "/max"), 2);
  EXPECT_EQ(At(city, "material_reach", "/numerator"), 1);
  EXPECT_EQ(At(city, "material_reach", "/denominator"), 2);
}

TEST(CityFollowupTest, AgreementAndCadenceCountTheDistrictsThatMeetThem) {
  DistrictBuilder farsta("Farsta"), bromma("Bromma"), empty("Skarpnäck");
  farsta.Agreement("2016-03-01");
  farsta.Forum("steeringGroup", "2016-09-01");
  farsta.Forum("managers", "2016-02-01");
  farsta.Forum("localForum", "2016-09-10");
  farsta.Forum("localForum", "2016-10-10");
  bromma.Agreement("2014-03-01");                // over a year old
  bromma.Forum("steeringGroup", "2016-09-01");   // bromma's managers and local forums are missing
  FollowupReport city = City(InputList(farsta.Take(), bromma.Take(), empty.Take()));
  const IndicatorResult& agreement = Find(city, "agreement_currency");
  EXPECT_EQ(agreement.values, json({{"districts_met", 1}, {"districts", 2}})) << "Skarpnäck has no records";
  EXPECT_EQ(agreement.met, std::optional<bool>(false));
  EXPECT_EQ(IndicatorHeadline(agreement), "1/2");
  const IndicatorResult& cadence = Find(city, "forum_cadence");
  EXPECT_EQ(cadence.values, json({{"districts_met", 1}, {"districts", 2}}));
  EXPECT_EQ(cadence.summary, "1 of 2 districts");
  // Pooled, Bromma's steering group would have made the city's "steering group held" 2.
}

// A row is the district's own report: what `samsync report` shows the district, before
// suppression (these counts are all 5 or more, so nothing is hidden).
TEST(CityReportTest, ADistrictsRowIsItsOwnReport) {
  DistrictBuilder farsta("Farsta"), bromma("Bromma");
  Concerns(farsta, 12, 9, 0);
  Concerns(bromma, 20, 15, 100);
  CityFollowupInput input;
  input.districts = InputList(farsta.Take(), bromma.Take());
  input.last_sync_ms = {{"Farsta", kNow - kDay}, {"Bromma", kNow - 2 * kDay}};
  FollowupReport own = Own(input.districts[0]);
  CityReport report = Report(input);
  const DistrictFollowup& row = Row(report, "Farsta");
  ASSERT_TRUE(row.report);
  EXPECT_EQ(Find(*row.report, "concern_feedback").values, Find(own, "concern_feedback").values);
  EXPECT_EQ(At(report.citywide, "concern_feedback", "/denominator"), 32);
  EXPECT_EQ(report.term.ToString(), "2016HT");
  EXPECT_EQ(report.reference_date.ToString(), "2016-11-15");
  EXPECT_EQ(report.period_start.ToString(), "2016-07-01");
}

TEST(CityReportTest, EveryDistrictOfTheCityHasARowInTheUsualOrder) {
  CityReport report = Report({});
  ASSERT_EQ(report.districts.size(), Districts().size());
  for (size_t i = 0; i < Districts().size(); ++i) EXPECT_EQ(report.districts[i].district, Districts()[i]);
  EXPECT_EQ(report.stale_districts, 14u);
}

TEST(CityReportTest, ADistrictThatNeverSyncedIsStaleNotZero) {
  CityReport report = Report({});
  const DistrictFollowup& row = Row(report, "Farsta");
  EXPECT_TRUE(row.stale);
  EXPECT_FALSE(row.last_sync_ms);
  EXPECT_FALSE(row.sync_age_days);
  EXPECT_FALSE(row.report) << "no figures at all, rather than zeros";
  json j = CityReportToJson(report);
  const json& farsta = j["districts"][10];
  ASSERT_EQ(farsta["district"], "Farsta");
  EXPECT_TRUE(farsta["last_sync"].is_null());
  EXPECT_EQ(farsta["stale"], true);
  ASSERT_EQ(farsta["indicators"].size(), 13u);
  for (const json& indicator : farsta["indicators"]) {
    EXPECT_EQ(indicator["status"], "stale");
    EXPECT_EQ(indicator["text"], "stale");
    EXPECT_TRUE(indicator["values"].is_null());
    EXPECT_TRUE(indicator["met"].is_null());
  }
}

TEST(CityReportTest, ASyncMoreThanThirtyDaysOldIsStale) {
  CityFollowupInput input;
  input.last_sync_ms = {{"Farsta", kNow - 30 * kDay},        // exactly 30 days: not more
                        {"Bromma", kNow - 30 * kDay - 1},    // a millisecond more
                        {"Skarpnäck", kNow - 3 * kDay - 5}};
  CityReport report = Report(input);
  EXPECT_FALSE(Row(report, "Farsta").stale);
  EXPECT_EQ(Row(report, "Farsta").sync_age_days, 30);
  EXPECT_TRUE(Row(report, "Bromma").stale);
  EXPECT_FALSE(Row(report, "Skarpnäck").stale);
  EXPECT_EQ(Row(report, "Skarpnäck").sync_age_days, 3);
  EXPECT_EQ(report.stale_districts, 12u);
  // --stale-days 2: Skarpnäck's 3 days are too many.
  CityReport strict = Report(input, 2);
  EXPECT_TRUE(Row(strict, "Skarpnäck").stale);
  EXPECT_EQ(strict.stale_days, 2);
}

// A stale district that has records keeps its figures in the JSON and CSV (what the
// server last had), marked stale; at a glance (status, table) it is stale.
TEST(CityReportTest, AStaleDistrictWithRecordsIsMarkedStaleAtAGlance) {
  DistrictBuilder bromma("Bromma");
  Concerns(bromma, 20, 15, 0);
  CityFollowupInput input;
  input.districts = InputList(bromma.Take());
  input.last_sync_ms = {{"Bromma", kNow - 40 * kDay}};
  CityReport report = Report(input);
  const DistrictFollowup& row = Row(report, "Bromma");
  ASSERT_TRUE(row.report);
  EXPECT_TRUE(row.stale);
  EXPECT_EQ(IndicatorStatus(&row, Find(*row.report, "concern_feedback")), "stale");
  json j = CityReportToJson(report);
  const json& bromma_json = j["districts"][3];
  ASSERT_EQ(bromma_json["district"], "Bromma");
  EXPECT_EQ(bromma_json["sync_age_days"], 40);
  EXPECT_EQ(bromma_json["indicators"][8]["status"], "stale");
  EXPECT_EQ(bromma_json["indicators"][8]["values"]["denominator"], 20);
  std::string table = CityReportToTable(report);
  std::string line = table.substr(table.find("\nBromma") + 1);
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("40 d ago"), std::string::npos) << line;
  EXPECT_NE(line.find("stale"), std::string::npos) << line;
  EXPECT_EQ(line.find('%'), std::string::npos) << "no figures for a stale district at a glance: " << line;
}

TEST(CityReportTest, ADistrictThatSyncedWithoutRecordsHasFiguresOfNothing) {
  CityFollowupInput input;
  input.last_sync_ms = {{"Farsta", kNow - kDay}};
  CityReport report = Report(input);
  const DistrictFollowup& row = Row(report, "Farsta");
  EXPECT_FALSE(row.stale);
  ASSERT_TRUE(row.report);
  EXPECT_EQ(IndicatorStatus(&row, Find(*row.report, "concern_feedback")), "suppressed") << "0 reports: under 5";
  EXPECT_EQ(IndicatorStatus(&row, Find(*row.report, "agreement_currency")), "not_met") << "no agreement";
}

TEST(CityReportTest, ConflictsAreCountedPerDistrictAndForTheCity) {
  CityFollowupInput input;
  input.conflicts = {{"Farsta", 2}, {"Bromma", 1}, {"", 1}};
  CityReport report = Report(input);
  EXPECT_EQ(Row(report, "Farsta").conflicts, 2u);
  EXPECT_EQ(Row(report, "Bromma").conflicts, 1u);
  EXPECT_EQ(Row(report, "Skarpnäck").conflicts, 0u);
  EXPECT_EQ(report.conflicts, 4u) << "one whose district is unknown counts for the city";
  EXPECT_EQ(report.districts.size(), 14u);
  EXPECT_EQ(CityReportToJson(report)["citywide"]["conflicts"], 4);
}

TEST(CityReportTest, AReferenceDateBeforeTheTermIsRefused) {
  CityReportOptions options;
  options.term = kTerm;
  options.reference_date = Date::Parse("2016-06-30").value();
  auto report = ComputeCityReport({}, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kInvalidInput);
}

// The server's record of syncs in the city-wide store: per district, only forward.
TEST(CityReportTest, TheCityStoreKeepsEachDistrictsLatestSync) {
  TempDir dir;
  ASSERT_TRUE(CreateKeyFile(dir.Sub("key")).ok());
  FixedClock clock(kNow);
  CreateOptions create;
  create.city_wide = true;
  {
    auto store = Store::Create(dir.Sub("city"), KeySource::KeyFile(dir.Sub("key")), std::move(create), clock);
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto none = (*store)->DistrictSyncTimes();
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    EXPECT_TRUE((*store)->RecordDistrictSync("Farsta", kNow - kDay).ok());
    EXPECT_TRUE((*store)->RecordDistrictSync("Farsta", kNow - 5 * kDay).ok());  // older: ignored
    EXPECT_TRUE((*store)->RecordDistrictSync("Skarpnäck", kNow).ok());
    EXPECT_EQ((*store)->RecordDistrictSync("", kNow).code(), Code::kInvalidInput);
  }
  auto store = Store::Open(dir.Sub("city"), KeySource::KeyFile(dir.Sub("key")), clock);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto times = (*store)->DistrictSyncTimes();
  ASSERT_TRUE(times.ok()) << times.status().message();
  EXPECT_EQ(*times, (std::map<std::string, int64_t>{{"Farsta", kNow - kDay}, {"Skarpnäck", kNow}}));
  auto input = LoadCityFollowupInput(**store);
  ASSERT_TRUE(input.ok()) << input.status().message();
  EXPECT_EQ(input->last_sync_ms, *times);

  testing::TestStore district("Farsta");
  EXPECT_EQ(district->RecordDistrictSync("Farsta", kNow).code(), Code::kInvalidInput);
  EXPECT_EQ(LoadCityFollowupInput(district.store()).status().code(), Code::kInvalidInput);
}

// Fourteen districts of random size, most small, all synced recently but Älvsjö (never)
// and Skärholmen (45 days ago).
CityReport GeneratedCity(unsigned seed) {
  std::mt19937 random(seed);
  auto up_to = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n + 1)); };
  CityFollowupInput input;
  int child = 0;
  for (const std::string& name : Districts()) {
    if (name == "Älvsjö") continue;
    input.last_sync_ms[name] = kNow - (name == "Skärholmen" ? 45 : up_to(3)) * kDay;
    DistrictBuilder d(name);
    std::vector<RecordId> schools;
    int municipal = 2 + up_to(14), independent = up_to(6);
    for (int s = 0; s < municipal + independent; ++s) schools.push_back(d.School(s >= municipal, s < 2));
    for (size_t s = 0; s < schools.size(); ++s) {
      if (up_to(5) != 0) d.Contact(schools[s], "W" + std::to_string(s / 2), "2016-01-01");
    }
    for (int r = up_to(20); r > 0; --r) d.Concern(schools[0], ++child, "2016-09-01", up_to(4) ? "2016-09-08" : "");
    for (int r = up_to(8); r > 0; --r) d.Enrolment(++child, schools[1], "placed", "2016-01-01", up_to(5) != 0);
    for (int r = up_to(10); r > 0; --r) {
      d.Enrolment(++child, schools[0], "ppss", "2016-01-01");
      d.FollowUp(child, "2016-04-01", {{"attendancePct", "70"}, {"subjectsPassedPct", "50"}});
      d.FollowUp(child, "2016-10-01", {{"attendancePct", "80"}, {"subjectsPassedPct", up_to(1) ? "60" : "40"}});
    }
    for (int r = up_to(12); r > 0; --r) d.Absence(++child, schools[0], "2016-10-01", up_to(2) ? "2016-10-03" : "");
    std::vector<RecordId> attended;
    for (const RecordId& s : schools) {
      if (up_to(3)) attended.push_back(s);
    }
    d.Forum("localForum", "2016-09-01", schools, attended);
    d.Forum("localForum", "2016-10-01", schools, attended);
    d.Forum("steeringGroup", "2016-09-15");
    d.Agreement(up_to(1) ? "2016-02-01" : "2015-02-01");
    d.Material("Mottagningsgruppen", "2016-05-01");
    input.districts.push_back(d.Take());
  }
  input.conflicts = {{"Bromma", 1}};
  return Report(input);
}

std::vector<std::string> Split(const std::string& text, const std::string& separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + separator.size();
  }
}

// Whether `where` (a JSON pointer or a CSV measure with dots) of indicator `key` is a
// count the suppression rule protects.
bool IsCell(const std::string& key, std::string where) {
  std::replace(where.begin(), where.end(), '.', '/');
  if (where.empty() || where[0] != '/') where = "/" + where;
  if (where.ends_with("/numerator") || where.ends_with("/denominator")) return true;
  for (const IndicatorDefinition& d : FollowupIndicators()) {
    if (d.key != key) continue;
    for (const std::string& count : d.cells.counts) {
      if (count == where) return true;
    }
  }
  return false;
}

void ExpectNoCountUnderFive(const std::string& key, const json& value, const std::string& at) {
  if (IsSuppressed(value)) return;
  if (value.is_object()) {
    for (const auto& [name, child] : value.items()) ExpectNoCountUnderFive(key, child, at + "/" + name);
    return;
  }
  if (IsCell(key, at)) {
    ASSERT_TRUE(value.is_number_integer()) << key << at << ": " << value;
    EXPECT_GE(value.get<int64_t>(), kMinPublishedCount) << key << at;
  }
}

TEST(CityReportTest, JsonHasItsDocumentedShapeAndNoCountUnderFive) {
  CityReport report = GeneratedCity(7);
  json j = CityReportToJson(report);
  EXPECT_EQ(j["format"], "samsync-city-followup");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["term"], "2016HT");
  EXPECT_EQ(j["period_start"], "2016-07-01");
  EXPECT_EQ(j["reference_date"], "2016-11-15");
  EXPECT_EQ(j["generated_at"], "2016-11-20T12:00:00Z");
  EXPECT_EQ(j["stale_days"], 30);
  EXPECT_EQ(j["min_published_count"], 5);
  ASSERT_EQ(j["indicators"].size(), 13u);
  for (const char* field : {"number", "key", "name_sv", "name_en", "definition", "citywide", "target"}) {
    EXPECT_TRUE(j["indicators"][0].contains(field)) << field;
  }
  ASSERT_EQ(j["districts"].size(), 14u);
  std::set<std::string> statuses;
  for (const json& district : j["districts"]) {
    for (const char* field : {"district", "last_sync", "sync_age_days", "stale", "conflicts", "indicators"}) {
      EXPECT_TRUE(district.contains(field)) << field;
    }
    ASSERT_EQ(district["indicators"].size(), 13u);
    for (const json& indicator : district["indicators"]) {
      statuses.insert(indicator["status"].get<std::string>());
      ExpectNoCountUnderFive(indicator["key"].get<std::string>(), indicator["values"], "");
      if (indicator["status"] == "suppressed") {
        EXPECT_EQ(indicator["met"], SuppressedFigure());
      }
    }
  }
  EXPECT_EQ(j["districts"][3]["conflicts"], 1);  // Bromma
  EXPECT_EQ(j["districts"][11]["stale"], true);   // Älvsjö, never synced
  EXPECT_EQ(j["districts"][13]["stale"], true);   // Skärholmen, 45 days
  EXPECT_EQ(j["districts"][13]["sync_age_days"], 45);
  EXPECT_EQ(j["citywide"]["stale_districts"], 2);
  EXPECT_EQ(j["citywide"]["conflicts"], 1);
  ASSERT_EQ(j["citywide"]["indicators"].size(), 13u);
  for (const json& indicator : j["citywide"]["indicators"]) {
    ExpectNoCountUnderFive(indicator["key"].get<std::string>(), indicator["values"], "");
  }
  for (const char* status : {"met", "not_met", "suppressed", "stale"}) EXPECT_TRUE(statuses.count(status)) << status;
}

TEST(CityReportTest, CsvIsForSwedishExcelAndShowsNoCountUnderFive) {
  CityReport report = GeneratedCity(11);
  std::string csv = CityReportToCsv(report);
  ASSERT_EQ(csv.substr(0, 3), "\xEF\xBB\xBF") << "a UTF-8 BOM";
  ASSERT_EQ(csv.substr(csv.size() - 2), "\r\n");
  std::vector<std::string> lines = Split(csv.substr(3, csv.size() - 5), "\r\n");
  std::vector<std::string> header = Split(lines[0], ";");
  EXPECT_EQ(lines[0],
            "scope;district;term;period_start;reference_date;last_sync;sync_age_days;stale;conflicts;number;key;"
            "indicator_sv;indicator_en;target;status;measure;value");
  std::set<std::string> districts;
  bool decimal_comma = false, hidden = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = Split(lines[i], ";");
    ASSERT_EQ(f.size(), header.size()) << lines[i];
    districts.insert(f[0] + ":" + f[1]);
    const std::string& key = f[10];
    const std::string& measure = f[15];
    const std::string& value = f[16];
    EXPECT_EQ(value.find('.'), std::string::npos) << "a decimal point: " << lines[i];
    if (value.find(',') != std::string::npos) decimal_comma = true;
    if (value == "<5") hidden = true;
    if (!measure.empty() && IsCell(key, measure) && value != "<5") {
      EXPECT_GE(std::stoll(value), kMinPublishedCount) << lines[i];
    }
  }
  EXPECT_EQ(districts.size(), 15u) << "14 districts and the city";
  EXPECT_TRUE(districts.count("city:"));
  EXPECT_TRUE(decimal_comma);
  EXPECT_TRUE(hidden);
  EXPECT_NE(csv.find("district;Älvsjö;2016HT;2016-07-01;2016-11-15;;;true;0;1;contact_coverage;"), std::string::npos);
  EXPECT_NE(csv.find(";share;0,"), std::string::npos);
}

TEST(CityReportTest, TableShowsWhatTheJsonShowsAtAGlance) {
  CityReport report = GeneratedCity(13);
  json j = CityReportToJson(report);
  std::string table = CityReportToTable(report);
  std::vector<std::string> lines = Split(table, "\n");
  ASSERT_GE(lines.size(), 1u + 1u + 1u + 2u + 14u + 2u);
  EXPECT_EQ(lines[0], "Citywide follow-up 2016HT (2016-07-01 – 2016-11-15), made 2016-11-20 12:00 UTC");
  EXPECT_EQ(lines[3].rfind("District", 0), 0u) << lines[3];
  auto cells = [](const std::string& line) {
    // Cells are separated by two spaces or more; a cell holds at most one space in a row.
    std::vector<std::string> out;
    std::string cell;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == ' ' && i + 1 < line.size() && line[i + 1] == ' ') {
        if (!cell.empty()) out.push_back(cell);
        cell.clear();
        while (i + 1 < line.size() && line[i + 1] == ' ') ++i;
      } else {
        cell += line[i];
      }
    }
    if (!cell.empty()) out.push_back(cell);
    return out;
  };
  auto expected = [](const json& indicator) -> std::string {
    std::string status = indicator["status"];
    if (status == "stale") return "stale";
    if (status == "suppressed") return "<5";
    std::string text = indicator["text"];
    if (status == "met") return text + " ✓";
    if (status == "not_met") return text + " ✗";
    return text;
  };
  for (size_t d = 0; d < 14; ++d) {
    const json& district = j["districts"][d];
    const std::string& line = lines[5 + d];
    std::vector<std::string> row = cells(line);
    ASSERT_EQ(row.size(), 16u) << line;
    EXPECT_EQ(row[0], district["district"]);
    EXPECT_EQ(row[2], std::to_string(district["conflicts"].get<int>()));
    for (size_t i = 0; i < 13; ++i) EXPECT_EQ(row[3 + i], expected(district["indicators"][i])) << line;
  }
  std::vector<std::string> city = cells(lines[20]);
  ASSERT_EQ(city.size(), 16u) << lines[20];
  EXPECT_EQ(city[0], "Citywide (pooled)");
  EXPECT_EQ(city[1], "2 stale");
  for (size_t i = 0; i < 13; ++i) EXPECT_EQ(city[3 + i], expected(j["citywide"]["indicators"][i])) << lines[20];
  EXPECT_NE(table.find("\n 1  Contact coverage (Kontaktpersonstäckning), target 100 %\n"), std::string::npos);
  EXPECT_EQ(table.find("(5/"), std::string::npos) << "no counts, only headlines";
}

}  // namespace
}  // namespace samsync
