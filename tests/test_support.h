// Helpers shared by the tests: temporary folders, stores that open fast, record
// builders that keep test data readable.
#ifndef SAMSYNC_TESTS_TEST_SUPPORT_H_
#define SAMSYNC_TESTS_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <lmdb.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "samsync/clock.h"
#include "samsync/record.h"
#include "samsync/record_fields.h"
#include "samsync/store.h"

namespace samsync::testing {

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A store in its own temp folder, opened with a key file (no Argon2 cost), for
// district `district`, on a fixed clock at 2016-11-15 12:00 UTC.
class TestStore {
 public:
  explicit TestStore(std::string district = "Skarpnäck");
  Store& store() { return *store_; }
  Store* operator->() { return store_.get(); }
  FixedClock& clock() { return clock_; }
  const std::string& dir() const { return dir_; }
  const std::string& key_file() const { return key_file_; }
  // Closes and opens the store again (same key file).
  void Reopen();
  void Close() { store_.reset(); }

 private:
  TempDir temp_;
  std::string dir_, key_file_;
  FixedClock clock_;
  std::unique_ptr<Store> store_;
};

// Builds a record from field=value pairs in their text form:
//   MakeRecord(RecordType::kSchool, {{"name", "Skolan"}, {"principal", "municipal"}})
// Fails the current test on a bad field.
Record MakeRecord(RecordType type, const std::vector<std::pair<std::string, std::string>>& fields);

// Applies one Put and returns the new id; fails the test on error.
RecordId PutOrDie(Store& store, Record record);

// Adds a municipal (or independent) school named `name` and returns its id.
RecordId AddSchool(Store& store, std::string name, bool independent = false);

// Adds a child with a valid made-up personnummer derived from `n` and returns its ref.
ChildRef AddChild(Store& store, int n);

// A valid personnummer (Luhn digit computed) born on `yyyymmdd` with serial `serial`.
std::string MakePersonnummer(std::string_view yyyymmdd, int serial);

// Raw access to the LMDB file beneath a store, the way an attacker with the disk would.
class RawLmdb {
 public:
  explicit RawLmdb(const std::string& dir) {
    EXPECT_EQ(mdb_env_create(&env_), 0);
    mdb_env_set_maxdbs(env_, 16);
    EXPECT_EQ(mdb_env_open(env_, dir.c_str(), 0, 0600), 0);
  }
  ~RawLmdb() { mdb_env_close(env_); }

  // Calls fn(table, key, value) for every entry of every table.
  void ForEach(const std::function<void(const std::string&, std::string_view, std::string_view)>& fn) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), 0);
    for (const char* table : {"meta", "records", "by_date", "by_school", "persons", "person_log", "commits", "heads",
                              "commit_ids", "record_log", "clocks", "conflicts", "pending"}) {
      MDB_dbi dbi = 0;
      ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0) << table;
      MDB_cursor* cursor = nullptr;
      ASSERT_EQ(mdb_cursor_open(txn, dbi, &cursor), 0);
      MDB_val k, v;
      for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
        fn(table, {static_cast<const char*>(k.mv_data), k.mv_size}, {static_cast<const char*>(v.mv_data), v.mv_size});
      }
      mdb_cursor_close(cursor);
    }
    mdb_txn_abort(txn);
  }

  // Applies `edit` to the stored value of the first entry of `table` whose key matches.
  void EditValue(const char* table, std::string_view key, const std::function<void(std::string&)>& edit) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
    std::string value(static_cast<const char*>(v.mv_data), v.mv_size);
    edit(value);
    MDB_val nv{value.size(), value.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }

  std::string Get(const char* table, std::string_view key) {
    std::string out;
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi = 0;
    EXPECT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    if (mdb_get(txn, dbi, &k, &v) == 0) out.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    return out;
  }

  // Deletes the entry of `table` under `key`.
  void Delete(const char* table, std::string_view key) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    ASSERT_EQ(mdb_del(txn, dbi, &k, nullptr), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }

 private:
  MDB_env* env_ = nullptr;
};


struct CommandResult {
  int exit_code = -1;  // -1 when the process did not exit by itself
  std::string out, err;
  int signal = 0;      // the signal that ended it, if one did
};

// Runs the real `samsync` binary with `args`, the environment `env` ("NAME=value",
// added to a clean one holding only PATH and HOME) and `input` on stdin. Waits for it.
CommandResult RunSamsync(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         const std::string& input = "");

// A child process running a real binary (`samsync`, `samsync-server`) with the
// environment `env` added to a clean one (PATH and HOME only), `input` on stdin and
// its stdout and stderr in files. It is its own session (no controlling terminal). A
// child still running when this is destroyed is killed (SIGKILL, by its pid) and
// reaped, and it is killed by the kernel if the test process dies first
// (PR_SET_PDEATHSIG): a test never leaves processes behind.
class ChildProcess {
 public:
  ChildProcess(const std::string& binary, const std::vector<std::string>& args, const std::vector<std::string>& env,
               const std::string& input = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  // True until the process has ended (and been reaped).
  bool Running();
  // Sends `signal` to the process (by its pid) if it is still running.
  void Signal(int signal);
  // Waits for the process to end (killing it after `timeout_ms`, if it is not
  // negative); its exit code or signal, and all it wrote.
  CommandResult Wait(int timeout_ms = -1);
  // What it has written so far.
  std::string Out() const;
  std::string Err() const;

 private:
  void Reaped(int status);

  TempDir io_;
  int pid_ = -1;
  bool done_ = false;
  CommandResult result_;
};

// Runs the real `samsync-server` binary as RunSamsync runs `samsync`.
CommandResult RunSamsyncServer(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// `samsync-server run --data DATA --listen tcp://127.0.0.1:0`: started, and waited for
// (up to 10 s) until it prints where it listens and its key. Stopped with SIGTERM (then
// SIGKILL, after 5 s) on destruction. ok() is false (and a test failure recorded, with
// what the server wrote) when it did not start.
class SyncServerProcess {
 public:
  explicit SyncServerProcess(const std::string& data, const std::vector<std::string>& extra_args = {});
  ~SyncServerProcess() {
    if (process_.Running()) Stop();
  }
  SyncServerProcess(const SyncServerProcess&) = delete;
  SyncServerProcess& operator=(const SyncServerProcess&) = delete;
  bool ok() const { return !endpoint_.empty() && !key_.empty(); }
  int pid() const { return process_.pid(); }
  const std::string& endpoint() const { return endpoint_; }  // tcp://127.0.0.1:PORT
  const std::string& key() const { return key_; }            // its public key, hex
  bool Running() { return process_.Running(); }
  // Kills it at once (SIGKILL): no clean shutdown.
  void Kill() {
    process_.Signal(SIGKILL);
    process_.Wait();
  }
  // SIGTERM, and waits (SIGKILL after 5 s); its exit code, stdout and log.
  CommandResult Stop();
  // Its log (stderr) so far: one line per sync session.
  std::string Log() const { return process_.Err(); }

 private:
  ChildProcess process_;
  std::string endpoint_, key_;
};

// Bad input: one line on stderr ("samsync: …") naming what is wrong (`contains`), the
// exit code `exit_code`, and nothing on stdout.
void ExpectOneLineError(const CommandResult& r, int exit_code, const std::string& contains);

}  // namespace samsync::testing

#endif  // SAMSYNC_TESTS_TEST_SUPPORT_H_

// A city for end-to-end tests of the sync server (tests/torture_cli_test.cc,
// tests/network_cli_test.cc): its root key and roster in a temp folder, machines
// (district stores with key files) enrolled as writers of a district or as the central
// office, and the server's data folder, initialised and enrolled as the admin does it.
#ifndef SAMSYNC_TESTS_TEST_CITY_H_
#define SAMSYNC_TESTS_TEST_CITY_H_

#include <map>
#include <nlohmann/json.hpp>

#include "samsync/history.h"

namespace samsync::testing {

class TestCity {
 public:
  struct Machine {
    std::string name, district, role, device_key, transport_key;
    std::vector<std::string> env;  // SAMSYNC_STORE and SAMSYNC_KEY_FILE
  };

  TestCity();  // `samsync city init`; a test failure if it fails
  ~TestCity();
  TestCity(const TestCity&) = delete;
  TestCity& operator=(const TestCity&) = delete;

  // A new store for `district`, enrolled in the roster with `role` ("writer" of the
  // district, or "central": a city-wide store, `district` unused). Call InitServer once
  // every machine is enrolled.
  Machine Enrol(const std::string& name, const std::string& district, const std::string& role = "writer");
  // The server: created from the roster, enrolled in it, and the final roster
  // installed on the server and on every enrolled machine.
  void InitServer();
  // Starts the server on a new ephemeral port (ok() false and a test failure if not).
  void StartServer();
  // SIGTERM, expecting a clean exit; SIGKILL: no clean shutdown. Both keep its log.
  void StopServer();
  void KillServer();
  SyncServerProcess& server() { return *server_; }
  // The server's public key (the same across restarts: it is kept in its data).
  const std::string& server_key() const { return server_key_; }
  bool server_running() { return server_ && server_->Running(); }
  // The port of the running server's endpoint.
  uint16_t server_port() const;
  const std::string& server_data() const { return server_data_; }
  // Every server's log (stderr) so far, the running one's included.
  std::string Logs() const;

  CommandResult Run(const Machine& m, const std::vector<std::string>& args) const { return RunSamsync(args, m.env); }
  // `args` + --json, expected to succeed with nothing on stderr; its output parsed.
  nlohmann::json Json(const Machine& m, std::vector<std::string> args) const;
  // `samsync-server status --json`.
  nlohmann::json ServerStatus() const;
  // The server's store, opened read-only beside the running server: its heads.
  VersionVector ServerHeads() const;
  // `samsync-server verify`: "" when it passes, else what it said.
  std::string ServerVerify() const;
  // sync's arguments for the running server, or for `endpoint` (a proxy in front of it;
  // the server must have been started once).
  std::vector<std::string> SyncArgs(const std::string& endpoint = "") const;

 private:
  TempDir dir_;
  std::vector<std::string> admin_;
  std::string server_data_;
  std::vector<Machine> machines_;
  std::unique_ptr<SyncServerProcess> server_;
  std::string server_key_;
  std::string logs_;
};

// Parses `text` as JSON; a test failure (and an empty object) when it is not.
nlohmann::json ParseJsonOrFail(const std::string& text);

}  // namespace samsync::testing

#endif  // SAMSYNC_TESTS_TEST_CITY_H_
