// `samsync-server export --postgres` into a real PostgreSQL: a throwaway cluster in a
// temporary folder (initdb, then pg_ctl start on a free port of 127.0.0.1, trust
// authentication, reachable from nowhere else), filled from a city-wide store that real
// syncs made. initdb refuses to run as root, so as root (CI) the cluster belongs to
// Debian's `postgres` user and its commands run through `runuser -u postgres`. The
// cluster is stopped by the pid in its postmaster.pid and its folder removed, whatever
// the test's outcome.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
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
using testing::SyncServerProcess;
using testing::TempDir;

json ParseJson(const std::string& text) {
  auto parsed = json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text.substr(0, 500);
  return parsed.is_discarded() ? json::object() : parsed;
}

std::string PostgresBin() {
  std::string best;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql")) {
    if (std::filesystem::exists(entry.path() / "bin" / "initdb") && entry.path().string() > best) {
      best = entry.path().string();
    }
  }
  return best + "/bin";
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), size);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A PostgreSQL cluster of its own, on 127.0.0.1:port(), superuser `samsync`.
class PostgresCluster {
 public:
  PostgresCluster() {
    char pattern[] = "/tmp/samsync-pg-XXXXXX";
    folder_ = ::mkdtemp(pattern);
    if (::geteuid() == 0) {
      const passwd* postgres = ::getpwnam("postgres");
      if (postgres == nullptr) {
        ADD_FAILURE() << "running as root needs Debian's postgres user (scripts/deps installs postgresql)";
        return;
      }
      EXPECT_EQ(::chown(folder_.c_str(), postgres->pw_uid, postgres->pw_gid), 0);
    }
    port_ = FreePort();
    CommandResult init = As({PostgresBin() + "/initdb", "-D", Data(), "-A", "trust", "-U", "samsync", "-E", "UTF8",
                             "--locale=C", "--no-sync"});
    if (init.exit_code != 0) {
      ADD_FAILURE() << "initdb: " << init.err << init.out;
      return;
    }
    CommandResult start = As({PostgresBin() + "/pg_ctl", "start", "-w", "-t", "30", "-D", Data(), "-l",
                              folder_ + "/log", "-o",
                              "-p " + std::to_string(port_) + " -c listen_addresses=127.0.0.1 -k " + folder_ +
                                  " -c fsync=off"});
    if (start.exit_code != 0) {
      ADD_FAILURE() << "pg_ctl start: " << start.err << start.out << Log();
      return;
    }
    std::ifstream pid_file(Data() + "/postmaster.pid");
    pid_file >> pid_;
    EXPECT_GT(pid_, 0);
  }

  // Stops the postmaster by its pid (SIGINT: fast shutdown) and removes the folder.
  ~PostgresCluster() {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (::kill(pid_, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (::kill(pid_, 0) == 0) ::kill(pid_, SIGKILL);
    }
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }

  bool ok() const { return pid_ > 0; }
  std::string Uri() const { return "postgresql://samsync@127.0.0.1:" + std::to_string(port_) + "/postgres"; }
  std::string Log() const {
    std::ifstream in(folder_ + "/log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // psql -At: rows separated by newlines, fields by '|'.
  std::string Query(const std::string& sql) {
    CommandResult r = ChildProcess("/usr/bin/psql", {"-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", Uri(), "-c", sql},
                                   {})
                          .Wait(30000);
    EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.err;
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }

 private:
  std::string Data() const { return folder_ + "/data"; }

  // Runs a PostgreSQL command, as the postgres user when we are root.
  CommandResult As(std::vector<std::string> args) {
    std::string binary = args[0];
    if (::geteuid() == 0) {
      args.insert(args.begin(), {"-u", "postgres", "--"});
      binary = "/usr/sbin/runuser";
    } else {
      args.erase(args.begin());
    }
    return ChildProcess(binary, args, {}).Wait(60000);
  }

  std::string folder_;
  int port_ = 0;
  int pid_ = 0;
};

TEST(ExportCliTest, ExportsTwiceIntoARealPostgresWithTheSameRows) {
  TempDir dir;
  std::vector<std::string> admin = {"SAMSYNC_KEY_FILE=" + dir.Sub("city.key")};
  std::string city = dir.Sub("city"), roster = city + "/roster.latest", server_data = dir.Sub("server");
  ASSERT_EQ(RunSamsync({"city", "init", city}, admin).exit_code, 0);
  std::vector<std::vector<std::string>> machines;
  for (const std::string district : {"Farsta", "Bromma"}) {
    std::string folder = dir.Sub("store-" + district);
    std::vector<std::string> env = {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"};
    ASSERT_EQ(RunSamsync({"init", "--district", district}, env).exit_code, 0);
    json me = ParseJson(RunSamsync({"whoami", "--json"}, env).out);
    ASSERT_EQ(RunSamsync({"roster", "add", "--city", city, "--device-key", me.value("deviceKey", ""),
                          "--transport-key", me.value("transportKey", ""), "--role", "writer", "--district", district,
                          "--label", district},
                         admin)
                  .exit_code,
              0);
    machines.push_back(env);
  }
  CommandResult made = RunSamsyncServer({"init", "--data", server_data, "--roster", roster, "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  json keys = ParseJson(made.out);
  ASSERT_EQ(RunSamsync({"roster", "add", "--city", city, "--device-key", keys.value("logKey", ""), "--transport-key",
                        keys.value("serverKey", ""), "--role", "server", "--label", "sync server"},
                       admin)
                .exit_code,
            0);
  ASSERT_EQ(RunSamsyncServer({"roster", "import", "--data", server_data, roster}).exit_code, 0);
  {
    SyncServerProcess server(server_data);
    ASSERT_TRUE(server.ok());
    int seed = 1;
    for (const auto& env : machines) {
      ASSERT_EQ(RunSamsync({"roster", "import", roster}, env).exit_code, 0);
      CommandResult demo = RunSamsync({"demo-data", "--scale", "0.5", "--seed", std::to_string(seed++), "--today",
                                       "2016-11-15"},
                                      env);
      ASSERT_EQ(demo.exit_code, 0) << demo.err;
      CommandResult synced = RunSamsync({"sync", "--server", server.endpoint(), "--server-key", server.key()}, env);
      ASSERT_EQ(synced.exit_code, 0) << synced.err;
    }
    server.Stop();
  }

  PostgresCluster pg;
  ASSERT_TRUE(pg.ok()) << pg.Log();
  CommandResult first = RunSamsyncServer({"export", "--data", server_data, "--postgres", pg.Uri(), "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err << pg.Log();
  json summary = ParseJson(first.out);
  EXPECT_EQ(summary["schema"], "samsync");
  EXPECT_EQ(summary["districts"], Districts().size());
  EXPECT_GT(summary["schools"].get<int>(), 5);
  EXPECT_GT(summary["indicatorValues"].get<int>(), 100);

  // Every table, as rows in a fixed order: what a second export must leave unchanged.
  auto everything = [&] {
    std::string out;
    for (const char* table : {"schema_version", "districts", "schools", "terms", "indicators", "indicator_status",
                              "indicator_values"}) {
      std::string columns = std::string(table) == "schema_version" ? "version::text" : "t::text";
      out += std::string(table) + ": " +
             pg.Query("SELECT count(*) || ' ' || coalesce(md5(string_agg(" + columns + ", '|' ORDER BY " + columns +
                      ")), '') FROM samsync." + table + " t") +
             "\n";
    }
    return out;
  };
  std::string after_first = everything();
  CommandResult second = RunSamsyncServer({"export", "--data", server_data, "--postgres", pg.Uri()});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("into schema samsync"), std::string::npos) << second.out;
  EXPECT_EQ(everything(), after_first) << "a second export leaves the same rows";
  std::cout << after_first;

  EXPECT_EQ(pg.Query("SELECT count(*) FROM samsync.districts"), std::to_string(Districts().size()));
  EXPECT_EQ(pg.Query("SELECT string_agg(DISTINCT district, ',' ORDER BY district) FROM samsync.schools"),
            "Bromma,Farsta");
  EXPECT_EQ(pg.Query("SELECT count(*) FROM samsync.schools WHERE principal NOT IN ('municipal', 'independent')"), "0");
  EXPECT_EQ(pg.Query("SELECT count(*) FROM samsync.indicators"), "13");
  EXPECT_EQ(pg.Query("SELECT max(version) FROM samsync.schema_version"), "1");

  // The statuses are those of the JSON report, for every district and the city.
  std::string term = pg.Query("SELECT max(term) FROM samsync.terms");
  CommandResult report = RunSamsyncServer({"report", "--data", server_data, "--term", term, "--format", "json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  json expected = ParseJson(report.out);
  std::map<std::string, std::string> want;
  for (const json& row : expected["districts"]) {
    if (row["indicators"][0]["values"].is_null()) continue;  // no records: not exported
    for (const json& i : row["indicators"]) want[row["district"].get<std::string>() + "|" + i["key"].get<std::string>()] = i["status"];
  }
  for (const json& i : expected["citywide"]["indicators"]) want["(citywide)|" + i["key"].get<std::string>()] = i["status"];
  std::map<std::string, std::string> got;
  std::istringstream rows(pg.Query("SELECT district || '|' || indicator, status FROM samsync.indicator_status WHERE term = '" +
                                   term + "'"));
  for (std::string line; std::getline(rows, line);) {
    size_t bar = line.rfind('|');
    got[line.substr(0, bar)] = line.substr(bar + 1);
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(want.size(), 3u * 13u);

  // Suppression: hidden figures are NULL and flagged, and no shown count is under 5.
  EXPECT_NE(pg.Query("SELECT count(*) FROM samsync.indicator_values WHERE suppressed"), "0");
  EXPECT_EQ(pg.Query("SELECT count(*) FROM samsync.indicator_values WHERE suppressed AND value IS NOT NULL"), "0");
  EXPECT_EQ(pg.Query("SELECT count(*) FROM samsync.indicator_values WHERE (measure LIKE '%numerator' OR measure LIKE "
                     "'%denominator') AND value < 5"),
            "0");
}

TEST(ExportCliTest, ErrorsAreOneLine) {
  TempDir dir;
  CommandResult r = RunSamsyncServer({"export", "--data", dir.Sub("none"), "--postgres",
                                      "postgresql://samsync@127.0.0.1:1/postgres"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  CommandResult schema = RunSamsyncServer({"export", "--data", dir.Sub("none"), "--postgres", "x", "--schema", "a;b"});
  EXPECT_EQ(schema.exit_code, 2);
  EXPECT_NE(schema.err.find("--schema"), std::string::npos) << schema.err;
  CommandResult help = RunSamsyncServer({"export", "--help"});
  EXPECT_NE(help.out.find("--postgres"), std::string::npos);
}

}  // namespace
}  // namespace samsync
