// The city's sync server end to end: real `samsync-server` and `samsync sync`
// processes on 127.0.0.1 (ephemeral ports), district stores enrolled in a city roster,
// and a raw ZeroMQ client for what no honest client sends. Every process a test starts
// is stopped by its pid before the test ends (ChildProcess, SyncServerProcess), or by
// the kernel if the test itself dies.
#include <sodium.h>
#include <zmq.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>
#include <zmq.hpp>

#include "samsync/clock.h"
#include "samsync/districts.h"
#include "samsync/keys.h"
#include "samsync/note.h"
#include "samsync/store.h"
#include "samsync/sync_protocol.h"
#include "samsync/witness.h"
#include "chaos_proxy.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::ChaosProxy;
using testing::ChildProcess;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::RunSamsyncServer;
using testing::SyncServerProcess;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

nlohmann::json ParseJson(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed.is_discarded() ? nlohmann::json::object() : parsed;
}

// One line on stderr starting with `prefix` and holding `contains`, the exit code
// `exit_code`, nothing on stdout.
void ExpectOneLine(const CommandResult& r, int exit_code, const std::string& prefix, const std::string& contains) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

// A raw ZeroMQ DEALER with CURVE, speaking (or not) the sync protocol, with a monitor
// that sees its connection come and go.
class RawClient {
 public:
  RawClient(const std::string& endpoint, const std::string& server_key, const TransportKey& keys)
      : dealer_(context_, zmq::socket_type::dealer), monitor_(context_, zmq::socket_type::pair) {
    auto server = Bytes32::FromHex(server_key);
    EXPECT_TRUE(server.ok());
    dealer_.set(zmq::sockopt::linger, 0);
    dealer_.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server->bytes.data(), 32));
    dealer_.set(zmq::sockopt::curve_publickey, zmq::const_buffer(keys.public_key().bytes.data(), 32));
    dealer_.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret().data(), keys.secret().size()));
    dealer_.set(zmq::sockopt::reconnect_ivl, 50);
    EXPECT_EQ(zmq_socket_monitor(dealer_.handle(), "inproc://raw-client-monitor",
                                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED),
              0);
    monitor_.connect("inproc://raw-client-monitor");
    dealer_.connect(endpoint);
  }
  ~RawClient() { zmq_socket_monitor(dealer_.handle(), nullptr, 0); }

  void Send(std::span<const uint8_t> bytes) { dealer_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none); }
  void SendFrames(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      dealer_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  // The next reply, or nullopt after `timeout_ms`.
  std::optional<std::vector<uint8_t>> Receive(int timeout_ms) {
    zmq::pollitem_t item{dealer_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::nullopt;
    zmq::message_t reply;
    if (!dealer_.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
    return std::vector<uint8_t>(static_cast<const uint8_t*>(reply.data()),
                                static_cast<const uint8_t*>(reply.data()) + reply.size());
  }
  // Waits up to `timeout_ms` for the monitor to report `event` (ZMQ_EVENT_…).
  bool WaitForEvent(uint16_t event, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      zmq::message_t head, address;
      if (!monitor_.recv(head) || !monitor_.recv(address)) continue;
      uint16_t got = 0;
      if (head.size() >= 2) std::memcpy(&got, head.data(), 2);
      if (got == event) return true;
    }
    return false;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t dealer_;
  zmq::socket_t monitor_;
};

std::vector<uint8_t> HelloRequest(uint32_t protocol = kSyncProtocol) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<schema::SyncRequest>();
  request.setProtocol(protocol);
  request.setHello();
  return MessageBytes(message);
}

class SyncCliTest : public ::testing::Test {
 protected:
  // One district machine: its store folder, key file and keys.
  struct Machine {
    std::string name, district, device_key, transport_key;
    std::vector<std::string> env;
  };

  SyncCliTest() : admin_({"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")}), server_data_(dir_.Sub("server")) {}

  void SetUp() override {
    CommandResult city = RunSamsync({"city", "init", City()}, admin_);
    ASSERT_EQ(city.exit_code, 0) << city.err;
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- samsync-server log (stderr) ---\n" << logs_;
      if (server_) std::cerr << server_->Log();
      std::cerr << "--- end of the server log ---" << std::endl;
    }
    StopServer();
  }

  std::string City() const { return dir_.Sub("city"); }
  std::string Roster() const { return City() + "/roster.latest"; }

  // A new store for `district` (not enrolled yet).
  Machine NewMachine(const std::string& name, const std::string& district) {
    std::string folder = dir_.Sub("store-" + name);
    Machine m{name, district, "", "", {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"}};
    Ok(m, {"init", "--district", district});
    nlohmann::json me = Json(m, {"whoami"});
    m.device_key = me.value("deviceKey", "");
    m.transport_key = me.value("transportKey", "");
    return m;
  }
  // Enrols a machine's keys in the roster (a writer of `district`, by default its own).
  void Enrol(const Machine& m, const std::string& district = "") {
    EnrolKeys(m.device_key, m.transport_key, district.empty() ? m.district : district, m.name);
  }
  void EnrolKeys(const std::string& device_key, const std::string& transport_key, const std::string& district,
                 const std::string& label) {
    CommandResult added = RunSamsync({"roster", "add", "--city", City(), "--device-key", device_key, "--transport-key",
                                      transport_key, "--role", "writer", "--district", district, "--label", label},
                                     admin_);
    ASSERT_EQ(added.exit_code, 0) << added.err;
  }
  void InstallRoster(const Machine& m) {
    Ok(m, {"roster", "import", Roster()});
    installed_.push_back(m);
  }
  // A new enrolled machine (install the roster once every machine is enrolled: a
  // machine accepts only the commits of colleagues its roster lists).
  Machine Enrolled(const std::string& name, const std::string& district) {
    Machine m = NewMachine(name, district);
    Enrol(m);
    return m;
  }

  CommandResult Run(const Machine& m, const std::vector<std::string>& args) { return RunSamsync(args, m.env); }
  std::string Ok(const Machine& m, const std::vector<std::string>& args) {
    CommandResult r = Run(m, args);
    EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
    EXPECT_EQ(r.err, "") << m.name << " " << args[0];
    return r.out;
  }
  nlohmann::json Json(const Machine& m, std::vector<std::string> args) {
    args.push_back("--json");
    return ParseJson(Ok(m, args));
  }
  nlohmann::json Status(const Machine& m) { return Json(m, {"status"}); }
  std::string AddSchool(const Machine& m, const std::string& name) {
    std::string id = Ok(m, {"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"});
    if (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  // Makes `commits` commits of `ops` new schools each in `m`'s store, through the
  // engine (thousands of `samsync add` processes would take minutes), each school's
  // name padded to `name_bytes` so that a few dozen commits fill several push batches
  // (4 MiB each) without thousands of fsyncs (names hold at most 500 characters).
  void MakeCommits(const Machine& m, int commits, int ops, size_t name_bytes) {
    auto started = std::chrono::steady_clock::now();
    SystemClock clock;
    auto store = Store::Open(dir_.Sub("store-" + m.name), KeySource::KeyFile(dir_.Sub("store-" + m.name) + ".key"), clock);
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::string padding;
    while (padding.size() < name_bytes) padding += " och skolgarden";
    padding.resize(name_bytes);
    for (int c = 0; c < commits; ++c) {
      WriteBatch batch;
      for (int o = 0; o < ops; ++o) {
        std::string name = m.name + " skola " + std::to_string(c) + "." + std::to_string(o) + padding;
        batch.Put(testing::MakeRecord(RecordType::kSchool, {{"name", name},
                                                            {"principal", c % 2 ? "independent" : "municipal"},
                                                            {"forms", "compulsory"}}));
      }
      batch.set_note("add school");
      auto applied = (*store)->Apply(batch);
      ASSERT_TRUE(applied.ok()) << applied.status().message();
    }
    std::cerr << "made " << commits << " commits of " << ops << " ops in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
              << " ms\n";
  }

  // The server: created from the roster as it is now, then enrolled in it (its log
  // key and transport key, as the admin does), and the new roster installed on the
  // server and on every machine that has one.
  void InitServer() {
    CommandResult made = RunSamsyncServer({"init", "--data", server_data_, "--roster", Roster(), "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    nlohmann::json keys = ParseJson(made.out);
    server_log_key_ = keys.value("logKey", "");
    CommandResult added = RunSamsync({"roster", "add", "--city", City(), "--device-key", server_log_key_,
                                      "--transport-key", keys.value("serverKey", ""), "--role", "server", "--label",
                                      "sync server"},
                                     admin_);
    ASSERT_EQ(added.exit_code, 0) << added.err;
    CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    std::vector<Machine> machines = std::move(installed_);
    for (const Machine& m : machines) InstallRoster(m);
  }
  void StartServer() {
    StopServer();
    server_ = std::make_unique<SyncServerProcess>(server_data_);
    ASSERT_TRUE(server_->ok());
  }
  void StopServer() {
    if (!server_) return;
    logs_ += server_->Log();
    if (server_->Running()) {
      CommandResult stopped = server_->Stop();
      EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
    }
    server_.reset();
  }
  // SIGKILL: the server dies mid-whatever, its log kept for diagnostics.
  void KillServer() {
    logs_ += server_->Log();
    server_->Kill();
    server_.reset();
  }

  std::vector<std::string> SyncArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"sync", "--server", server_->endpoint(), "--server-key", server_->key()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  // `samsync sync --json` that must succeed; its report.
  nlohmann::json Sync(const Machine& m) {
    CommandResult r = Run(m, SyncArgs({"--json"}));
    EXPECT_EQ(r.exit_code, 0) << m.name << " sync: " << r.err;
    EXPECT_EQ(r.err, "") << m.name << " sync";
    return ParseJson(r.out);
  }

  nlohmann::json ServerStatus() {
    CommandResult r = RunSamsyncServer({"status", "--data", server_data_, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out);
  }
  void ExpectServerVerifies(uint64_t commits) {
    CommandResult r = RunSamsyncServer({"verify", "--data", server_data_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("verify: ok: " + std::to_string(commits) + " commits", 0), 0u) << r.out << r.err;
  }

  // The server's store opened read-only beside the running server (LMDB allows it):
  // its heads, read in a fraction of a millisecond, show each durable push at once.
  std::unique_ptr<Store> OpenServerStore() {
    OpenOptions options;
    options.read_only = true;
    auto store = Store::Open(server_data_, KeySource::KeyFile(server_data_ + ".key"), clock_, options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  uint64_t ServerSeq(Store& store, const std::string& device_key) {
    auto heads = store.Heads();
    EXPECT_TRUE(heads.ok()) << heads.status().message();
    if (!heads.ok()) return 0;
    auto key = Bytes32::FromHex(device_key);
    auto it = heads->find(*key);
    return it == heads->end() ? 0 : it->second;
  }
  // Starts `samsync sync` for `m` and returns once the server has made at least one of
  // its pushed batches durable (or the sync ended first): the moment to kill something.
  std::unique_ptr<ChildProcess> StartSyncAndWaitForFirstBatch(const Machine& m, uint64_t* seen,
                                                              std::vector<std::string> extra = {}) {
    std::unique_ptr<Store> watch = OpenServerStore();
    if (!watch) return nullptr;
    auto sync = std::make_unique<ChildProcess>(SAMSYNC_BINARY, SyncArgs(extra), m.env);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    *seen = 0;
    while (sync->Running() && std::chrono::steady_clock::now() < deadline) {
      *seen = ServerSeq(*watch, m.device_key);
      if (*seen > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return sync;
  }

  TempDir dir_;
  std::vector<Machine> installed_;  // machines with a roster installed
  std::string server_log_key_;
  std::vector<std::string> admin_;
  std::string server_data_;
  std::unique_ptr<SyncServerProcess> server_;
  std::string logs_;  // the logs of servers stopped or killed during the test
  SystemClock clock_;
};

// 1. Every district syncs at once; a second machine of one district then receives its
// colleague's work, and only its district's.
TEST_F(SyncCliTest, FourteenDistrictsSyncAtOnceAndASecondMachineReceivesItsDistrict) {
  const std::vector<std::string>& districts = Districts();
  ASSERT_EQ(districts.size(), 14u);
  std::vector<Machine> machines;
  for (size_t i = 0; i < districts.size(); ++i) {
    machines.push_back(NewMachine("d" + std::to_string(i), districts[i]));
    Enrol(machines.back());
  }
  Machine farsta2 = NewMachine("farsta-2", "Farsta");
  Enrol(farsta2);
  InstallRoster(farsta2);
  std::map<std::string, nlohmann::json> before;  // district → its status before syncing
  uint64_t records = 0;
  for (size_t i = 0; i < machines.size(); ++i) {
    const Machine& m = machines[i];
    InstallRoster(m);
    Ok(m, {"demo-data", "--scale", "0.02", "--seed", std::to_string(i + 1)});
    AddSchool(m, "Nya skolan i " + m.district);
    before[m.district] = Status(m);
    records += before[m.district]["records"].get<uint64_t>();
    ASSERT_EQ(before[m.district]["commits"], 2) << m.district;
  }
  InitServer();
  StartServer();

  auto started = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<ChildProcess>> syncs;
  for (const Machine& m : machines) {
    syncs.push_back(std::make_unique<ChildProcess>(SAMSYNC_BINARY, SyncArgs({"--json"}), m.env));
  }
  for (size_t i = 0; i < machines.size(); ++i) {
    const Machine& m = machines[i];
    CommandResult r = syncs[i]->Wait(60000);
    ASSERT_EQ(r.exit_code, 0) << m.district << ": " << r.err;
    EXPECT_EQ(r.err, "") << m.district;
    nlohmann::json report = ParseJson(r.out);
    EXPECT_EQ(report["pushed"], 2) << m.district << ": " << r.out;
    EXPECT_EQ(report["rejected"], 0) << m.district;
    EXPECT_EQ(report["pulled"], 0) << m.district << ": a district sees only its own district's commits";
    EXPECT_EQ(report["stateHash"], before[m.district]["stateHash"]) << m.district;
  }
  std::cerr << "14 concurrent syncs took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
            << " ms\n";

  nlohmann::json city = ServerStatus();
  EXPECT_EQ(city["commits"], 28);
  EXPECT_EQ(city["devices"], 14);
  EXPECT_EQ(city["records"], records);
  EXPECT_EQ(city["conflicts"], 0);
  EXPECT_EQ(city["waiting"], 0);
  ASSERT_EQ(city["districts"].size(), 14u) << city.dump();
  for (const std::string& district : districts) {
    EXPECT_EQ(city["districts"][district]["commits"], 2) << district << ": " << city.dump();
    EXPECT_EQ(city["districts"][district]["devices"], 1) << district;
  }
  // The server logged one line per session.
  std::string log = server_->Log();
  for (const Machine& m : machines) {
    EXPECT_NE(log.find("sync  " + m.district + " '" + m.name + "'"), std::string::npos) << m.district;
  }

  // Farsta's second machine receives Farsta's work, and nothing of any other district.
  const Machine& farsta = machines[std::find(districts.begin(), districts.end(), "Farsta") - districts.begin()];
  nlohmann::json received = Sync(farsta2);
  EXPECT_EQ(received["pushed"], 0);
  EXPECT_EQ(received["pulled"], 2);
  EXPECT_EQ(received["merged"], 2);
  nlohmann::json status2 = Status(farsta2);
  EXPECT_EQ(status2["stateHash"], before["Farsta"]["stateHash"]);
  EXPECT_EQ(status2["records"], before["Farsta"]["records"]);
  EXPECT_EQ(status2["heads"], Status(farsta)["heads"]) << "only Farsta's device";
  ASSERT_EQ(status2["heads"].size(), 1u);

  // Its own new work travels back to the first machine.
  AddSchool(farsta2, "Farsta grundskola");
  EXPECT_EQ(Sync(farsta2)["pushed"], 1);
  nlohmann::json back = Sync(farsta);
  EXPECT_EQ(back["pulled"], 1);
  EXPECT_EQ(Status(farsta)["stateHash"], Status(farsta2)["stateHash"]);
  EXPECT_EQ(ServerStatus()["districts"]["Farsta"]["devices"], 2);
  ExpectServerVerifies(29);
}

// 2. A client killed mid-push (between acknowledged batches) and run again: the server
// and the client agree, and nothing is there twice.
TEST_F(SyncCliTest, AClientKilledMidPushSyncsAgainAndNothingIsLostOrDoubled) {
  Machine a = Enrolled("farsta-a", "Farsta");
  Machine b = Enrolled("farsta-b", "Farsta");
  for (const Machine* m : {&a, &b}) InstallRoster(*m);
  // 32 commits of about 560 KiB (900 schools with long names): seven to a push batch
  // of at most 4 MiB, so five batches, each acknowledged once durable.
  const uint64_t total = 32;
  MakeCommits(a, static_cast<int>(total), 900, 460);
  if (HasFatalFailure()) return;
  InitServer();
  StartServer();

  uint64_t seen = 0;
  std::unique_ptr<ChildProcess> sync = StartSyncAndWaitForFirstBatch(a, &seen);
  ASSERT_NE(sync, nullptr);
  sync->Signal(SIGKILL);
  CommandResult killed = sync->Wait(10000);
  ASSERT_EQ(killed.signal, SIGKILL) << "the sync ended before it could be killed mid-push (exit " << killed.exit_code
                                    << ", seen " << seen << "): " << killed.out << killed.err;
  EXPECT_GT(seen, 0u);
  EXPECT_LT(seen, total);
  // The server may still finish the batch it was given; then it holds a prefix.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  nlohmann::json partial = ServerStatus();
  uint64_t held = partial["commits"].get<uint64_t>();
  std::cerr << "client killed once the server held " << seen << " of " << total << " commits; it then held " << held
            << "\n";
  EXPECT_GE(held, seen);
  EXPECT_LT(held, total) << "the kill did not land mid-push";
  EXPECT_TRUE(server_->Running());

  nlohmann::json again = Sync(a);
  EXPECT_EQ(again["pushed"].get<uint64_t>(), total - held) << again.dump();
  EXPECT_EQ(again["alreadyOnServer"], 0) << "it resumes from the server's heads";
  EXPECT_EQ(again["rejected"], 0);
  EXPECT_EQ(again["pulled"], 0);

  nlohmann::json client = Status(a);
  nlohmann::json city = ServerStatus();
  EXPECT_EQ(client["commits"], total);
  EXPECT_EQ(city["commits"], total) << "nothing doubled";
  EXPECT_EQ(city["districts"]["Farsta"]["commits"], total);
  EXPECT_EQ(city["records"], client["records"]);
  EXPECT_EQ(city["stateHash"], client["stateHash"]);
  EXPECT_EQ(city["waiting"], 0);
  auto server_store = OpenServerStore();
  ASSERT_NE(server_store, nullptr);
  auto server_heads = server_store->Heads();
  ASSERT_TRUE(server_heads.ok());
  EXPECT_EQ(FormatVersionVector(*server_heads), client["versionVector"]);
  server_store.reset();

  nlohmann::json pulled = Sync(b);
  EXPECT_EQ(pulled["pulled"], total);
  EXPECT_EQ(Status(b)["stateHash"], client["stateHash"]);
  ExpectServerVerifies(total);
}

// 3. The server killed (SIGKILL) mid-sync and started again on the same data (a new
// port): what it had stored is there, the client's rerun completes it, and every
// replica of the district ends with the same state.
TEST_F(SyncCliTest, AServerKilledMidSyncRestartsWithEverythingItAcknowledged) {
  Machine a = Enrolled("farsta-a", "Farsta");
  Machine b = Enrolled("farsta-b", "Farsta");
  for (const Machine* m : {&a, &b}) InstallRoster(*m);
  const uint64_t total = 32;  // five push batches, as above
  MakeCommits(a, static_cast<int>(total), 900, 460);
  if (HasFatalFailure()) return;
  AddSchool(b, "Farstaskolan");  // B has work of its own, already on the server
  InitServer();
  StartServer();
  Sync(b);
  std::string old_endpoint = server_->endpoint();

  uint64_t seen = 0;
  std::unique_ptr<ChildProcess> sync = StartSyncAndWaitForFirstBatch(a, &seen, {"--timeout", "3"});
  ASSERT_NE(sync, nullptr);
  ASSERT_TRUE(sync->Running()) << "the sync ended before the server could be killed: " << sync->Wait().err;
  ASSERT_GT(seen, 0u);
  KillServer();
  CommandResult cut = sync->Wait(30000);
  ExpectOneLine(cut, 3, "samsync: ", "no answer from the sync server");

  StartServer();
  EXPECT_NE(server_->endpoint(), old_endpoint);
  {
    auto restarted = OpenServerStore();
    ASSERT_NE(restarted, nullptr);
    uint64_t kept = ServerSeq(*restarted, a.device_key);
    std::cerr << "server killed once it held " << seen << " of " << total << " commits; restarted with " << kept << "\n";
    EXPECT_GE(kept, seen) << "a durable, acknowledged batch was lost";
    EXPECT_LT(kept, total) << "the kill did not land mid-sync";
    EXPECT_EQ(ServerSeq(*restarted, b.device_key), 1u);
  }

  nlohmann::json again = Sync(a);
  EXPECT_EQ(again["rejected"], 0);
  EXPECT_EQ(again["pulled"], 1) << "B's school";
  nlohmann::json status_a = Status(a);
  EXPECT_EQ(status_a["commits"], total + 1);
  nlohmann::json city = ServerStatus();
  EXPECT_EQ(city["commits"], total + 1) << "nothing lost, nothing doubled";
  EXPECT_EQ(city["districts"]["Farsta"]["commits"], total + 1);
  EXPECT_EQ(city["waiting"], 0);
  EXPECT_EQ(city["stateHash"], status_a["stateHash"]);

  nlohmann::json pulled = Sync(b);
  EXPECT_EQ(pulled["pulled"], total);
  EXPECT_EQ(Status(b)["stateHash"], status_a["stateHash"]);
  ExpectServerVerifies(total + 1);
  CommandResult verified = Run(a, {"verify"});
  EXPECT_EQ(verified.exit_code, 0) << verified.err;
}

// 4. A key the roster does not hold, and one it revoked while the server ran, never
// get through: the sync says so on one line (exit 3) and the server is unchanged.
TEST_F(SyncCliTest, UnknownAndRevokedKeysCannotConnect) {
  Machine a = Enrolled("farsta-a", "Farsta");
  Machine revoked = Enrolled("farsta-lost-laptop", "Farsta");
  Machine stranger = NewMachine("stranger", "Farsta");  // never enrolled
  for (const Machine* m : {&a, &revoked, &stranger}) InstallRoster(*m);
  AddSchool(a, "Farstaskolan");
  AddSchool(revoked, "Sköndalsskolan");
  AddSchool(stranger, "Främlingsskolan");
  InitServer();
  StartServer();
  Sync(a);
  EXPECT_EQ(Sync(revoked)["pushed"], 1);  // admitted while enrolled
  nlohmann::json before = ServerStatus();
  ASSERT_EQ(before["commits"], 2);

  CommandResult unknown = Run(stranger, SyncArgs({"--timeout", "2"}));
  ExpectOneLine(unknown, 3, "samsync: ", "does not admit this machine's key");

  CommandResult revoke = RunSamsync({"roster", "revoke", "--city", City(), "--device-key", revoked.device_key}, admin_);
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;  // into the running server's store
  AddSchool(revoked, "Sköndalsskolan 2");
  CommandResult lost = Run(revoked, SyncArgs({"--timeout", "2"}));
  ExpectOneLine(lost, 3, "samsync: ", "does not admit this machine's key");
  // Again, once the server has surely read the new roster.
  EXPECT_EQ(Run(revoked, SyncArgs({"--timeout", "2"})).exit_code, 3);

  nlohmann::json after = ServerStatus();
  EXPECT_EQ(after["stateHash"], before["stateHash"]);
  EXPECT_EQ(after["commits"], 2);
  EXPECT_EQ(after["rosterVersion"], before["rosterVersion"].get<uint64_t>() + 1);
  std::string log = server_->Log();
  EXPECT_EQ(log.find("stranger"), std::string::npos) << log;
  size_t sessions = 0;
  for (size_t at = log.find("  sync  "); at != std::string::npos; at = log.find("  sync  ", at + 1)) ++sessions;
  EXPECT_EQ(sessions, 2u) << "only the two admitted sessions (refused handshakes are logged apart): " << log;

  // The admitted machine still syncs, and receives nothing the revoked one wrote later.
  nlohmann::json still = Sync(a);
  EXPECT_EQ(still["pulled"], 1);  // the revoked laptop's school from before the revocation
  EXPECT_EQ(Status(a)["commits"], 2);
  ExpectServerVerifies(2);
}

// 5. A machine enrolled for one district that writes another district's records is
// refused, with the reason, and none of it reaches the city view.
TEST_F(SyncCliTest, ADistrictWritingAnotherDistrictsRecordsIsRefusedWithTheReason) {
  Machine farsta = Enrolled("farsta", "Farsta");
  Machine impostor = NewMachine("bromma-as-farsta", "Bromma");  // a Bromma store…
  Enrol(impostor, "Farsta");                                      // …whose keys write for Farsta
  InstallRoster(impostor);
  InstallRoster(farsta);
  AddSchool(farsta, "Farstaskolan");
  AddSchool(impostor, "Brommaskolan");
  InitServer();
  StartServer();
  Sync(farsta);
  nlohmann::json before = ServerStatus();

  CommandResult refused = Run(impostor, SyncArgs());
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("samsync: the server refused a commit: "), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("writes records of Bromma"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("writer of Farsta"), std::string::npos) << refused.err;
  // (It then fails to merge Farsta's school into a Bromma store, and says so too.)

  nlohmann::json after = ServerStatus();
  EXPECT_EQ(after["stateHash"], before["stateHash"]);
  EXPECT_EQ(after["commits"], 1);
  EXPECT_EQ(after["records"], before["records"]);
  EXPECT_EQ(after["districts"].size(), 1u) << after.dump();
  EXPECT_EQ(after["districts"]["Farsta"]["devices"], 1);
  EXPECT_NE(server_->Log().find("rejected 1"), std::string::npos) << server_->Log();
  ExpectServerVerifies(1);
}

// 6. Malformed and oversized messages from an admitted key: refused or dropped, the
// connection cut for a message over the size limit, and the server serves on.
TEST_F(SyncCliTest, MalformedAndOversizedMessagesAreDroppedAndTheServerServesOn) {
  Machine a = Enrolled("farsta-a", "Farsta");
  Machine b = Enrolled("farsta-b", "Farsta");
  for (const Machine* m : {&a, &b}) InstallRoster(*m);
  TransportKey raw_keys = TransportKey::Generate();
  EnrolKeys(SigningKey::Generate().public_key().ToHex(), raw_keys.public_key().ToHex(), "Farsta", "raw client");
  AddSchool(a, "Farstaskolan");
  InitServer();
  StartServer();
  Sync(a);
  nlohmann::json before = ServerStatus();

  RawClient raw(server_->endpoint(), server_->key(), raw_keys);
  ASSERT_TRUE(raw.WaitForEvent(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 10000)) << "the roster's raw key was not admitted";
  auto expect_refused_or_nothing = [&](const std::string& what) {
    auto reply = raw.Receive(1000);
    if (!reply) return;
    auto message = SyncMessage<schema::SyncReply>::Read(*reply);
    ASSERT_TRUE(message.ok()) << what << ": the server's reply does not read: " << message.status().message();
    EXPECT_TRUE(message->root().isRefused()) << what;
  };

  // Bytes that are no message: a refusal naming it.
  std::string garbage = "this is not a Cap'n Proto message at all, just words";
  raw.Send({reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size()});
  auto reply = raw.Receive(5000);
  ASSERT_TRUE(reply.has_value()) << "no answer to garbage";
  auto refusal = SyncMessage<schema::SyncReply>::Read(*reply);
  ASSERT_TRUE(refusal.ok()) << refusal.status().message();
  ASSERT_TRUE(refusal->root().isRefused());
  EXPECT_NE(std::string(refusal->root().getRefused().cStr()).find("malformed"), std::string::npos)
      << refusal->root().getRefused().cStr();

  // An empty message, a cut one, random bytes, several frames.
  raw.Send({});
  expect_refused_or_nothing("an empty message");
  std::vector<uint8_t> hello = HelloRequest();
  raw.Send(std::span<const uint8_t>(hello).first(hello.size() / 2));
  expect_refused_or_nothing("half a hello");
  std::vector<uint8_t> noise(1 << 20);
  randombytes_buf(noise.data(), noise.size());
  raw.Send(noise);
  expect_refused_or_nothing("1 MiB of random bytes");
  raw.SendFrames({"one", "two", "three"});
  expect_refused_or_nothing("three frames");
  // A capnp message whose only pointer claims a list far larger than the message.
  std::vector<uint8_t> bomb = {0, 0, 0, 0, 2, 0, 0, 0,                       // one segment of 2 words
                               1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,           // a list pointer: 2^29 words
                               0, 0, 0, 0, 0, 0, 0, 0};
  raw.Send(bomb);
  expect_refused_or_nothing("a list pointer past the end");
  // A well-formed message of the wrong shape: a reply's `pushed` (a struct) where a
  // request's `push` (a list) is read.
  {
    capnp::MallocMessageBuilder message;
    auto confused = message.initRoot<schema::SyncReply>();
    confused.setProtocol(kSyncProtocol);
    confused.initPushed().setAccepted(7);
    raw.Send(MessageBytes(message));
    expect_refused_or_nothing("a struct where a list belongs");
  }
  {
    capnp::MallocMessageBuilder message;
    auto confused = message.initRoot<schema::SyncReply>();
    confused.setProtocol(kSyncProtocol);
    confused.initCommits().initCommits(2);
    raw.Send(MessageBytes(message));
    expect_refused_or_nothing("a list of data where a pull belongs");
  }
  ASSERT_TRUE(server_->Running()) << "the server died of a malformed message";

  // The same connection is still served.
  raw.Send(HelloRequest());
  reply = raw.Receive(5000);
  ASSERT_TRUE(reply.has_value()) << "no answer to hello after the malformed messages";
  auto greeted = SyncMessage<schema::SyncReply>::Read(*reply);
  ASSERT_TRUE(greeted.ok());
  ASSERT_TRUE(greeted->root().isHello()) << (greeted->root().isRefused() ? greeted->root().getRefused().cStr() : "");
  EXPECT_EQ(std::string(greeted->root().getHello().getDistrict().cStr()), "Farsta");

  // Over the size limit: the server cuts the connection, and answers nothing.
  std::vector<uint8_t> huge(static_cast<size_t>(kMaxSyncMessageBytes) + 1, 0x5a);
  raw.Send(huge);
  huge = {};
  EXPECT_TRUE(raw.WaitForEvent(ZMQ_EVENT_DISCONNECTED, 20000)) << "the server kept a connection past 64 MiB";
  EXPECT_FALSE(raw.Receive(200).has_value());
  EXPECT_TRUE(server_->Running());
  // The client reconnects, and is served again.
  ASSERT_TRUE(raw.WaitForEvent(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 10000));
  raw.Send(HelloRequest());
  reply = raw.Receive(5000);
  ASSERT_TRUE(reply.has_value()) << "no answer to hello after the oversized message";

  // Honest machines sync as before.
  nlohmann::json received = Sync(b);
  EXPECT_EQ(received["pulled"], 1);
  EXPECT_EQ(Status(b)["stateHash"], Status(a)["stateHash"]);
  nlohmann::json after = ServerStatus();
  EXPECT_EQ(after["stateHash"], before["stateHash"]);
  EXPECT_EQ(after["commits"], 1);
  ExpectServerVerifies(1);
}

// An exchange (push, pull and checkpoint in one request) carrying a cosignature the
// server cannot keep is still served: the witness is told why, the log says so, and
// nothing of the cosignature is kept.
TEST_F(SyncCliTest, AnExchangeWithABadCosignatureIsServedAndToldWhy) {
  Machine a = Enrolled("farsta-a", "Farsta");
  InstallRoster(a);
  TransportKey raw_keys = TransportKey::Generate();
  EnrolKeys(SigningKey::Generate().public_key().ToHex(), raw_keys.public_key().ToHex(), "Farsta", "raw client");
  AddSchool(a, "Farstaskolan");
  InitServer();
  StartServer();
  ASSERT_EQ(Sync(a)["checkpoint"]["size"], 1);

  RawClient raw(server_->endpoint(), server_->key(), raw_keys);
  ASSERT_TRUE(raw.WaitForEvent(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 10000));
  auto exchange = [&](uint64_t cosign_size, const std::string& line) {
    capnp::MallocMessageBuilder message;
    auto request = message.initRoot<schema::SyncRequest>();
    request.setProtocol(kSyncProtocol);
    auto out = request.initExchange();
    out.initPush(0);
    out.initPull().initHave(0);
    out.setSeenSize(0);
    auto cosign = out.initCosign();
    cosign.setSize(cosign_size);
    cosign.setLine(line);
    raw.Send(MessageBytes(message));
    auto reply = raw.Receive(5000);
    EXPECT_TRUE(reply.has_value()) << "no answer to an exchange";
    auto read = SyncMessage<schema::SyncReply>::Read(reply.value_or(std::vector<uint8_t>{}));
    EXPECT_TRUE(read.ok());
    return std::move(read).value();
  };
  for (auto [size, line, why] : {std::tuple<uint64_t, std::string, std::string>{1, "— not a cosignature", "signature"},
                                 {99, "— stockholm.se/samsync/witness/00 AAAA", "no checkpoint of size 99"}}) {
    auto reply = exchange(size, line);
    ASSERT_TRUE(reply.root().isExchanged()) << (reply.root().isRefused() ? reply.root().getRefused().cStr() : "");
    auto exchanged = reply.root().getExchanged();
    std::string refused = exchanged.getCosignRefused().cStr();
    EXPECT_NE(refused.find(why), std::string::npos) << refused;
    // The rest is served: the district's commit, and the signed checkpoint of size 1.
    EXPECT_EQ(exchanged.getPushed().getAccepted(), 0u);
    EXPECT_EQ(exchanged.getCommits().getCommits().size(), 1u);
    EXPECT_FALSE(exchanged.getCommits().getMore());
    std::string note = exchanged.getCheckpoint().getNote().cStr();
    EXPECT_NE(note.find("stockholm.se/samsync\n1\n"), std::string::npos) << note;
  }
  StopServer();
  EXPECT_NE(logs_.find("raw client"), std::string::npos) << logs_;
  EXPECT_NE(logs_.find("a cosignature: "), std::string::npos) << logs_;
  // Only a's own cosignature of the checkpoint is held.
  StartServer();
  EXPECT_EQ(Sync(a)["checkpoint"]["cosigners"], 1);
}

// 7. A roster whose signature fails is refused by the server, and a request in another
// protocol version is refused naming both versions.
TEST_F(SyncCliTest, ATamperedRosterAndAnotherProtocolVersionAreRefused) {
  Machine a = NewMachine("farsta-a", "Farsta");
  TransportKey raw_keys = TransportKey::Generate();
  EnrolKeys(SigningKey::Generate().public_key().ToHex(), raw_keys.public_key().ToHex(), "Farsta", "raw client");
  Enrol(a);
  std::string bytes = Slurp(Roster());
  ASSERT_GT(bytes.size(), 10u);
  bytes[bytes.size() - 10] = static_cast<char>(bytes[bytes.size() - 10] ^ 0x01);  // inside the signature
  std::string tampered = dir_.Sub("tampered.roster");
  Spit(tampered, bytes);

  CommandResult refused = RunSamsyncServer({"init", "--data", server_data_, "--roster", tampered});
  ExpectOneLine(refused, 1, "samsync", "signature does not verify");
  EXPECT_FALSE(fs::exists(server_data_)) << "init created a store on a bad roster";
  EXPECT_FALSE(fs::exists(server_data_ + ".key"));
  ChildProcess run_without_store(SAMSYNC_SERVER_BINARY,
                                 {"run", "--data", server_data_, "--listen", "tcp://127.0.0.1:0"}, {});
  CommandResult no_store = run_without_store.Wait(10000);
  EXPECT_NE(no_store.exit_code, 0);
  EXPECT_EQ(no_store.err.find('\n'), no_store.err.size() - 1) << no_store.err;

  InitServer();
  nlohmann::json before = ServerStatus();
  // A newer roster, tampered, is not installed into a server's store either.
  Enrol(Machine{"late", "Farsta", SigningKey::Generate().public_key().ToHex(),
                TransportKey::Generate().public_key().ToHex(), {}});
  bytes = Slurp(Roster());
  bytes[bytes.size() - 10] = static_cast<char>(bytes[bytes.size() - 10] ^ 0x01);
  Spit(tampered, bytes);
  ExpectOneLine(RunSamsyncServer({"roster", "import", "--data", server_data_, tampered}), 1, "samsync",
                "signature does not verify");
  EXPECT_EQ(ServerStatus()["rosterVersion"], before["rosterVersion"]);

  StartServer();
  RawClient raw(server_->endpoint(), server_->key(), raw_keys);
  raw.Send(HelloRequest(kSyncProtocol + 1));
  auto reply = raw.Receive(5000);
  ASSERT_TRUE(reply.has_value()) << "no answer to a hello of another protocol version";
  auto message = SyncMessage<schema::SyncReply>::Read(*reply);
  ASSERT_TRUE(message.ok());
  EXPECT_EQ(message->root().getProtocol(), kSyncProtocol);
  ASSERT_TRUE(message->root().isRefused());
  std::string reason = message->root().getRefused().cStr();
  EXPECT_NE(reason.find("speaks sync protocol " + std::to_string(kSyncProtocol)), std::string::npos) << reason;
  EXPECT_NE(reason.find("not " + std::to_string(kSyncProtocol + 1)), std::string::npos) << reason;

  // The same key in this version is served.
  raw.Send(HelloRequest());
  reply = raw.Receive(5000);
  ASSERT_TRUE(reply.has_value());
  auto hello = SyncMessage<schema::SyncReply>::Read(*reply);
  ASSERT_TRUE(hello.ok());
  EXPECT_TRUE(hello->root().isHello());
}

// 8. Every command of the server, and `samsync sync`, explain themselves.
TEST(SyncCliHelpTest, HelpExitsZero) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"--help"},
                                                                            {"init", "--help"},
                                                                            {"run", "--help"},
                                                                            {"status", "--help"},
                                                                            {"verify", "--help"},
                                                                            {"roster", "--help"},
                                                                            {"roster", "import", "--help"}}) {
    CommandResult r = RunSamsyncServer(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_NE(r.out.find("samsync-server"), std::string::npos) << args[0] << ": " << r.out;
  }
  EXPECT_NE(RunSamsyncServer({"--help"}).out.find("roster"), std::string::npos);
  EXPECT_NE(RunSamsyncServer({"run", "--help"}).out.find("--listen"), std::string::npos);
  CommandResult sync = RunSamsync({"sync", "--help"}, {});
  EXPECT_EQ(sync.exit_code, 0) << sync.err;
  EXPECT_NE(sync.out.find("--server-key"), std::string::npos) << sync.out;
  EXPECT_NE(sync.out.find("--timeout"), std::string::npos) << sync.out;
  // Without the server's address: bad input, one line.
  CommandResult missing = RunSamsync({"sync"}, {});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err.find('\n'), missing.err.size() - 1) << missing.err;
  CommandResult unknown = RunSamsyncServer({"serve"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err.find('\n'), unknown.err.size() - 1) << unknown.err;
}


// 8. Every sync ends with the machine witnessing the city's log: the checkpoint is
// signed by the server's log key, extends the one the machine saw before, and the
// machine's cosignature is kept. A server that shows two districts two different
// histories (here: a copy of its store, with its keys, serving one district while the
// original serves the other) is caught at the next sync, which refuses to cosign and
// saves both checkpoints as evidence. `samsync proof` proves a commit is in the log.
TEST_F(SyncCliTest, WitnessesCosignTheLogAndCatchASplitView) {
  Machine a = Enrolled("farsta", "Farsta");
  Machine b = Enrolled("bromma", "Bromma");
  for (const Machine* m : {&a, &b}) InstallRoster(*m);
  InitServer();
  StartServer();
  AddSchool(a, "Farsta skola 1");
  AddSchool(b, "Bromma skola 1");
  nlohmann::json first_a = Sync(a);
  EXPECT_EQ(first_a["checkpoint"]["size"], 1);
  EXPECT_EQ(first_a["checkpoint"]["previousSize"], 0);
  EXPECT_EQ(first_a["checkpoint"]["origin"], "stockholm.se/samsync");
  nlohmann::json first_b = Sync(b);
  EXPECT_EQ(first_b["checkpoint"]["size"], 2);
  nlohmann::json again_a = Sync(a);
  EXPECT_EQ(again_a["checkpoint"]["size"], 2);
  EXPECT_EQ(again_a["checkpoint"]["previousSize"], 1);
  EXPECT_GE(again_a["checkpoint"]["cosigners"], 1) << "Bromma's cosignature of the checkpoint is served";

  // An inclusion proof of Farsta's commit, checked by Farsta's machine.
  nlohmann::json log = Json(a, {"log"});
  ASSERT_TRUE(log.is_array() && !log.empty()) << log.dump();
  std::string commit = log[0].value("commit", "");
  CommandResult proof = Run(a, {"proof", commit.substr(0, 12), "--server", server_->endpoint(), "--server-key",
                                server_->key(), "--json"});
  ASSERT_EQ(proof.exit_code, 0) << proof.err;
  nlohmann::json proved = ParseJson(proof.out);
  EXPECT_EQ(proved["commit"], commit);
  EXPECT_EQ(proved["treeSize"], 2);
  EXPECT_EQ(proved["included"], true);
  ExpectOneLine(Run(a, {"proof", std::string(64, 'a'), "--server", server_->endpoint(), "--server-key",
                        server_->key()}),
                1, "samsync", "is not in the log");

  // The split: the server's store and keys copied while it is stopped.
  StopServer();
  std::string fork = dir_.Sub("server-fork");
  fs::copy(server_data_, fork, fs::copy_options::recursive);
  fs::copy_file(server_data_ + ".key", fork + ".key");
  StartServer();
  SyncServerProcess forked(fork);
  ASSERT_TRUE(forked.ok());
  ASSERT_EQ(forked.key(), server_->key());
  AddSchool(a, "Farsta skola 2");
  EXPECT_EQ(Sync(a)["checkpoint"]["size"], 3);
  AddSchool(b, "Bromma skola 2");
  CommandResult on_fork =
      Run(b, {"sync", "--server", forked.endpoint(), "--server-key", forked.key(), "--json"});
  ASSERT_EQ(on_fork.exit_code, 0) << on_fork.err;
  EXPECT_EQ(ParseJson(on_fork.out)["checkpoint"]["size"], 3);  // its own third entry: Bromma skola 2

  // Bromma comes back to the real server: its log of 3 is not the one Bromma saw.
  CommandResult caught = Run(b, SyncArgs());
  EXPECT_EQ(caught.exit_code, 1) << caught.out << caught.err;
  EXPECT_NE(caught.err.find("the server's history is inconsistent with what this machine saw"), std::string::npos)
      << caught.err;
  EXPECT_NE(caught.err.find("saved in"), std::string::npos) << caught.err;
  bool evidence = false;
  for (const auto& entry : fs::recursive_directory_iterator(dir_.Sub("store-bromma") + "/evidence")) {
    if (entry.path().filename() == "served.checkpoint") {
      evidence = fs::exists(entry.path().parent_path() / "seen.checkpoint");
      EXPECT_NE(Slurp(entry.path().string()).find("stockholm.se/samsync\n"), std::string::npos);
    }
  }
  EXPECT_TRUE(evidence) << "no evidence folder with both checkpoints";
  // And Farsta, having seen the real log of 3, is told the same by the fork.
  CommandResult caught_a = Run(a, {"sync", "--server", forked.endpoint(), "--server-key", forked.key()});
  EXPECT_EQ(caught_a.exit_code, 1) << caught_a.out;
  EXPECT_NE(caught_a.err.find("inconsistent"), std::string::npos) << caught_a.err;
  CommandResult stopped = forked.Stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

// 9. `sync --every`: a machine that keeps syncing over one connection. A record added
// while it runs reaches a colleague's machine without anyone running sync there by
// hand; each round is one JSON line; a server that goes away and comes back is waited
// for (the round fails, the next one reconnects); SIGTERM ends it with exit 0.
TEST_F(SyncCliTest, SyncEveryKeepsAMachineInStepAndOutlastsAServerRestart) {
  Machine a = Enrolled("enskede-a", "Enskede-Årsta-Vantör");
  Machine b = Enrolled("enskede-b", "Enskede-Årsta-Vantör");
  Machine offline = Enrolled("enskede-c", "Enskede-Årsta-Vantör");  // syncs by bundle only
  for (const Machine* m : {&a, &b, &offline}) InstallRoster(*m);
  InitServer();
  StartServer();
  ASSERT_TRUE(server_->ok());
  // The machines reach the server through a proxy that forwards faithfully: a restarted
  // server listens on a new port, the proxy keeps the machines' address.
  auto port_of = [](const std::string& endpoint) {
    return static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  };
  ChaosProxy proxy(port_of(server_->endpoint()), /*seed=*/1, /*fault_rate=*/0, /*delay_rate=*/0);
  const std::vector<std::string> every = {"sync",    "--server", proxy.endpoint(), "--server-key", server_->key(),
                                          "--every", "0.05",     "--json",         "--timeout",    "2"};
  ChildProcess keeping_a(SAMSYNC_BINARY, every, a.env);
  ChildProcess keeping_b(SAMSYNC_BINARY, every, b.env);

  // Each JSON line `p` has printed so far.
  auto rounds = [](ChildProcess& p) {
    std::vector<nlohmann::json> parsed;
    std::istringstream lines(p.Out());
    for (std::string line; std::getline(lines, line);) {
      auto json = nlohmann::json::parse(line, nullptr, false);
      if (!json.is_discarded()) parsed.push_back(std::move(json));
    }
    return parsed;
  };
  // Waits (up to 20 s) until `done` holds.
  auto eventually = [](const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  };
  // Whether `b`'s store comes to hold the record `id`.
  auto arrives = [&](const std::string& id) { return eventually([&] { return Run(b, {"show", id}).exit_code == 0; }); };

  std::string first = AddSchool(a, "Skolan som kom av sig själv");
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(arrives(first)) << "a: " << keeping_a.Err() << "\nb: " << keeping_b.Err();
  // a reports the round that pushed it once that round is over (after b may have it).
  const uint64_t commits = Status(a)["commits"].get<uint64_t>();
  auto pushed_by_a = [&] {
    uint64_t pushed = 0;
    for (const nlohmann::json& round : rounds(keeping_a)) pushed += round.value("pushed", uint64_t{0});
    return pushed;
  };
  EXPECT_TRUE(eventually([&] { return pushed_by_a() >= commits; })) << keeping_a.Out() << keeping_a.Err();
  EXPECT_EQ(pushed_by_a(), commits) << "each of a's commits pushed once";
  for (const nlohmann::json& round : rounds(keeping_a)) {
    EXPECT_EQ(round.value("rejected", uint64_t{1}), 0u);
    EXPECT_TRUE(round.contains("phasesMs")) << round.dump();
  }

  // The server goes away for a while: rounds fail and say so; then it is back.
  StopServer();
  EXPECT_TRUE(eventually([&] { return keeping_a.Err().find("failed (trying again") != std::string::npos; }))
      << keeping_a.Err();
  EXPECT_TRUE(keeping_a.Running()) << keeping_a.Err();
  StartServer();
  ASSERT_TRUE(server_->ok());
  proxy.SetUpstream(port_of(server_->endpoint()));
  std::string second = AddSchool(a, "Skolan efter omstarten");
  EXPECT_TRUE(arrives(second)) << "a: " << keeping_a.Err() << "\nb: " << keeping_b.Err();

  // Rounds that bring nothing are not logged one by one: the server's next line for
  // the machine counts them.
  const size_t quiet_from = rounds(keeping_a).size();
  EXPECT_TRUE(eventually([&] { return rounds(keeping_a).size() >= quiet_from + 10; })) << keeping_a.Err();
  std::string third = AddSchool(a, "Skolan efter tystnaden");
  EXPECT_TRUE(arrives(third)) << "a: " << keeping_a.Err() << "\nb: " << keeping_b.Err();

  // More than one batch (1,000 commits) arriving at once while the connection is kept
  // (from a colleague's offline machine, by a bundle whose import is one transaction):
  // pushed in one round, a push and an exchange.
  MakeCommits(offline, 1001, 1, 0);
  const std::string carried = dir_.Sub("offline.bundle");
  Ok(offline, {"bundle", "export", carried});
  Ok(a, {"bundle", "import", carried});
  const uint64_t made = Status(a)["commits"].get<uint64_t>();
  EXPECT_TRUE(eventually([&] { return Status(b)["commits"].get<uint64_t>() == made; }))
      << "a: " << keeping_a.Err() << "\nb: " << keeping_b.Err();
  bool one_round = false;
  for (const nlohmann::json& round : rounds(keeping_a)) one_round |= round.value("pushed", uint64_t{0}) == 1001;
  EXPECT_TRUE(one_round) << keeping_a.Out();

  // Both machines saw the log's last checkpoint; a round's cosignature travels with
  // the next round, and the last one is sent on the way out.
  auto saw_last = [&](ChildProcess& p) {
    std::vector<nlohmann::json> seen = rounds(p);
    return !seen.empty() && seen.back()["checkpoint"]["size"] == ServerStatus()["commits"];
  };
  EXPECT_TRUE(eventually([&] { return saw_last(keeping_a) && saw_last(keeping_b); }));
  for (ChildProcess* p : {&keeping_a, &keeping_b}) {
    p->Signal(SIGTERM);
    CommandResult ended = p->Wait(10000);
    EXPECT_EQ(ended.exit_code, 0) << ended.err;
  }
  EXPECT_EQ(Status(a)["stateHash"], Status(b)["stateHash"]);
  // The server logs a's sessions that moved commits, not each of its idle rounds.
  std::string log = logs_ + server_->Log();
  size_t lines = 0;
  for (size_t at = log.find("  sync  Enskede-Årsta-Vantör 'enskede-a'"); at != std::string::npos;
       at = log.find("  sync  Enskede-Årsta-Vantör 'enskede-a'", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 2u) << log;
  EXPECT_LT(lines, rounds(keeping_a).size() / 2) << log;
  EXPECT_NE(log.find(" with nothing new since its last line, "), std::string::npos) << log;
  // Each line's session time is the session's, from its first request (not the
  // machine's uptime).
  for (size_t at = log.find("  sync  "); at != std::string::npos; at = log.find("  sync  ", at + 1)) {
    std::string line = log.substr(at, log.find('\n', at) - at);
    size_t ms = line.rfind(", ");
    ASSERT_NE(ms, std::string::npos) << line;
    EXPECT_LT(std::stoll(line.substr(ms + 2)), 120000) << line;
  }
  nlohmann::json last = Sync(a);
  EXPECT_EQ(last["pushed"], 0);
  EXPECT_EQ(last["checkpoint"]["cosigners"], 2) << "both machines' cosignatures of the last checkpoint are held";
}

// 9b. A machine cosigns only checkpoints it has saved: one it forgot could be shown a
// fork of and cosigned again. On a kept connection a round's checkpoint is saved while
// the server works on the next round, and its cosignature travels with the round
// after that. Killed while records are being added and synced, the machine has saved
// every checkpoint whose cosignature by it the server holds.
TEST_F(SyncCliTest, SyncEveryCosignsOnlyCheckpointsItHasSaved) {
  Machine a = Enrolled("enskede-a", "Enskede-Årsta-Vantör");
  InstallRoster(a);
  InitServer();
  StartServer();
  ASSERT_TRUE(server_->ok());
  ChildProcess keeping(SAMSYNC_BINARY,
                       {"sync", "--server", server_->endpoint(), "--server-key", server_->key(), "--every", "0.01",
                        "--json", "--timeout", "2"},
                       a.env);
  // The largest log size at which the server holds a cosignature by `a` (0: none).
  auto largest_cosigned = [&]() -> uint64_t {
    auto server = OpenServerStore();
    if (server == nullptr) return 0;
    auto size = server->LogSize();
    EXPECT_TRUE(size.ok()) << size.status().message();
    uint64_t largest = 0;
    for (uint64_t at = 1; size.ok() && at <= *size; ++at) {
      auto checkpoint = server->CheckpointAt(at);
      if (!checkpoint.ok()) continue;  // a size no exchange was answered at
      std::string line = "\xE2\x80\x94 " + WitnessName(checkpoint->origin, *Bytes32::FromHex(a.device_key)) + " ";
      if (checkpoint->note.find(line) != std::string::npos) largest = at;
    }
    return largest;
  };
  for (int i = 0; i < 12; ++i) ASSERT_FALSE(AddSchool(a, "Skola " + std::to_string(i)).empty());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (largest_cosigned() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  keeping.Signal(SIGKILL);
  keeping.Wait(10000);
  const uint64_t cosigned = largest_cosigned();
  ASSERT_GE(cosigned, 3u) << "the server holds cosignatures by the machine: " << keeping.Err();

  SystemClock clock;
  OpenOptions read_only;
  read_only.read_only = true;
  auto store = Store::Open(dir_.Sub("store-" + a.name), KeySource::KeyFile(dir_.Sub("store-" + a.name) + ".key"), clock,
                           read_only);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto seen = (*store)->SeenCheckpoint();
  ASSERT_TRUE(seen.ok() && seen->has_value()) << "the machine saved a checkpoint";
  auto note = ParseNote(**seen);
  ASSERT_TRUE(note.ok()) << note.status().message();
  auto checkpoint = ParseCheckpoint(note->text);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_GE(checkpoint->size, cosigned) << "a cosignature went out before its checkpoint was saved";
}

TEST_F(SyncCliTest, SyncEveryRefusesANonsensePeriod) {
  Machine a = Enrolled("farsta-a", "Farsta");
  InstallRoster(a);
  for (const char* period : {"0", "-1", "soon"}) {
    CommandResult r = Run(a, {"sync", "--server", "tcp://127.0.0.1:9", "--server-key", std::string(64, 'a'), "--every",
                              period});
    ExpectOneLineError(r, 2, "--every");
  }
}

}  // namespace
}  // namespace samsync
