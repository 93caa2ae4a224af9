// The signed history end to end: a city, a device enrolled in its roster, commits,
// `verify`, `log`, and tampering found in the real files.
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace samsync {
namespace {

using testing::CommandResult;
using testing::RawLmdb;
using testing::RunSamsync;
using testing::TempDir;

class HistoryCliTest : public ::testing::Test {
 protected:
  CommandResult Run(std::vector<std::string> args, const std::string& input = "") {
    return RunSamsync(args, env_, input);
  }
  std::string Ok(std::vector<std::string> args) {
    CommandResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
  nlohmann::json Json(std::vector<std::string> args) {
    args.push_back("--json");
    return nlohmann::json::parse(Ok(args));
  }

  TempDir dir_;
  std::vector<std::string> env_ = {"SAMSYNC_STORE=" + dir_.Sub("store"), "SAMSYNC_KEY_FILE=" + dir_.Sub("store.key")};
};

TEST_F(HistoryCliTest, AnEnrolledDeviceWritesAHistoryThatVerifies) {
  // The city's admin makes the city; the district's device makes its store.
  std::vector<std::string> admin = {"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")};
  ASSERT_EQ(RunSamsync({"city", "init", dir_.Sub("city"), "--kdf", "interactive"}, admin).exit_code, 0);
  Ok({"init", "--district", "Farsta"});
  nlohmann::json me = Json({"whoami"});
  std::string device_key = me["deviceKey"], transport_key = me["transportKey"];
  EXPECT_EQ(device_key.size(), 64u);
  CommandResult added = RunSamsync({"roster", "add", "--city", dir_.Sub("city"), "--device-key", device_key,
                                    "--transport-key", transport_key, "--district", "Farsta", "--role", "writer",
                                    "--label", "Farsta mottagning"},
                                   admin);
  ASSERT_EQ(added.exit_code, 0) << added.err;
  Ok({"roster", "import", dir_.Sub("city") + "/roster.latest"});

  std::string school = Ok({"add", "school", "--name", "Farstaskolan", "--principal", "municipal"});
  Ok({"update", school, "--name", "Farstaskolan F-9"});
  nlohmann::json verified = Json({"verify"});
  EXPECT_EQ(verified["ok"], true) << verified.dump();
  EXPECT_EQ(verified["commits"], 2);
  EXPECT_EQ(verified["authorsChecked"], true);
  EXPECT_EQ(verified["rosterVersion"], 2);

  std::string text = Ok({"verify"});
  EXPECT_NE(text.find("verify: ok"), std::string::npos);
  EXPECT_NE(text.find("roster version 2"), std::string::npos);

  // The log says who changed what from what to what.
  std::string log = Ok({"log", school});
  EXPECT_NE(log.find("Farsta mottagning (this device)"), std::string::npos) << log;
  EXPECT_NE(log.find("name: Farstaskolan → Farstaskolan F-9"), std::string::npos) << log;
  nlohmann::json entries = Json({"log"});
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1]["note"], "update school " + school);
  EXPECT_EQ(entries[1]["changes"][0]["fields"]["name"]["from"], "Farstaskolan");

  // An older roster never replaces a newer one.
  CommandResult rollback = Run({"roster", "import", dir_.Sub("city") + "/rosters/000001.roster"});
  EXPECT_EQ(rollback.exit_code, 2);
  EXPECT_NE(rollback.err.find("version"), std::string::npos) << rollback.err;

  // Revoked: the next commit is signed after the revocation, and verify names it.
  ASSERT_EQ(RunSamsync({"roster", "revoke", "--city", dir_.Sub("city"), "--device-key", device_key}, admin).exit_code, 0);
  Ok({"roster", "import", dir_.Sub("city") + "/roster.latest"});
  ::usleep(5000);
  Ok({"add", "school", "--name", "Efter återkallelsen", "--principal", "independent"});
  CommandResult after = Run({"verify"});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_NE(after.out.find("verify: FAILED: commit "), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("seq 3)"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("revoked"), std::string::npos) << after.out;
}

TEST_F(HistoryCliTest, AByteChangedOnDiskFailsVerifyNamingTheCommit) {
  Ok({"init", "--district", "Bromma"});
  for (const char* name : {"Ett", "Två", "Tre"}) Ok({"add", "school", "--name", name, "--principal", "municipal"});
  EXPECT_EQ(Run({"verify"}).exit_code, 0);
  std::string key(12, '\0');
  key[3] = 1;   // device number 1
  key[11] = 2;  // seq 2
  RawLmdb(dir_.Sub("store")).EditValue("commits", key, [](std::string& v) { v[40] ^= 0x10; });
  CommandResult r = Run({"verify"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("seq 2 fails authentication"), std::string::npos) << r.out;
}

TEST_F(HistoryCliTest, ThePersonAccessLogRecordsLookups) {
  Ok({"init", "--district", "Bromma"});
  std::string child = Ok({"person", "add", "--personnummer", "20080215-1233", "--name", "Anna"});
  Ok({"person", "show", child});
  nlohmann::json log = Json({"person", "log"});
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["action"], "added");
  EXPECT_EQ(log[1]["action"], "lookedUp");
  EXPECT_EQ(log[1]["childRef"], child);
  // The access log names the child by reference only.
  EXPECT_EQ(log.dump().find("Anna"), std::string::npos);
  EXPECT_EQ(log.dump().find("20080215"), std::string::npos);
}

}  // namespace
}  // namespace samsync
