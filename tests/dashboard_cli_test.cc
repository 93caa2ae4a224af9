// The dashboard (`samsync-server run --http`) in a real browser: district machines make
// demo districts and sync them with a real server on 127.0.0.1 that also serves the
// dashboard; tests/dashboard_browser.js drives Debian's headless Chromium through
// playwright-core over its pages, and what the pages show is compared with
// `samsync-server report --format json`. Screenshots land in the build folder
// (dashboard-overview.png, dashboard-district.png, dashboard-parity.png). Every process
// started is stopped by its pid (test_support.h).
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "samsync/districts.h"
#include "test_support.h"

namespace samsync {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::CommandResult;
using testing::RunSamsync;
using testing::RunSamsyncServer;
using testing::TempDir;

// The build folder: samsync-server is BUILD/server/samsync-server.
std::string BuildDir() {
  return std::filesystem::path(SAMSYNC_SERVER_BINARY).parent_path().parent_path().string();
}

std::string NodeBinary() {
  for (const char* candidate : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return "/usr/bin/node";
}

json ParseJson(const std::string& text) {
  auto parsed = json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text.substr(0, 500);
  return parsed.is_discarded() ? json::object() : parsed;
}

class DashboardCliTest : public ::testing::Test {
 protected:
  struct Machine {
    std::string name, folder;
    std::vector<std::string> env;
  };

  DashboardCliTest() : admin_({"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")}), server_data_(dir_.Sub("server")) {}

  void SetUp() override {
    CommandResult city = RunSamsync({"city", "init", City()}, admin_);
    ASSERT_EQ(city.exit_code, 0) << city.err;
  }

  void TearDown() override {
    if (server_ && server_->Running()) {
      server_->Signal(SIGTERM);
      CommandResult stopped = server_->Wait(5000);
      if (HasFailure()) std::cerr << "--- samsync-server log ---\n" << stopped.err << "---\n";
    }
  }

  std::string City() const { return dir_.Sub("city"); }
  std::string Roster() const { return City() + "/roster.latest"; }

  std::string Ok(const Machine& m, const std::vector<std::string>& args) {
    CommandResult r = RunSamsync(args, m.env);
    EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
    return r.out;
  }

  // A new store, its keys enrolled in the roster with `role` (and `district` for writers).
  Machine Enrolled(const std::string& name, const std::string& district, const std::string& role = "writer") {
    std::string folder = dir_.Sub("store-" + name);
    Machine m{name, folder, {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"}};
    Ok(m, {"init", "--district", district});
    json me = ParseJson(Ok(m, {"whoami", "--json"}));
    std::vector<std::string> add = {"roster", "add", "--city", City(), "--device-key", me.value("deviceKey", ""),
                                    "--transport-key", me.value("transportKey", ""), "--role", role, "--label", name};
    if (role == "writer") {
      add.push_back("--district");
      add.push_back(district);
    }
    CommandResult added = RunSamsync(add, admin_);
    EXPECT_EQ(added.exit_code, 0) << added.err;
    if (role == "writer") machines_.push_back(m);
    return m;
  }

  // The server with its dashboard on 127.0.0.1 (ephemeral ports), as the admin sets it up.
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
    server_ = std::make_unique<ChildProcess>(
        SAMSYNC_SERVER_BINARY,
        std::vector<std::string>{"run", "--data", server_data_, "--listen", "tcp://127.0.0.1:0", "--http",
                                 "127.0.0.1:0"},
        std::vector<std::string>{});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && (endpoint_.empty() || key_.empty() || http_.empty())) {
      std::istringstream lines(server_->Out());
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("samsync-server listening on ", 0) == 0) endpoint_ = line.substr(28);
        if (line.rfind("server key ", 0) == 0 && line.size() == 11 + 64) key_ = line.substr(11);
        if (line.rfind("dashboard on ", 0) == 0) http_ = line.substr(13);
      }
      if (!server_->Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_FALSE(http_.empty()) << "no dashboard: " << server_->Out() << server_->Err();
    ASSERT_FALSE(endpoint_.empty());
    ASSERT_EQ(http_.rfind("http://127.0.0.1:", 0), 0u) << http_;
    if (http_.back() == '/') http_.pop_back();
  }

  void Sync(const Machine& m) {
    CommandResult r = RunSamsync({"sync", "--server", endpoint_, "--server-key", key_}, m.env);
    ASSERT_EQ(r.exit_code, 0) << m.name << " sync: " << r.err;
  }

  // Waits (up to 60 s) until the dashboard's figures include every commit the server
  // holds: it rebuilds its reports in the background after a sync, and says which
  // commits they include in the X-Samsync-Commits header.
  void WaitForDashboard(const std::string& bearer) {
    CommandResult status = RunSamsyncServer({"status", "--data", server_data_, "--json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    std::string commits = std::to_string(ParseJson(status.out).value("commits", uint64_t{0}));
    httplib::Client client(http_);
    std::string shown;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      auto res = client.Get("/api/report.json", {{"Authorization", "Bearer " + bearer}});
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200);
      shown = res->get_header_value("X-Samsync-Commits");
      if (shown == commits) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the dashboard still shows " << shown << " commits of " << commits;
  }

  TempDir dir_;
  std::vector<std::string> admin_;
  std::string server_data_;
  std::vector<Machine> machines_;
  std::unique_ptr<ChildProcess> server_;
  std::string endpoint_, key_, http_;
};

TEST_F(DashboardCliTest, PagesInChromiumShowTheJsonReportAndNeedAToken) {
  Machine farsta = Enrolled("farsta", "Farsta");
  Machine bromma = Enrolled("bromma", "Bromma");
  Machine rinkeby = Enrolled("rinkeby", "Rinkeby-Kista");
  Machine central = Enrolled("central", "Farsta", "central");
  Machine revoked = Enrolled("revoked", "Farsta", "central");
  StartServer();
  int seed = 1;
  for (const Machine* m : {&farsta, &bromma, &rinkeby}) {
    Ok(*m, {"demo-data", "--scale", "0.5", "--seed", std::to_string(seed++), "--today", "2016-11-15"});
    Sync(*m);
  }

  // Tokens: only for an active central-office entry.
  json me = ParseJson(Ok(central, {"whoami", "--json"}));
  CommandResult token = RunSamsyncServer({"token", "--data", server_data_, "--device-key", me.value("deviceKey", "")});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string bearer = token.out.substr(0, token.out.find('\n'));
  ASSERT_EQ(bearer.size(), 129u) << bearer;
  json writer = ParseJson(Ok(farsta, {"whoami", "--json"}));
  CommandResult refused =
      RunSamsyncServer({"token", "--data", server_data_, "--device-key", writer.value("deviceKey", "")});
  EXPECT_NE(refused.exit_code, 0) << "a writer gets no dashboard token";
  EXPECT_NE(refused.err.find("central"), std::string::npos) << refused.err;

  WaitForDashboard(bearer);

  std::string screenshots = BuildDir();
  ChildProcess browser(NodeBinary(),
                       {SAMSYNC_SOURCE_DIR "/tests/dashboard_browser.js", BuildDir() + "/web", http_, bearer,
                        screenshots},
                       {});
  CommandResult driven = browser.Wait(240000);
  ASSERT_EQ(driven.exit_code, 0) << "the browser test failed (Chromium missing? scripts/deps installs it):\n"
                                 << driven.err << driven.out;
  json page = ParseJson(driven.out);
  std::cout << "dashboard overview serve time over 20 requests: median " << page["serveMs"]["median"] << " ms, max "
            << page["serveMs"]["max"] << " ms (server-side median " << page["serveMs"]["serverMedian"]
            << " ms); screenshots in " << screenshots << std::endl;

  for (const auto& [path, status] : page["unauthorised"].items()) EXPECT_EQ(status, 401) << path;
  EXPECT_EQ(page["wrongToken"], 401);
  EXPECT_EQ(page["bearer"], 200);
  EXPECT_EQ(page["overviewStatus"], 200);
  EXPECT_EQ(page["districtStatus"], 200);
  EXPECT_EQ(page["parityStatus"], 200);
  EXPECT_EQ(page["pageErrors"], json::array()) << "no script errors (the chart library loaded from the server)";
  EXPECT_LT(page["serveMs"]["median"].get<double>(), 100.0);

  // The overview shows exactly the JSON report of its term.
  std::string term = page["term"];
  CommandResult report = RunSamsyncServer({"report", "--data", server_data_, "--term", term, "--format", "json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  json expected = ParseJson(report.out);
  std::map<std::string, json> rows;
  for (const json& row : expected["districts"]) rows[row["district"]] = row;
  ASSERT_EQ(page["overview"].size(), Districts().size() + 1) << "every district and the city";
  size_t compared = 0, suppressed = 0, stale = 0, met = 0;
  for (const json& shown : page["overview"]) {
    std::string district = shown["district"];
    bool city = district == "Hela staden";
    const json& indicators = city ? expected["citywide"]["indicators"] : rows[district]["indicators"];
    ASSERT_TRUE(indicators.is_array()) << district;
    ASSERT_EQ(shown["cells"].size(), 13u) << district;
    for (size_t i = 0; i < 13; ++i) {
      const json& cell = shown["cells"][i];
      const json& want = indicators[i];
      SCOPED_TRACE(district + " " + want["key"].get<std::string>());
      EXPECT_EQ(cell["key"], want["key"]);
      EXPECT_EQ(cell["status"], want["status"]);
      if (want["status"] == "stale") {
        EXPECT_EQ(cell["text"], "inaktuell");
        ++stale;
      } else {
        EXPECT_EQ(cell["text"], want["text"]);
        if (want["status"] == "suppressed") {
          EXPECT_EQ(cell["text"], "<5");
          ++suppressed;
        }
        if (want["status"] == "met") ++met;
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 15u * 13u);
  EXPECT_GT(suppressed, 0u);
  EXPECT_EQ(stale, 11u * 13u) << "the 11 districts that never synced are stale, not zero";
  EXPECT_GT(met, 0u);

  // Farsta's page: its column for the overview's term is the JSON report's row.
  ASSERT_EQ(page["district"].size(), 13u);
  EXPECT_GT(page["districtCharts"].get<int>(), 3) << "charts drawn by Chart.js";
  EXPECT_EQ(page["districtCanvases"], page["districtCharts"]);
  for (size_t i = 0; i < 13; ++i) {
    const json& want = rows["Farsta"]["indicators"][i];
    EXPECT_EQ(page["district"][i]["key"], want["key"]);
    bool found = false;
    for (const json& cell : page["district"][i]["cells"]) {
      if (cell["term"] != term) continue;
      found = true;
      EXPECT_EQ(cell["status"], want["status"]) << want["key"];
      EXPECT_EQ(cell["text"], want["status"] == "stale" ? json("inaktuell") : want["text"]) << want["key"];
    }
    EXPECT_TRUE(found) << want["key"];
  }
  EXPECT_EQ(page["parityRows"], Districts().size() + 1);

  // Swedish by default, English on request (kept), and back.
  EXPECT_EQ(page["title"], "Uppföljning, hela staden " + term);
  EXPECT_EQ(page["english"]["title"], "Citywide follow-up " + term);
  EXPECT_EQ(page["english"]["firstHeader"], "District");
  EXPECT_EQ(page["englishKept"], "District");
  EXPECT_EQ(page["swedish"], "Stadsdel");
  EXPECT_TRUE(std::filesystem::file_size(screenshots + "/dashboard-overview.png") > 10000);
  EXPECT_TRUE(std::filesystem::exists(screenshots + "/dashboard-district.png"));

  // A central entry's token stops working once the entry is revoked; syncing goes on.
  json gone = ParseJson(Ok(revoked, {"whoami", "--json"}));
  CommandResult issued = RunSamsyncServer({"token", "--data", server_data_, "--device-key", gone.value("deviceKey", "")});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  std::string revoked_token = issued.out.substr(0, issued.out.find('\n'));
  httplib::Client client(http_);
  auto before = client.Get("/api/report.json", {{"Authorization", "Bearer " + revoked_token}});
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200);
  EXPECT_EQ(ParseJson(before->body)["term"], term);
  CommandResult revoke =
      RunSamsync({"roster", "revoke", "--city", City(), "--device-key", gone.value("deviceKey", "")}, admin_);
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto after = client.Get("/api/report.json", {{"Authorization", "Bearer " + revoked_token}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 401);
  auto still = client.Get("/", {{"Authorization", "Bearer " + bearer}});
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
  Ok(farsta, {"roster", "import", Roster()});
  Sync(farsta);

  // New figures reach the dashboard without a restart: Farsta's data changes, and once
  // the background rebuild has taken the sync in, its JSON is the report's again.
  Ok(farsta, {"demo-data", "--scale", "0.7", "--seed", "9", "--today", "2016-11-15"});
  Sync(farsta);
  WaitForDashboard(bearer);
  auto fresh = client.Get("/api/report.json?term=" + term, {{"Authorization", "Bearer " + bearer}});
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->status, 200);
  CommandResult now = RunSamsyncServer({"report", "--data", server_data_, "--term", term, "--format", "json"});
  ASSERT_EQ(now.exit_code, 0) << now.err;
  json shown_rows = ParseJson(fresh->body)["districts"], report_rows = ParseJson(now.out)["districts"];
  ASSERT_EQ(shown_rows.size(), report_rows.size());
  bool farsta_changed = false;
  for (size_t i = 0; i < shown_rows.size(); ++i) {
    EXPECT_EQ(shown_rows[i]["indicators"], report_rows[i]["indicators"]) << report_rows[i]["district"];
    if (report_rows[i]["district"] == "Farsta") farsta_changed = report_rows[i] != rows["Farsta"];
  }
  EXPECT_TRUE(farsta_changed) << "the second demo district gave Farsta other figures";
}

TEST(DashboardCliHelpTest, RefusesAnAddressOffTheLoopback) {
  TempDir dir;
  CommandResult r = RunSamsyncServer({"run", "--data", dir.Sub("none"), "--http", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("loopback"), std::string::npos) << r.err;
  CommandResult help = RunSamsyncServer({"run", "--help"});
  EXPECT_NE(help.out.find("--http"), std::string::npos);
  EXPECT_NE(help.out.find("--http-allow-remote"), std::string::npos);
}

}  // namespace
}  // namespace samsync
