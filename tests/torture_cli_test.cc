// Kill -9 torture (issue 9): the real `samsync` writers and syncs and the real
// `samsync-server`, SIGKILLed at random moments: a seeded random delay over the span
// such a run takes now (mid-push, mid-pull, mid-witness), or within 4 ms of the moment
// the victim's LMDB file is first written (inside a commit, before its meta page is
// durable). After each kill the victim's store (or the server's) must verify, and
// everything that was acknowledged must still be there: a record whose `samsync add`,
// `update` or `import` exited 0 (acknowledged to the user), and every commit a sync
// that exited 0 held (acknowledged to the client by the server, which answers a push
// only once it is durable). Every few rounds, and at the end, every machine syncs and
// the city converges: a district's machines hold the same state hash and the same
// version vector as the server's view of the district, the central office's city-wide
// store hashes as the server's, and every sync's witness step passed.
//
// Sizes: SAMSYNC_TORTURE_KILLS (default 120, what CI runs), SAMSYNC_TORTURE_SEED
// (default: from the clock; printed first, so that a failure can be replayed),
// SAMSYNC_TORTURE_CONVERGE_EVERY (default 10 rounds). scripts/torture runs thousands.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "samsync/history.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::ChildProcess;
using testing::CommandResult;
using testing::ParseJsonOrFail;
using testing::TempDir;
using testing::TestCity;
using Machine = TestCity::Machine;

// The modification time of `file` (zero when it is missing), in ns.
int64_t ModifiedNs(const std::string& file) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) return 0;
  return static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
}

// Waits until `file` is written after `before` (its mtime) or `process` ends (up to
// 10 s): the moment an LMDB commit has begun writing its pages.
void WaitForWrite(const std::string& file, int64_t before, ChildProcess& process) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ModifiedNs(file) == before && process.Running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoull(value, nullptr, 10) : fallback;
}

// What one writer machine was told was done, and what it may hold besides.
struct Acknowledged {
  // Record id → the names it may have here: the one its last acknowledged `add` or
  // `update` gave it, and those of killed updates after that (which may have committed).
  std::map<std::string, std::set<std::string>> names;
  // Names from acknowledged imports not yet seen in a listing (their ids are not printed
  // in text mode; a listing resolves them).
  std::set<std::string> imported;
  // The version vector of this machine's last sync that exited 0: the server holds it.
  VersionVector on_server;
};

class TortureCliTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- replay with SAMSYNC_TORTURE_SEED=" << seed_ << " ---\n--- server logs ---\n"
                << city_->Logs() << "--- end of the server logs ---" << std::endl;
    }
  }

  // Every school on `m` by id → name; a test failure if listing fails.
  std::map<std::string, std::string> Schools(const Machine& m) {
    std::map<std::string, std::string> schools;
    for (const auto& school : city_->Json(m, {"list", "school"})) {
      schools[school.value("id", "")] = school.value("name", "");
    }
    return schools;
  }

  // The store of `m` verifies, and holds every record acknowledged on `owners` with a
  // name it may have. Resolves acknowledged imports to their ids.
  void CheckReplica(const Machine& m, const std::vector<size_t>& owners, const std::string& when) {
    CommandResult verified = city_->Run(m, {"verify"});
    EXPECT_EQ(verified.exit_code, 0) << m.name << " does not verify " << when << ": " << verified.out << verified.err;
    std::map<std::string, std::string> schools = Schools(m);
    std::map<std::string, std::string> by_name;
    for (const auto& [id, name] : schools) by_name[name] = id;
    for (size_t owner : owners) {
      Acknowledged& acked = acked_[owner];
      for (const auto& [id, names] : acked.names) {
        auto it = schools.find(id);
        if (it == schools.end()) {
          ADD_FAILURE() << m.name << " lost the acknowledged record " << id << " of " << machines_[owner].name << " "
                        << when;
        } else {
          EXPECT_TRUE(names.count(it->second)) << m.name << ": record " << id << " is named '" << it->second
                                               << "', not an acknowledged name, " << when;
        }
      }
      for (auto it = acked.imported.begin(); it != acked.imported.end();) {
        auto found = by_name.find(*it);
        if (found == by_name.end()) {
          ADD_FAILURE() << m.name << " lost the acknowledged import of '" << *it << "' " << when;
          ++it;
        } else {
          acked.names[found->second] = {*it};
          it = acked.imported.erase(it);
        }
      }
    }
  }

  // The server's store verifies and holds every commit a sync that exited 0 held.
  void CheckServer(const std::string& when) {
    std::string failed = city_->ServerVerify();
    EXPECT_EQ(failed, "") << "the server's store does not verify " << when;
    VersionVector heads = city_->ServerHeads();
    for (size_t i = 0; i < machines_.size(); ++i) {
      for (const auto& [device, seq] : acked_[i].on_server) {
        auto it = heads.find(device);
        uint64_t held = it == heads.end() ? 0 : it->second;
        EXPECT_GE(held, seq) << "the server lost commits acknowledged to " << machines_[i].name << " (device "
                             << device.ToHex().substr(0, 8) << ") " << when;
      }
    }
  }

  // A sync that exited 0: its witness step passed (the log extends what this machine
  // saw before), and what it held is on the server.
  void SyncSucceeded(size_t i, const CommandResult& r) {
    nlohmann::json report = ParseJsonOrFail(r.out);
    EXPECT_EQ(report.value("rejected", -1), 0) << machines_[i].name << ": " << r.out;
    uint64_t size = report["checkpoint"].value("size", uint64_t{0});
    uint64_t previous = report["checkpoint"].value("previousSize", uint64_t{0});
    EXPECT_GE(size, previous) << machines_[i].name;
    EXPECT_GE(previous, seen_size_[i]) << machines_[i].name << ": the checkpoint it saw went backwards";
    seen_size_[i] = size;
    auto vector = ParseVersionVector(report.value("versionVector", ""));
    EXPECT_TRUE(vector.ok()) << r.out;
    if (vector.ok()) acked_[i].on_server = *vector;
    ++syncs_ok_;
  }

  // A sync that was not killed must have exited 0: a refusal or a witness failure (exit
  // 1: the server's log inconsistent with what the machine saw) is a failure.
  void ExpectSynced(size_t i, const CommandResult& r, const std::string& when) {
    if (r.exit_code == 0) {
      SyncSucceeded(i, r);
    } else {
      ADD_FAILURE() << machines_[i].name << " sync " << when << " exited " << r.exit_code << " (signal " << r.signal
                    << "): " << r.err;
    }
  }

  // Every machine syncs twice (the second round carries what others pushed in the
  // first); then the city has converged.
  void Converge(const std::string& when) {
    if (!city_->server_running()) city_->StartServer();
    for (size_t i = 0; i < machines_.size(); ++i) {  // a school each, unhurried: the writers' pace
      if (machines_[i].role != "writer") continue;
      std::string name = machines_[i].name + " skola " + std::to_string(++serial_);
      auto began = std::chrono::steady_clock::now();
      CommandResult r = city_->Run(machines_[i], {"add", "school", "--name", name, "--principal", "municipal",
                                                  "--forms", "compulsory"});
      Took(writer_us_, began);
      ASSERT_EQ(r.exit_code, 0) << machines_[i].name << ": " << r.err;
      acked_[i].names[r.out.substr(0, r.out.find('\n'))] = {name};
    }
    for (int round = 0; round < 2; ++round) {
      for (size_t i = 0; i < machines_.size(); ++i) {
        std::vector<std::string> args = city_->SyncArgs();
        args.insert(args.end(), {"--timeout", "20", "--json"});
        auto began = std::chrono::steady_clock::now();
        ExpectSynced(i, city_->Run(machines_[i], args), when);
        Took(sync_us_, began);
      }
    }
    nlohmann::json server = city_->ServerStatus();
    VersionVector heads = city_->ServerHeads();
    std::map<std::string, std::string> district_hash;
    for (size_t i = 0; i < machines_.size(); ++i) {
      const Machine& m = machines_[i];
      nlohmann::json status = city_->Json(m, {"status"});
      EXPECT_EQ(status.value("waiting", -1), 0) << m.name << " " << when;
      if (m.role == "central") {
        EXPECT_EQ(status["stateHash"], server["stateHash"]) << "the central office's city view differs from the server's "
                                                            << when;
        continue;
      }
      // The server's view of this district: the heads of the district's devices.
      VersionVector district;
      for (const Machine& colleague : machines_) {
        if (colleague.district != m.district || colleague.role != "writer") continue;
        auto key = Bytes32::FromHex(colleague.device_key);
        auto it = key.ok() ? heads.find(*key) : heads.end();
        if (it != heads.end()) district[it->first] = it->second;
      }
      EXPECT_EQ(status.value("versionVector", ""), FormatVersionVector(district))
          << m.name << " holds other commits than the server's view of " << m.district << " " << when;
      auto [it, first] = district_hash.emplace(m.district, status.value("stateHash", ""));
      EXPECT_TRUE(first || it->second == status.value("stateHash", ""))
          << m.name << " differs from its district colleague " << when;
      std::vector<size_t> owners;
      for (size_t j = 0; j < machines_.size(); ++j) {
        if (machines_[j].district == m.district && machines_[j].role == "writer") owners.push_back(j);
      }
      CheckReplica(m, owners, when);
    }
    CheckServer(when);
    ++convergences_;
  }

  // How long a run of each kind takes on this machine now (a moving average of runs
  // that were not killed, in µs): kills are drawn over a span of it, so that they land
  // in the work (the store opened, the commit, the exchange), not mostly in the
  // process start, whatever the machine's speed and load.
  void Took(double& average, std::chrono::steady_clock::time_point since) {
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - since).count();
    average = average == 0 ? us : 0.7 * average + 0.3 * us;
  }
  double writer_us_ = 0, sync_us_ = 0;

  std::unique_ptr<TestCity> city_ = std::make_unique<TestCity>();
  std::vector<Machine> machines_;
  std::vector<Acknowledged> acked_;
  std::vector<uint64_t> seen_size_;  // per machine, the checkpoint size of its last sync
  uint64_t seed_ = 0;
  uint64_t syncs_ok_ = 0, convergences_ = 0;
  uint64_t serial_ = 0;  // makes every name unique
};

TEST_F(TortureCliTest, KilledWritersSyncsAndServersLoseNothingAcknowledgedAndConverge) {
  const uint64_t kills = EnvNumber("SAMSYNC_TORTURE_KILLS", 120);
  const uint64_t converge_every = std::max<uint64_t>(1, EnvNumber("SAMSYNC_TORTURE_CONVERGE_EVERY", 10));
  seed_ = EnvNumber("SAMSYNC_TORTURE_SEED",
                    static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007);
  std::cerr << "torture: " << kills << " kills, seed " << seed_ << " (SAMSYNC_TORTURE_SEED=" << seed_
            << " replays it)" << std::endl;
  std::mt19937_64 random(seed_);
  auto uniform = [&random](uint64_t low, uint64_t high) {  // [low, high]
    return std::uniform_int_distribution<uint64_t>(low, high)(random);
  };

  // Two districts of two machines each, a third of one, and the central office.
  for (auto [name, district] : std::vector<std::pair<std::string, std::string>>{
           {"farsta-1", "Farsta"}, {"farsta-2", "Farsta"}, {"bromma-1", "Bromma"}, {"bromma-2", "Bromma"},
           {"rinkeby-1", "Rinkeby-Kista"}}) {
    machines_.push_back(city_->Enrol(name, district));
  }
  machines_.push_back(city_->Enrol("central", "", "central"));
  acked_.resize(machines_.size());
  seen_size_.resize(machines_.size());
  city_->InitServer();
  city_->StartServer();
  ASSERT_TRUE(city_->server().ok());
  std::vector<size_t> writers;
  for (size_t i = 0; i < machines_.size(); ++i) {
    if (machines_[i].role == "writer") writers.push_back(i);
  }
  TempDir files;
  uint64_t writer_kills = 0, sync_kills = 0, server_kills = 0, finished_first = 0;
  uint64_t adds_killed = 0, adds_committed_anyway = 0;  // killed adds whose record is there
  uint64_t commit_kills = 0, server_commit_kills = 0;    // kills aimed at a commit under way
  Converge("at the start");  // also measures how long a write and a sync take here
  ASSERT_FALSE(HasFailure());
  // A delay over `low` to `high` times a run of that kind, in µs. A write commits at
  // the end of its run (after the process start and opening the store), so its kills
  // are drawn late; a sync's work spans most of its run.
  auto kill_delay = [&uniform](double average_us, double low, double high) {
    return std::chrono::microseconds(
        uniform(static_cast<uint64_t>(low * average_us), static_cast<uint64_t>(high * average_us)));
  };

  auto started = std::chrono::steady_clock::now();
  for (uint64_t round = 1; writer_kills + sync_kills + server_kills < kills; ++round) {
    std::string when = "after round " + std::to_string(round) + " (seed " + std::to_string(seed_) + ")";
    uint64_t kind = uniform(0, 2);
    if (kind == 0) {
      // A writer: an add, an update of one of its own records, or an import of 1 to 40 rows.
      size_t w = writers[uniform(0, writers.size() - 1)];
      Acknowledged& acked = acked_[w];
      std::string name = machines_[w].name + " skola " + std::to_string(++serial_);
      std::vector<std::string> args;
      std::optional<std::string> updated;
      std::vector<std::string> imported;
      uint64_t op = uniform(0, 9);
      if (op < 3 && !acked.names.empty()) {
        auto it = acked.names.begin();
        std::advance(it, static_cast<long>(uniform(0, acked.names.size() - 1)));
        updated = it->first;
        args = {"update", it->first, "--name", name};
      } else if (op < 5) {
        std::string csv = files.Sub("import-" + std::to_string(serial_) + ".csv");
        std::ofstream out(csv);
        out << "name;principal;forms\n";
        for (uint64_t row = uniform(1, 40); row > 0; --row) {
          imported.push_back(name + "." + std::to_string(row));
          out << imported.back() << ";municipal;compulsory\n";
        }
        out.close();
        args = {"import", "school", csv};
      } else {
        args = {"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"};
      }
      // Half the kills at a moment of the run, half within 4 ms of the commit's first
      // page write (the store's data.mdb modified): between its pages and its meta page.
      bool at_commit = uniform(0, 1) == 1;
      std::string data = machines_[w].env[0].substr(std::string("SAMSYNC_STORE=").size()) + "/data.mdb";
      int64_t before = ModifiedNs(data);
      auto began = std::chrono::steady_clock::now();
      ChildProcess writer(SAMSYNC_BINARY, args, machines_[w].env);
      if (at_commit) {
        WaitForWrite(data, before, writer);
        std::this_thread::sleep_for(std::chrono::microseconds(uniform(0, 4000)));
      } else {
        std::this_thread::sleep_for(kill_delay(writer_us_, 0.5, 1.05));
      }
      writer.Signal(SIGKILL);
      CommandResult r = writer.Wait(30000);
      if (r.signal == SIGKILL) {
        ++writer_kills;
        commit_kills += at_commit;
        if (updated) acked.names[*updated].insert(name);  // it may have committed
        if (args[0] == "add") {
          ++adds_killed;
          for (const auto& [id, listed] : Schools(machines_[w])) adds_committed_anyway += listed == name;
        }
      } else {
        ++finished_first;
        if (args[0] != "import") Took(writer_us_, began);
        ASSERT_EQ(r.exit_code, 0) << machines_[w].name << " " << args[0] << ": " << r.err;
        if (updated) {
          acked.names[*updated] = {name};
        } else if (!imported.empty()) {
          acked.imported.insert(imported.begin(), imported.end());
        } else {
          std::string id = r.out.substr(0, r.out.find('\n'));
          acked.names[id] = {name};
        }
      }
      CheckReplica(machines_[w], {w}, when + ", " + args[0] + " on " + machines_[w].name);
    } else if (kind == 1) {
      // A sync, killed mid-whatever; the server serves on.
      size_t s = uniform(0, machines_.size() - 1);
      std::vector<std::string> args = city_->SyncArgs();
      args.insert(args.end(), {"--timeout", "20", "--json"});
      auto began = std::chrono::steady_clock::now();
      ChildProcess sync(SAMSYNC_BINARY, args, machines_[s].env);
      std::this_thread::sleep_for(kill_delay(sync_us_, 0.2, 1.0));
      sync.Signal(SIGKILL);
      CommandResult r = sync.Wait(30000);
      if (r.signal == SIGKILL) {
        ++sync_kills;
      } else {
        ++finished_first;
        Took(sync_us_, began);
        ExpectSynced(s, r, when);
      }
      ASSERT_TRUE(city_->server_running()) << "a client killed mid-sync brought the server down " << when;
      if (machines_[s].role == "writer") {
        // Only its own acknowledged records are sure to be here (a colleague's may not
        // have been pulled yet).
        CheckReplica(machines_[s], {s}, when + ", sync of " + machines_[s].name + " killed");
      } else {
        CommandResult verified = city_->Run(machines_[s], {"verify"});
        EXPECT_EQ(verified.exit_code, 0) << machines_[s].name << " " << when << ": " << verified.err;
      }
    } else {
      // The server, killed while one or two machines sync with it.
      size_t first = uniform(0, machines_.size() - 1), second = uniform(0, machines_.size() - 1);
      std::vector<size_t> syncing = {first};
      if (second != first && uniform(0, 1) == 1) syncing.push_back(second);
      std::vector<std::unique_ptr<ChildProcess>> syncs;
      std::vector<std::string> args = city_->SyncArgs();
      args.insert(args.end(), {"--timeout", "20", "--json"});
      // Half the kills within 4 ms of the server's store being written (a pushed batch,
      // a checkpoint or a cosignature being committed), half at a moment of the syncs.
      bool at_commit = uniform(0, 1) == 1;
      std::string data = city_->server_data() + "/data.mdb";
      int64_t before = ModifiedNs(data);
      for (size_t s : syncing) syncs.push_back(std::make_unique<ChildProcess>(SAMSYNC_BINARY, args, machines_[s].env));
      if (at_commit) {
        WaitForWrite(data, before, *syncs[0]);
        std::this_thread::sleep_for(std::chrono::microseconds(uniform(0, 4000)));
        server_commit_kills += ModifiedNs(data) != before;
      } else {
        std::this_thread::sleep_for(kill_delay(sync_us_, 0.2, 1.0));
      }
      city_->KillServer();
      ++server_kills;
      // Syncs cut off would wait for their timeout: they are killed too.
      for (size_t k = 0; k < syncs.size(); ++k) {
        syncs[k]->Signal(SIGKILL);
        CommandResult r = syncs[k]->Wait(30000);
        if (r.signal != SIGKILL) ExpectSynced(syncing[k], r, when);
      }
      CheckServer(when + ", server killed");
      city_->StartServer();
      ASSERT_TRUE(city_->server().ok()) << "the server did not start again " << when;
      for (size_t s : syncing) {
        if (machines_[s].role == "writer") CheckReplica(machines_[s], {s}, when + ", server killed");
      }
    }
    if (HasFailure()) break;
    if (round % converge_every == 0) {
      Converge(when);
      if (HasFailure()) break;
      std::cerr << "torture: round " << round << ", " << writer_kills + sync_kills + server_kills << " of " << kills
                << " kills, converged " << convergences_ << " times, "
                << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()
                << " s" << std::endl;
    }
  }
  ASSERT_FALSE(HasFailure());
  Converge("at the end (seed " + std::to_string(seed_) + ")");
  ASSERT_FALSE(HasFailure());
  uint64_t survived = writer_kills + sync_kills + server_kills;
  EXPECT_GE(survived, kills);
  std::cerr << "torture: " << survived << " kills survived (writer " << writer_kills << ", sync " << sync_kills
            << ", server " << server_kills << "), seed " << seed_ << "; " << commit_kills << " writers and "
            << server_commit_kills << " servers killed within 4 ms of a commit's first write; " << finished_first
            << " victims finished before their kill; " << adds_committed_anyway << " of " << adds_killed
            << " killed adds had committed; a write took " << static_cast<int>(writer_us_ / 1000) << " ms, a sync "
            << static_cast<int>(sync_us_ / 1000) << " ms; " << syncs_ok_ << " syncs witnessed; converged "
            << convergences_ << " times; "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()
            << " s" << std::endl;
}

}  // namespace
}  // namespace samsync
