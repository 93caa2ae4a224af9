// Backups and restores of a district machine and of the sync server, passphrase
// changes and erasure, through the real `samsync` and `samsync-server` binaries, with
// a real server on the loopback.
#include <fstream>

#include "test_support.h"

namespace samsync {
namespace {

using testing::ChildProcess;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::ParseJsonOrFail;
using testing::RunSamsync;
using testing::RunSamsyncServer;
using testing::SyncServerProcess;
using testing::TempDir;
using testing::TestCity;

namespace fs = std::filesystem;

std::string StoreOf(const TestCity::Machine& m) { return m.env.at(0).substr(std::string("SAMSYNC_STORE=").size()); }

void AddSchool(const TestCity& city, const TestCity::Machine& m, const std::string& name) {
  CommandResult r = city.Run(m, {"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

nlohmann::json Sync(const TestCity& city, const TestCity::Machine& m, const std::vector<std::string>& args) {
  std::vector<std::string> full = args;
  full.push_back("--json");
  CommandResult r = city.Run(m, full);
  EXPECT_EQ(r.exit_code, 0) << m.name << ": " << r.out << r.err;
  return ParseJsonOrFail(r.out);
}

std::vector<std::string> SyncWith(const SyncServerProcess& server) {
  return {"sync", "--server", server.endpoint(), "--server-key", server.key()};
}

TEST(BackupCliTest, ARestoredDistrictMachineGetsBackFromTheServerWhatItSyncedAfterTheBackup) {
  TestCity city;
  TempDir out;
  TestCity::Machine a = city.Enrol("farsta-1", "Farsta");
  TestCity::Machine colleague = city.Enrol("farsta-2", "Farsta");
  city.InitServer();
  city.StartServer();
  ASSERT_TRUE(city.server().ok());
  AddSchool(city, a, "Farsta skola 1");
  AddSchool(city, a, "Farsta skola 2");
  Sync(city, a, city.SyncArgs());

  nlohmann::json backup = city.Json(a, {"backup", out.Sub("farsta.backup")});
  EXPECT_EQ(backup["file"], out.Sub("farsta.backup"));
  EXPECT_EQ(backup["bytes"].get<uint64_t>(), fs::file_size(out.Sub("farsta.backup")));
  ExpectOneLineError(city.Run(a, {"backup", out.Sub("farsta.backup")}), 2, "never overwritten");

  for (int i = 3; i <= 5; ++i) AddSchool(city, a, "Farsta skola " + std::to_string(i));
  Sync(city, a, city.SyncArgs());
  nlohmann::json before = city.Json(a, {"status"});
  ASSERT_EQ(before["records"], 5);

  // The machine loses its store.
  fs::remove_all(StoreOf(a));
  ExpectOneLineError(city.Run(a, {"info"}), 3, "no store");

  ExpectOneLineError(city.Run(a, {"restore", out.Sub("missing.backup")}), 3, "no backup file");
  std::ofstream(out.Sub("not.backup")) << "this is not a backup\n";
  ExpectOneLineError(city.Run(a, {"restore", out.Sub("not.backup")}), 2, "is not a samsync backup");
  EXPECT_FALSE(fs::exists(StoreOf(a)));

  CommandResult restored = city.Run(a, {"restore", out.Sub("farsta.backup")});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_NE(restored.out.find("run samsync sync before working on it"), std::string::npos) << restored.out;
  ExpectOneLineError(city.Run(a, {"restore", out.Sub("farsta.backup")}), 2, "already exists");
  CommandResult verified = city.Run(a, {"verify"});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(city.Json(a, {"status"})["records"], 2);

  // The sync brings back the three schools it had pushed after the backup.
  nlohmann::json resync = Sync(city, a, city.SyncArgs());
  EXPECT_EQ(resync["pulled"], 3) << resync.dump();
  nlohmann::json after = city.Json(a, {"status"});
  EXPECT_EQ(after["records"], 5);
  EXPECT_EQ(after["stateHash"], before["stateHash"]);
  Sync(city, colleague, city.SyncArgs());
  EXPECT_EQ(city.Json(colleague, {"status"})["stateHash"], before["stateHash"]) << "another machine of the district";
  // It carries on its own chain where it left off: its next commit is accepted.
  AddSchool(city, a, "Farsta skola 6");
  nlohmann::json next = Sync(city, a, city.SyncArgs());
  EXPECT_EQ(next["pushed"], 1) << next.dump();
  EXPECT_EQ(next["rejected"], 0) << next.dump();
  EXPECT_EQ(city.ServerVerify(), "");
}

TEST(BackupCliTest, AServerBackupTakenWhileADistrictSyncsRestoresAndServesAndAnOlderOneIsCaughtByTheWitnesses) {
  TestCity city;
  TempDir out;
  TestCity::Machine farsta = city.Enrol("farsta", "Farsta");
  TestCity::Machine bromma = city.Enrol("bromma", "Bromma");
  city.InitServer();
  city.StartServer();
  ASSERT_TRUE(city.server().ok());
  AddSchool(city, farsta, "Farsta skola 0");
  Sync(city, farsta, city.SyncArgs());
  AddSchool(city, bromma, "Bromma skola 0");
  Sync(city, bromma, city.SyncArgs());
  for (int i = 1; i <= 40; ++i) AddSchool(city, farsta, "Farsta skola " + std::to_string(i));

  // A backup while Farsta pushes its 40 commits.
  std::vector<std::string> sync_env = farsta.env;
  std::vector<std::string> sync_args = city.SyncArgs();
  sync_args.push_back("--json");
  ChildProcess syncing(SAMSYNC_BINARY, sync_args, sync_env);
  CommandResult backup =
      RunSamsyncServer({"backup", out.Sub("server.backup"), "--data", city.server_data(), "--json"});
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  nlohmann::json taken = ParseJsonOrFail(backup.out);
  EXPECT_GE(taken["logSizeAtLeast"].get<int>(), 2);
  CommandResult synced = syncing.Wait(60000);
  ASSERT_EQ(synced.exit_code, 0) << synced.err;
  EXPECT_EQ(ParseJsonOrFail(synced.out)["pushed"], 40);
  ExpectOneLineError(RunSamsyncServer({"backup", out.Sub("server.backup"), "--data", city.server_data()}), 2,
                     "never overwritten");
  city.StopServer();

  // Restored into a new data folder, with the server's key file.
  std::string key = city.server_data() + ".key";
  std::string data = out.Sub("restored");
  ExpectOneLineError(RunSamsyncServer({"restore", out.Sub("server.backup"), "--data", city.server_data(),
                                       "--key-file", key}),
                     2, "already exists");
  ExpectOneLineError(RunSamsyncServer({"restore", out.Sub("server.backup"), "--data", data}), 3, "key file");
  EXPECT_FALSE(fs::exists(data));
  CommandResult restored =
      RunSamsyncServer({"restore", out.Sub("server.backup"), "--data", data, "--key-file", key, "--json"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  uint64_t restored_log = ParseJsonOrFail(restored.out)["logSize"].get<uint64_t>();
  EXPECT_GE(restored_log, 2u);
  EXPECT_LE(restored_log, 42u);
  CommandResult verified = RunSamsyncServer({"verify", "--data", data, "--key-file", key});
  ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(verified.out.rfind("verify: ok", 0), 0u) << verified.out;

  // It serves: Farsta gives back what the backup missed, in the order it first did,
  // so the log regrows to the one both districts cosigned, and both witnesses accept it.
  {
    SyncServerProcess server(data, {"--key-file", key});
    ASSERT_TRUE(server.ok());
    nlohmann::json again = Sync(city, farsta, SyncWith(server));
    EXPECT_EQ(again["pushed"].get<uint64_t>(), 42 - restored_log) << again.dump();
    EXPECT_EQ(again["checkpoint"]["size"], 42) << again.dump();
    nlohmann::json b = Sync(city, bromma, SyncWith(server));
    EXPECT_EQ(b["checkpoint"]["size"], 42) << b.dump();
    CommandResult stopped = server.Stop();
    EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  }
  CommandResult status = RunSamsyncServer({"status", "--data", data, "--key-file", key, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(ParseJsonOrFail(status.out)["records"], 42);

  // A backup older than what the districts have since cosigned: the witness that saw
  // the longer log calls the restored one inconsistent (and cosigns nothing).
  std::string older = out.Sub("older.backup");
  CommandResult second = RunSamsyncServer({"backup", older, "--data", data, "--key-file", key});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  {
    SyncServerProcess server(data, {"--key-file", key});
    ASSERT_TRUE(server.ok());
    AddSchool(city, farsta, "Farsta efter");
    EXPECT_EQ(Sync(city, farsta, SyncWith(server))["checkpoint"]["size"], 43);
    AddSchool(city, bromma, "Bromma efter");
    EXPECT_EQ(Sync(city, bromma, SyncWith(server))["checkpoint"]["size"], 44);
    server.Stop();
  }
  std::string data2 = out.Sub("restored-older");
  CommandResult restored2 = RunSamsyncServer({"restore", older, "--data", data2, "--key-file", key});
  ASSERT_EQ(restored2.exit_code, 0) << restored2.err;
  SyncServerProcess server(data2, {"--key-file", key});
  ASSERT_TRUE(server.ok());
  CommandResult caught = city.Run(bromma, SyncWith(server));
  EXPECT_EQ(caught.exit_code, 1) << caught.out << caught.err;
  EXPECT_NE(caught.err.find("the server's history is inconsistent with what this machine saw"), std::string::npos)
      << caught.err;
}

TEST(BackupCliTest, PasswdChangesThePassphraseAndFailsInOneLine) {
  TempDir dir;
  std::string store = dir.Sub("store");
  std::vector<std::string> old_env = {"SAMSYNC_STORE=" + store, "SAMSYNC_PASSPHRASE=gammalt lösenord"};
  ASSERT_EQ(RunSamsync({"init", "--district", "Farsta"}, old_env).exit_code, 0);
  ASSERT_EQ(RunSamsync({"add", "school", "--name", "Ett", "--principal", "municipal", "--forms", "compulsory"}, old_env)
                .exit_code,
            0);
  std::vector<std::string> wrong = {"SAMSYNC_STORE=" + store, "SAMSYNC_PASSPHRASE=fel lösenord",
                                    "SAMSYNC_NEW_PASSPHRASE=nytt lösenord"};
  ExpectOneLineError(RunSamsync({"passwd"}, wrong), 2, "wrong passphrase");
  std::vector<std::string> short_new = old_env;
  short_new.push_back("SAMSYNC_NEW_PASSPHRASE=kort");
  ExpectOneLineError(RunSamsync({"passwd"}, short_new), 2, "at least 8 characters");
  // No terminal (the test's child has none) and no new passphrase: a clear refusal.
  ExpectOneLineError(RunSamsync({"passwd"}, old_env), 2, "no new passphrase");
  EXPECT_EQ(RunSamsync({"info"}, old_env).exit_code, 0) << "nothing was changed";

  std::vector<std::string> change = old_env;
  change.push_back("SAMSYNC_NEW_PASSPHRASE=nytt lösenord");
  CommandResult changed = RunSamsync({"passwd", "--json"}, change);
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_EQ(ParseJsonOrFail(changed.out)["keySource"], "passphrase");
  ExpectOneLineError(RunSamsync({"info"}, old_env), 2, "wrong passphrase");
  std::vector<std::string> new_env = {"SAMSYNC_STORE=" + store, "SAMSYNC_PASSPHRASE=nytt lösenord"};
  CommandResult listed = RunSamsync({"list", "school", "--json"}, new_env);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("Ett"), std::string::npos);
  EXPECT_EQ(RunSamsync({"verify"}, new_env).exit_code, 0);

  // A key-file store has no passphrase; it can move to a new key file.
  std::vector<std::string> keyed = {"SAMSYNC_STORE=" + dir.Sub("keyed"), "SAMSYNC_KEY_FILE=" + dir.Sub("keyed.key")};
  ASSERT_EQ(RunSamsync({"init", "--district", "Farsta"}, keyed).exit_code, 0);
  ExpectOneLineError(RunSamsync({"passwd"}, keyed), 2, "has no passphrase");
  CommandResult moved = RunSamsync({"passwd", "--new-key-file", dir.Sub("new.key")}, keyed);
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_TRUE(fs::exists(dir.Sub("new.key")));
  ExpectOneLineError(RunSamsync({"info"}, keyed), 2, "wrong passphrase");
  EXPECT_EQ(RunSamsync({"info"}, {"SAMSYNC_STORE=" + dir.Sub("keyed"), "SAMSYNC_KEY_FILE=" + dir.Sub("new.key")})
                .exit_code,
            0);
}

TEST(BackupCliTest, PersonForgetErasesTheChildAndShowSaysSo) {
  TempDir dir;
  std::vector<std::string> env = {"SAMSYNC_STORE=" + dir.Sub("store"), "SAMSYNC_KEY_FILE=" + dir.Sub("store.key")};
  ASSERT_EQ(RunSamsync({"init", "--district", "Farsta"}, env).exit_code, 0);
  CommandResult added = RunSamsync({"person", "add", "--personnummer", "20080215-1233", "--name", "Anna Hemligsson"}, env);
  ASSERT_EQ(added.exit_code, 0) << added.err;
  std::string ref = added.out.substr(0, added.out.find('\n'));
  CommandResult school =
      RunSamsync({"add", "school", "--name", "Ett", "--principal", "municipal", "--forms", "compulsory"}, env);
  ASSERT_EQ(school.exit_code, 0) << school.err;
  std::string school_id = school.out.substr(0, school.out.find('\n'));
  ASSERT_EQ(RunSamsync({"add", "concern", "--school-id", school_id, "--received-date", "2016-09-01", "--child-ref", ref},
                       env)
                .exit_code,
            0);

  ExpectOneLineError(RunSamsync({"person", "forget", "not-a-ref"}, env), 2, "child reference");
  ExpectOneLineError(RunSamsync({"person", "forget", "01M83V3D5CWHZ1P416TVF4CJY8"}, env), 3, "no child with reference");
  CommandResult forgot = RunSamsync({"person", "forget", ref, "--json"}, env);
  ASSERT_EQ(forgot.exit_code, 0) << forgot.err;
  nlohmann::json report = ParseJsonOrFail(forgot.out);
  EXPECT_EQ(report["childRef"], ref);
  EXPECT_EQ(report["alreadyErased"], false);
  CommandResult shown = RunSamsync({"person", "show", ref}, env);
  ExpectOneLineError(shown, 3, "was erased from this store's identity table");
  EXPECT_EQ(shown.err.find("Anna"), std::string::npos);
  EXPECT_EQ(shown.err.find("20080215"), std::string::npos);
  CommandResult concerns = RunSamsync({"list", "concern", "--json"}, env);
  ASSERT_EQ(concerns.exit_code, 0) << concerns.err;
  EXPECT_NE(concerns.out.find(ref), std::string::npos) << "the record keeps the reference";
  EXPECT_EQ(RunSamsync({"verify"}, env).exit_code, 0);
  std::string file;
  {
    std::ifstream in(dir.Sub("store") + "/data.mdb", std::ios::binary);
    file.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  EXPECT_EQ(file.find("Hemligsson"), std::string::npos);
}

TEST(BackupCliTest, EveryNewCommandHasHelp) {
  for (std::vector<std::string> args : {std::vector<std::string>{"backup", "--help"},
                                        {"restore", "--help"},
                                        {"passwd", "--help"},
                                        {"person", "forget", "--help"}}) {
    CommandResult r = RunSamsync(args, {});
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
  for (std::string command : {"backup", "restore"}) {
    CommandResult r = RunSamsyncServer({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_NE(r.out.find("FILE"), std::string::npos) << r.out;
  }
  ExpectOneLineError(RunSamsync({"backup"}, {}), 2, "FILE");
}

}  // namespace
}  // namespace samsync
