// `samsync-server report` end to end: real district machines make demo districts and
// sync them with a real `samsync-server run` on 127.0.0.1 (an ephemeral port); the
// report is then run, as the central office runs it, on the city-wide store those
// syncs filled. Every process a test starts is stopped by its pid before the test
// ends (test_support.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "samsync/city_report.h"
#include "samsync/districts.h"
#include "samsync/followup.h"
#include "samsync/store.h"
#include "samsync/suppression.h"
#include "test_support.h"

namespace samsync {
namespace {

using nlohmann::json;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::RunSamsyncServer;
using testing::SyncServerProcess;
using testing::TempDir;

json ParseJson(const std::string& text) {
  auto parsed = json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text.substr(0, 500);
  return parsed.is_discarded() ? json::object() : parsed;
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

// Whether `pointer` of indicator `key` is a count that suppression protects.
bool IsCell(const std::string& key, const std::string& pointer) {
  if (pointer.ends_with("/numerator") || pointer.ends_with("/denominator")) return true;
  for (const IndicatorDefinition& d : FollowupIndicators()) {
    if (d.key != key) continue;
    for (const std::string& count : d.cells.counts) {
      if (count == pointer) return true;
    }
  }
  return false;
}

// Calls `visit(pointer, published)` for every figure `published` shows (not hidden).
void Shown(const json& published, const std::string& at,
           const std::function<void(const std::string&, const json&)>& visit) {
  if (IsSuppressed(published)) return;
  if (published.is_object()) {
    for (const auto& [name, child] : published.items()) Shown(child, at + "/" + name, visit);
    return;
  }
  visit(at, published);
}

class ReportCliTest : public ::testing::Test {
 protected:
  struct Machine {
    std::string name, district, folder;
    std::vector<std::string> env;
  };

  ReportCliTest() : admin_({"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")}), server_data_(dir_.Sub("server")) {}

  void SetUp() override {
    CommandResult city = RunSamsync({"city", "init", City()}, admin_);
    ASSERT_EQ(city.exit_code, 0) << city.err;
  }

  void TearDown() override {
    if (server_ && HasFailure()) std::cerr << "--- samsync-server log ---\n" << server_->Log() << "---\n";
    if (server_ && server_->Running()) server_->Stop();
  }

  std::string City() const { return dir_.Sub("city"); }
  std::string Roster() const { return City() + "/roster.latest"; }

  std::string Ok(const Machine& m, const std::vector<std::string>& args) {
    CommandResult r = RunSamsync(args, m.env);
    EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
    return r.out;
  }

  // A new store for `district`, enrolled in the roster as a writer of it.
  Machine Enrolled(const std::string& name, const std::string& district) {
    std::string folder = dir_.Sub("store-" + name);
    Machine m{name, district, folder, {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"}};
    Ok(m, {"init", "--district", district});
    json me = ParseJson(Ok(m, {"whoami", "--json"}));
    CommandResult added = RunSamsync({"roster", "add", "--city", City(), "--device-key", me.value("deviceKey", ""),
                                      "--transport-key", me.value("transportKey", ""), "--role", "writer",
                                      "--district", district, "--label", name},
                                     admin_);
    EXPECT_EQ(added.exit_code, 0) << added.err;
    machines_.push_back(m);
    return m;
  }

  // The server, created from the roster, enrolled in it as the admin does (its log key
  // and transport key), started; then the roster installed on every machine.
  void StartServer() {
    CommandResult made = RunSamsyncServer({"init", "--data", server_data_, "--roster", Roster(), "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    json keys = ParseJson(made.out);
    CommandResult added = RunSamsync({"roster", "add", "--city", City(), "--device-key", keys.value("logKey", ""),
                                      "--transport-key", keys.value("serverKey", ""), "--role", "server", "--label",
                                      "sync server"},
                                     admin_);
    ASSERT_EQ(added.exit_code, 0) << added.err;
    CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    for (const Machine& m : machines_) Ok(m, {"roster", "import", Roster()});
    server_ = std::make_unique<SyncServerProcess>(server_data_);
    ASSERT_TRUE(server_->ok());
  }

  void Sync(const Machine& m) {
    CommandResult r = RunSamsync({"sync", "--server", server_->endpoint(), "--server-key", server_->key()}, m.env);
    ASSERT_EQ(r.exit_code, 0) << m.name << " sync: " << r.err;
  }

  CommandResult Report(std::vector<std::string> extra) {
    std::vector<std::string> args = {"report", "--data", server_data_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSamsyncServer(args);
  }

  // The district's own report, as `samsync report` gives it to the district.
  json DistrictReport(const Machine& m) {
    return ParseJson(Ok(m, {"report", "--term", "2016HT", "--date", "2016-11-15", "--json"}));
  }

  TempDir dir_;
  std::vector<std::string> admin_;
  std::string server_data_;
  std::vector<Machine> machines_;
  std::unique_ptr<SyncServerProcess> server_;
};

TEST_F(ReportCliTest, TheCitywideReportOfRealSyncsInEveryFormat) {
  Machine farsta = Enrolled("farsta", "Farsta");
  Machine farsta2 = Enrolled("farsta-2", "Farsta");
  Machine bromma = Enrolled("bromma", "Bromma");
  Machine rinkeby = Enrolled("rinkeby", "Rinkeby-Kista");
  Machine alvsjo = Enrolled("alvsjo", "Älvsjö");  // enrolled, never syncs
  StartServer();
  int seed = 1;
  for (const Machine* m : {&farsta, &bromma, &rinkeby}) {
    Ok(*m, {"demo-data", "--scale", "0.5", "--seed", std::to_string(seed++), "--today", "2016-11-15"});
    Sync(*m);
  }
  // A conflict in Farsta: both of its machines rename one school while apart.
  Sync(farsta2);
  std::string school = ParseJson(Ok(farsta, {"list", "school", "--json"}))[0].value("id", "");
  ASSERT_FALSE(school.empty());
  Ok(farsta, {"update", school, "--name", "Farstaskolan"});
  Ok(farsta2, {"update", school, "--name", "Farsta grundskola"});
  Sync(farsta);
  Sync(farsta2);
  Sync(farsta);

  // JSON.
  CommandResult r = Report({"--term", "2016HT", "--date", "2016-11-15", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  json report = ParseJson(r.out);
  EXPECT_EQ(report["format"], "samsync-city-followup");
  EXPECT_EQ(report["term"], "2016HT");
  EXPECT_EQ(report["reference_date"], "2016-11-15");
  ASSERT_EQ(report["districts"].size(), 14u);
  std::map<std::string, json> rows;
  for (const json& row : report["districts"]) rows[row["district"]] = row;
  for (const std::string& district : Districts()) {
    SCOPED_TRACE(district);
    const json& row = rows[district];
    bool synced = district == "Farsta" || district == "Bromma" || district == "Rinkeby-Kista";
    EXPECT_EQ(row["stale"], !synced);
    EXPECT_EQ(row["last_sync"].is_string(), synced);
    if (synced) {
      EXPECT_EQ(row["sync_age_days"], 0);
    }
    if (!synced) {
      for (const json& indicator : row["indicators"]) {
        EXPECT_EQ(indicator["status"], "stale");
        EXPECT_TRUE(indicator["values"].is_null()) << "stale, not zero";
      }
    }
  }
  EXPECT_EQ(rows["Farsta"]["conflicts"], 1);
  EXPECT_EQ(rows["Bromma"]["conflicts"], 0);
  EXPECT_EQ(report["citywide"]["conflicts"], 1);
  EXPECT_EQ(report["citywide"]["stale_districts"], 11);

  // Each synced district's row shows its own report's figures (those not hidden), and
  // no count under 5.
  size_t shown = 0, hidden_cells = 0;
  for (const Machine* m : {&farsta, &bromma, &rinkeby}) {
    SCOPED_TRACE(m->district);
    json own = DistrictReport(*m);
    const json& row = rows[m->district];
    for (size_t i = 0; i < 13; ++i) {
      const json& published = row["indicators"][i];
      const json& local = own["indicators"][i];
      ASSERT_EQ(published["key"], local["key"]);
      std::string key = published["key"];
      Shown(published["values"], "", [&](const std::string& pointer, const json& value) {
        EXPECT_EQ(value, local["values"][json::json_pointer(pointer)]) << key << pointer;
        if (IsCell(key, pointer)) {
          EXPECT_GE(value.get<int64_t>(), kMinPublishedCount) << key << pointer;
          ++shown;
        }
      });
      if (published["status"] == "suppressed") {
        ++hidden_cells;
      } else {
        EXPECT_EQ(published["met"], local["met"]) << key;
      }
    }
  }
  EXPECT_GT(shown, 20u);
  EXPECT_GT(hidden_cells, 0u);

  // The city's row is computed from the pooled records of the three districts.
  std::vector<FollowupInput> inputs;
  SystemClock clock;
  for (const Machine* m : {&farsta, &bromma, &rinkeby}) {
    auto store = Store::Open(m->folder, KeySource::KeyFile(m->folder + ".key"), clock);
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto input = LoadFollowupInput(**store);
    ASSERT_TRUE(input.ok());
    inputs.push_back(std::move(input).value());
  }
  auto pooled = ComputeCityFollowup(inputs, Term{2016, true}, Date::Parse("2016-11-15").value());
  ASSERT_TRUE(pooled.ok());
  size_t city_shown = 0;
  for (size_t i = 0; i < 13; ++i) {
    const json& published = report["citywide"]["indicators"][i];
    const IndicatorResult& expected = pooled->indicators[i];
    std::string key = published["key"];
    Shown(published["values"], "", [&](const std::string& pointer, const json& value) {
      EXPECT_EQ(value, expected.values[json::json_pointer(pointer)]) << "city " << key << pointer;
      if (IsCell(key, pointer)) {
        EXPECT_GE(value.get<int64_t>(), kMinPublishedCount) << "city " << key << pointer;
        ++city_shown;
      }
    });
  }
  EXPECT_GT(city_shown, 10u);
  int64_t sum = 0;
  for (const Machine* m : {&farsta, &bromma, &rinkeby}) {
    sum += DistrictReport(*m)["indicators"][8]["values"]["denominator"].get<int64_t>();
  }
  EXPECT_EQ(pooled->indicators[8].values["denominator"], sum) << "reports of concern: the sum of the districts'";

  // CSV, for Swedish Excel.
  CommandResult csv = Report({"--term", "2016HT", "--date", "2016-11-15", "--format", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  ASSERT_EQ(csv.out.substr(0, 3), "\xEF\xBB\xBF");
  std::vector<std::string> lines = Split(csv.out.substr(3), "\r\n");
  ASSERT_GT(lines.size(), 100u);
  EXPECT_EQ(lines.back(), "");
  lines.pop_back();
  std::vector<std::string> header = Split(lines[0], ";");
  ASSERT_EQ(header.size(), 17u);
  bool comma = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = Split(lines[i], ";");
    ASSERT_EQ(f.size(), header.size()) << lines[i];
    std::string pointer = "/" + f[15];
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    if (f[16].find(',') != std::string::npos) comma = true;
    if (!f[15].empty() && IsCell(f[10], pointer) && f[16] != "<5") {
      EXPECT_GE(std::stoll(f[16]), kMinPublishedCount) << lines[i];
    }
  }
  EXPECT_TRUE(comma) << "decimal commas";
  EXPECT_NE(csv.out.find("\r\ndistrict;Farsta;2016HT;2016-07-01;2016-11-15;"), std::string::npos);
  EXPECT_NE(csv.out.find("\r\ndistrict;Älvsjö;2016HT;2016-07-01;2016-11-15;;;true;0;1;contact_coverage;"),
            std::string::npos);

  // The table, for a person.
  CommandResult table = Report({"--term", "2016HT", "--date", "2016-11-15"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("Citywide follow-up 2016HT (2016-07-01 – 2016-11-15), made ", 0), 0u) << table.out;
  for (const std::string& district : Districts()) {
    size_t at = table.out.find("\n" + district + " ");
    ASSERT_NE(at, std::string::npos) << district;
    std::string line = table.out.substr(at + 1, table.out.find('\n', at + 1) - at - 1);
    bool synced = district == "Farsta" || district == "Bromma" || district == "Rinkeby-Kista";
    EXPECT_NE(line.find(synced ? "today" : "never"), std::string::npos) << line;
    if (synced) {
      EXPECT_NE(line.find("<5"), std::string::npos) << line;
    } else {
      EXPECT_EQ(line.find('%'), std::string::npos) << line;
    }
  }
  EXPECT_NE(table.out.find("\nCitywide (pooled)"), std::string::npos);
  EXPECT_FALSE(std::regex_search(table.out, std::regex("\\(\\d+/\\d+\\)"))) << "no (n/d) counts in the table";

  // --json is --format json; --stale-days 0 makes every sync (some milliseconds old) stale.
  CommandResult as_json = Report({"--term", "2016HT", "--date", "2016-11-15", "--json", "--stale-days", "0"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  json strict = ParseJson(as_json.out);
  EXPECT_EQ(strict["stale_days"], 0);
  EXPECT_EQ(strict["citywide"]["stale_districts"], 14);
  (void)alvsjo;
}

TEST_F(ReportCliTest, BadOptionsGiveOneLineAndExitTwo) {
  Enrolled("farsta", "Farsta");
  StartServer();
  ExpectOneLineError(Report({"--term", "2016XT"}), 2, "--term");
  ExpectOneLineError(Report({"--date", "2016-02-30"}), 2, "--date");
  ExpectOneLineError(Report({"--date", "15/11/2016"}), 2, "--date");
  ExpectOneLineError(Report({"--term", "2016HT", "--date", "2016-03-01"}), 2, "before term 2016HT starts");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--format", "xml"}, {"--stale-days", "-3"}, {"--stale-days", "many"}}) {
    CommandResult r = Report(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[1];
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
    EXPECT_EQ(r.err.rfind("samsync-server: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(args[0]), std::string::npos) << r.err;
  }
  // A district's store is not the city's.
  CommandResult district = RunSamsyncServer(
      {"report", "--data", machines_[0].folder, "--key-file", machines_[0].folder + ".key"});
  ExpectOneLineError(district, 2, "district's store");
}

TEST(ReportCliHelpTest, HelpExplainsEveryOption) {
  CommandResult r = RunSamsyncServer({"report", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* option : {"--data", "--key-file", "--term", "--date", "--format", "--stale-days", "--json"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
  EXPECT_NE(r.out.find("table"), std::string::npos);
  EXPECT_NE(r.out.find("csv"), std::string::npos);
  CommandResult top = RunSamsyncServer({"--help"});
  EXPECT_NE(top.out.find("report"), std::string::npos);
}

}  // namespace
}  // namespace samsync
