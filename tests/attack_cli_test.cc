// Attacks on the city's sync, end to end: a real `samsync-server` on 127.0.0.1 (an
// ephemeral port) with a real city (root key, roster, enrolled district stores), and a
// raw ZeroMQ CURVE client in this test speaking the real protocol (schema/sync.capnp)
// with commits built and signed through the engine's public API, for what no honest
// client sends. Each attack is its own test. Each asserts that it is refused (the
// reply names the reason, or the handshake is refused), that the server's log (its
// stderr) has a line naming the reason, and that no replica changed: the server's state
// hash, commit count (= its log's size), waiting commits and log root (from `verify`)
// are as before, and the honest districts' next syncs pull nothing and keep their state
// hash. Attacks a client must refuse (a checkpoint of another log, a roster rollback)
// are tested on that side. The binary ends by printing "attacks refused: N of M".
//
// Also here: a revoked laptop (the admin revokes it while the server runs).
// Every process a test starts is stopped by its pid (ChildProcess, SyncServerProcess).
#include <sodium.h>
#include <zmq.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "samsync/clock.h"
#include "samsync/history.h"
#include "samsync/ids.h"
#include "samsync/keys.h"
#include "samsync/note.h"
#include "samsync/schema/history.capnp.h"
#include "samsync/sync_protocol.h"
#include "samsync/witness.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::CommandResult;
using testing::RunSamsync;
using testing::RunSamsyncServer;
using testing::SyncServerProcess;
using testing::TempDir;

// The attacks tried and refused, for the count printed at the end.
std::atomic<int> g_attacks_tried{0};
std::atomic<int> g_attacks_refused{0};

class AttackCount : public ::testing::Environment {
 public:
  void TearDown() override {
    std::cout << "attacks refused: " << g_attacks_refused << " of " << g_attacks_tried << std::endl;
  }
};
[[maybe_unused]] ::testing::Environment* const kAttackCount = ::testing::AddGlobalTestEnvironment(new AttackCount);

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

// One line on stderr holding `contains`, the exit code `exit_code`, nothing on stdout.
void ExpectOneLine(const CommandResult& r, int exit_code, const std::string& contains) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind("samsync", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

// A raw ZeroMQ DEALER with CURVE and a monitor of its handshakes.
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
    dealer_.set(zmq::sockopt::reconnect_ivl, 100);
    dealer_.set(zmq::sockopt::sndtimeo, 2000);  // a refused handshake leaves no peer to send to
    EXPECT_EQ(zmq_socket_monitor(dealer_.handle(), "inproc://attack-client-monitor",
                                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
              0);
    monitor_.connect("inproc://attack-client-monitor");
    dealer_.connect(endpoint);
  }
  ~RawClient() { zmq_socket_monitor(dealer_.handle(), nullptr, 0); }

  // False when no connection took the message within 2 s.
  bool Send(std::span<const uint8_t> bytes) {
    return dealer_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none).has_value();
  }
  std::optional<std::vector<uint8_t>> Receive(int timeout_ms) {
    zmq::pollitem_t item{dealer_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::nullopt;
    zmq::message_t reply;
    if (!dealer_.recv(reply, zmq::recv_flags::dontwait)) return std::nullopt;
    return std::vector<uint8_t>(static_cast<const uint8_t*>(reply.data()),
                                static_cast<const uint8_t*>(reply.data()) + reply.size());
  }
  // The first handshake event within `timeout_ms` (ZMQ_EVENT_…), or 0.
  uint16_t NextHandshakeEvent(int timeout_ms) {
    zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return 0;
    zmq::message_t head, address;
    if (!monitor_.recv(head) || !monitor_.recv(address)) return 0;
    uint16_t event = 0;
    if (head.size() >= 2) std::memcpy(&event, head.data(), 2);
    return event;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t dealer_;
  zmq::socket_t monitor_;
};

std::vector<uint8_t> PushRequest(const std::vector<std::vector<uint8_t>>& commits) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<schema::SyncRequest>();
  request.setProtocol(kSyncProtocol);
  auto list = request.initPush(static_cast<unsigned>(commits.size()));
  for (unsigned i = 0; i < commits.size(); ++i) list.set(i, capnp::Data::Reader(commits[i].data(), commits[i].size()));
  return MessageBytes(message);
}

// What the server answered a push.
struct PushAnswer {
  bool answered = false;
  std::string refused;  // the whole request refused: why
  uint32_t accepted = 0, duplicates = 0, waiting = 0;
  std::vector<std::string> rejected;  // per refused commit, its reason
};

PushAnswer Push(RawClient& client, const std::vector<std::vector<uint8_t>>& commits) {
  PushAnswer answer;
  if (!client.Send(PushRequest(commits))) return answer;
  auto reply = client.Receive(15000);
  if (!reply) return answer;
  auto message = SyncMessage<schema::SyncReply>::Read(*reply);
  EXPECT_TRUE(message.ok()) << message.status().message();
  if (!message.ok()) return answer;
  answer.answered = true;
  auto root = message->root();
  if (root.isRefused()) {
    answer.refused = root.getRefused().cStr();
    return answer;
  }
  EXPECT_TRUE(root.isPushed());
  if (!root.isPushed()) return answer;
  auto pushed = root.getPushed();
  answer.accepted = pushed.getAccepted();
  answer.duplicates = pushed.getDuplicates();
  answer.waiting = pushed.getWaiting();
  for (auto rejection : pushed.getRejected()) answer.rejected.push_back(rejection.getReason().cStr());
  return answer;
}

// A device whose keys this test holds, enrolled in the roster: it signs commits of its
// own chain (one new school each) through the engine's CommitBuilder.
// Copies share the keys: a copy is a cloned device.
struct RawDevice {
  std::shared_ptr<const SigningKey> signing_key = std::make_shared<const SigningKey>(SigningKey::Generate());
  std::shared_ptr<const TransportKey> transport_key = std::make_shared<const TransportKey>(TransportKey::Generate());
  const SigningKey& signing() const { return *signing_key; }
  const TransportKey& transport() const { return *transport_key; }
  std::string district = "Farsta";
  uint64_t seq = 0;  // its last commit's
  Hash last_id;
  uint64_t last_hlc = 0;

  CommitBuilder::Header NextHeader() const {
    CommitBuilder::Header header;
    header.district = district;
    header.seq = seq + 1;
    header.parent = last_id;
    header.hlc = Hlc::Next(last_hlc, SystemClock().NowMs());
    header.note = "add school";
    return header;
  }
  // Signs `header` with `record` as its one op (a set of every field), without moving
  // the chain on.
  Commit Sign(const CommitBuilder::Header& header, Record record, const SigningKey* key = nullptr) const {
    CommitBuilder builder;
    builder.AddSet(record, ChangedFields(nullptr, record));
    return builder.Sign(key ? *key : signing(), header);
  }
  // The next commit of its chain: a new school of `district` (its own by default).
  Commit Next(const std::string& name, const std::string& record_district = "") {
    Record school = NewSchool(name, record_district.empty() ? district : record_district);
    CommitBuilder::Header header = NextHeader();
    Commit commit = Sign(header, std::move(school));
    Advance(commit);
    return commit;
  }
  void Advance(const Commit& commit) {
    seq = commit.seq();
    last_id = commit.id();
    last_hlc = commit.hlc();
  }
  static Record NewSchool(const std::string& name, const std::string& district) {
    Record school = testing::MakeRecord(RecordType::kSchool,
                                        {{"name", name}, {"principal", "municipal"}, {"forms", "compulsory"}});
    static RecordIdGenerator ids;
    school.set_id(ids.Next(SystemClock()));
    school.set_district(district);
    return school;
  }
};

std::vector<uint8_t> Bytes(const Commit& commit) { return commit.signed_bytes(); }

class AttackCliTest : public ::testing::Test {
 protected:
  struct Machine {
    std::string name, district, device_key, transport_key;
    std::vector<std::string> env;
  };

  AttackCliTest() : admin_({"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")}), server_data_(dir_.Sub("server")) {}

  // The city: Farsta's office machine and Bromma's (real stores), a raw Farsta writer
  // whose keys the test holds (it has pushed one commit), a raw central-office key and
  // a raw Farsta writer to be revoked; the server running, every machine synced.
  void SetUp() override {
    CommandResult city = RunSamsync({"city", "init", City()}, admin_);
    ASSERT_EQ(city.exit_code, 0) << city.err;
    farsta_ = NewMachine("farsta", "Farsta");
    bromma_ = NewMachine("bromma", "Bromma");
    EnrolKeys(farsta_.device_key, farsta_.transport_key, "writer", "Farsta", "farsta office");
    EnrolKeys(bromma_.device_key, bromma_.transport_key, "writer", "Bromma", "bromma office");
    EnrolKeys(raw_.signing().public_key().ToHex(), raw_.transport().public_key().ToHex(), "writer", "Farsta", "raw writer");
    EnrolKeys(lost_.signing().public_key().ToHex(), lost_.transport().public_key().ToHex(), "writer", "Farsta", "lost");
    EnrolKeys(central_.signing().public_key().ToHex(), central_.transport().public_key().ToHex(), "central", "",
              "central office");
    InitServer();
    StartServer();
    RawClient client(server_->endpoint(), server_->key(), raw_.transport());
    PushAnswer first = Push(client, {Bytes(raw_.Next("Raw skolan 1"))});
    ASSERT_TRUE(first.answered);
    ASSERT_EQ(first.accepted, 1u) << first.refused << (first.rejected.empty() ? "" : first.rejected[0]);
    AddSchool(farsta_, "Farstaskolan");
    AddSchool(bromma_, "Brommaskolan");
    Sync(farsta_);
    Sync(bromma_);
  }

  void TearDown() override {
    if (HasFailure() || std::getenv("SAMSYNC_TEST_SHOW_SERVER_LOG") != nullptr) {
      std::cerr << "--- samsync-server log (stderr) ---\n" << logs_;
      if (server_) std::cerr << server_->Log();
      std::cerr << "--- end of the server log ---" << std::endl;
    }
    StopServer();
  }

  std::string City() const { return dir_.Sub("city"); }
  std::string Roster() const { return City() + "/roster.latest"; }

  Machine NewMachine(const std::string& name, const std::string& district, bool city_wide = false) {
    std::string folder = dir_.Sub("store-" + name);
    Machine m{name, district, "", "", {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"}};
    if (city_wide) {
      Ok(m, {"init", "--city-wide"});
    } else {
      Ok(m, {"init", "--district", district});
    }
    nlohmann::json me = Json(m, {"whoami"});
    m.device_key = me.value("deviceKey", "");
    m.transport_key = me.value("transportKey", "");
    return m;
  }
  void EnrolKeys(const std::string& device_key, const std::string& transport_key, const std::string& role,
                 const std::string& district, const std::string& label) {
    std::vector<std::string> args = {"roster", "add", "--city", City(), "--device-key", device_key, "--transport-key",
                                     transport_key, "--role", role, "--label", label};
    if (!district.empty()) {
      args.push_back("--district");
      args.push_back(district);
    }
    CommandResult added = RunSamsync(args, admin_);
    ASSERT_EQ(added.exit_code, 0) << added.err;
  }
  // The latest roster on the server (running or not) and on every real machine.
  void InstallRosterEverywhere() {
    CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    for (const Machine* m : {&farsta_, &bromma_}) Ok(*m, {"roster", "import", Roster()});
  }
  void Revoke(const std::string& device_key) {
    CommandResult revoked = RunSamsync({"roster", "revoke", "--city", City(), "--device-key", device_key}, admin_);
    ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  }

  CommandResult Run(const Machine& m, const std::vector<std::string>& args) { return RunSamsync(args, m.env); }
  std::string Ok(const Machine& m, const std::vector<std::string>& args) {
    CommandResult r = Run(m, args);
    EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
    return r.out;
  }
  nlohmann::json Json(const Machine& m, std::vector<std::string> args) {
    args.push_back("--json");
    return ParseJson(Ok(m, args));
  }
  std::string AddSchool(const Machine& m, const std::string& name) {
    std::string id = Ok(m, {"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"});
    if (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  // The server, created from the roster and then enrolled in it (log key, server key).
  void InitServer() {
    CommandResult made = RunSamsyncServer({"init", "--data", server_data_, "--roster", Roster(), "--json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    nlohmann::json keys = ParseJson(made.out);
    EnrolKeys(keys.value("logKey", ""), keys.value("serverKey", ""), "server", "", "sync server");
    InstallRosterEverywhere();
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
  std::vector<std::string> SyncArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"sync", "--server", server_->endpoint(), "--server-key", server_->key()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  nlohmann::json Sync(const Machine& m) {
    CommandResult r = Run(m, SyncArgs({"--json"}));
    EXPECT_EQ(r.exit_code, 0) << m.name << " sync: " << r.err;
    return ParseJson(r.out);
  }
  nlohmann::json ServerStatus() {
    CommandResult r = RunSamsyncServer({"status", "--data", server_data_, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out);
  }
  // `samsync-server verify`: must pass; its line names the log's root.
  std::string VerifyLine() {
    CommandResult r = RunSamsyncServer({"verify", "--data", server_data_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  // Everything an attack must leave as it was.
  struct Snapshot {
    nlohmann::json server, farsta, bromma;
    std::string verify;
  };
  // After both honest districts synced (so that their next sync has nothing to pull).
  Snapshot Take() {
    Sync(farsta_);
    Sync(bromma_);
    Snapshot s;
    s.server = ServerStatus();
    s.verify = VerifyLine();
    s.farsta = Json(farsta_, {"status"});
    s.bromma = Json(bromma_, {"status"});
    return s;
  }
  // No replica changed: the server's state hash, commits (its log's size), waiting
  // commits, log root; each honest district's next sync pulls nothing and its state is
  // the same.
  void ExpectNothingChanged(const Snapshot& before) {
    nlohmann::json after = ServerStatus();
    EXPECT_EQ(after["stateHash"], before.server["stateHash"]);
    EXPECT_EQ(after["commits"], before.server["commits"]);
    EXPECT_EQ(after["records"], before.server["records"]);
    EXPECT_EQ(after["waiting"], before.server["waiting"]);
    EXPECT_EQ(VerifyLine(), before.verify) << "the server's log or city view changed";
    for (auto [m, state] : {std::pair{&farsta_, &before.farsta}, std::pair{&bromma_, &before.bromma}}) {
      nlohmann::json synced = Sync(*m);
      EXPECT_EQ(synced["pulled"], 0) << m->name;
      EXPECT_EQ(synced["pushed"], 0) << m->name;
      nlohmann::json now = Json(*m, {"status"});
      EXPECT_EQ(now["stateHash"], (*state)["stateHash"]) << m->name;
      EXPECT_EQ(now["commits"], (*state)["commits"]) << m->name;
    }
  }
  // The server's log has a line holding every part of `parts`.
  void ExpectLogged(const std::vector<std::string>& parts) {
    std::string log = server_->Log();
    size_t start = 0;
    while (start < log.size()) {
      size_t end = log.find('\n', start);
      if (end == std::string::npos) end = log.size();
      std::string line = log.substr(start, end - start);
      bool all = true;
      for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return;
      start = end + 1;
    }
    ADD_FAILURE() << "no line of the server's log holds all of: " << ::testing::PrintToString(parts) << "\n" << log;
  }
  // Counts the attack: refused if the test has not failed.
  void CountAttack() {
    ++g_attacks_tried;
    if (!HasFailure()) ++g_attacks_refused;
  }
  // A commit pushed by the raw writer: refused with a reason holding `reason`.
  void ExpectPushRefused(const std::vector<std::vector<uint8_t>>& commits, const std::string& reason,
                         const TransportKey* transport = nullptr) {
    RawClient client(server_->endpoint(), server_->key(), transport ? *transport : raw_.transport());
    PushAnswer answer = Push(client, commits);
    ASSERT_TRUE(answer.answered) << "no answer to the push";
    EXPECT_EQ(answer.refused, "");
    EXPECT_EQ(answer.accepted, 0u);
    EXPECT_EQ(answer.waiting, 0u);
    ASSERT_EQ(answer.rejected.size(), commits.size());
    EXPECT_NE(answer.rejected[0].find(reason), std::string::npos) << answer.rejected[0];
  }

  TempDir dir_;
  std::vector<std::string> admin_;
  std::string server_data_;
  std::unique_ptr<SyncServerProcess> server_;
  std::string logs_;
  Machine farsta_, bromma_;
  RawDevice raw_, lost_, central_;
};

// 1. A commit in the raw writer's name, signed by another key.
TEST_F(AttackCliTest, ForgedSignatureIsRefused) {
  Snapshot before = Take();
  SigningKey forger = SigningKey::Generate();
  // The raw writer's next commit, its signature replaced by the forger's over the same
  // bytes: the commit names the raw writer as its author.
  capnp::MallocMessageBuilder honest_message;
  {
    CommitBuilder builder;
    Record school = RawDevice::NewSchool("Förfalskad skola", "Farsta");
    builder.AddSet(school, ChangedFields(nullptr, school));
    Commit shaped = builder.Sign(raw_.signing(), raw_.NextHeader());  // the raw writer's own, to copy its bytes
    std::vector<uint8_t> words_bytes = shaped.signed_bytes();
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(words_bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), words_bytes.data(), words_bytes.size());
    capnp::FlatArrayMessageReader reader(words);
    auto signed_commit = reader.getRoot<schema::SignedCommit>();
    auto commit_bytes = signed_commit.getCommit();
    std::string message = "samsync commit v1\n";
    message.append(reinterpret_cast<const char*>(commit_bytes.begin()), commit_bytes.size());
    Signature bad = forger.Sign({reinterpret_cast<const uint8_t*>(message.data()), message.size()});
    auto out = honest_message.initRoot<schema::SignedCommit>();
    out.setCommit(commit_bytes);
    out.setSignature(capnp::Data::Reader(bad.data(), bad.size()));
  }
  std::vector<uint8_t> forged_bytes = MessageBytes(honest_message);
  auto decoded = Commit::Decode(forged_bytes);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->author(), raw_.signing().public_key());
  ASSERT_FALSE(decoded->SignatureValid());

  ExpectPushRefused({forged_bytes}, "the signature does not verify");
  ExpectLogged({"refused", "raw writer", decoded->id().ToHex().substr(0, 16), "the signature does not verify"});
  ExpectNothingChanged(before);
  CountAttack();
}

// 2. A commit signed by a key the roster revoked, signed after the revocation, relayed
// by an admitted writer of its district.
TEST_F(AttackCliTest, CommitByARevokedKeyIsRefused) {
  Revoke(lost_.signing().public_key().ToHex());
  InstallRosterEverywhere();  // into the running server's store
  Snapshot before = Take();
  Commit late = lost_.Next("Skola efter spärren");
  ExpectPushRefused({Bytes(late)}, "revoked at");
  ExpectLogged({"refused", "raw writer", late.id().ToHex().substr(0, 16), "revoked at"});
  // Its own transport key does not get in at all.
  RawClient own(server_->endpoint(), server_->key(), lost_.transport());
  EXPECT_EQ(own.NextHandshakeEvent(5000), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  ExpectLogged({"refused", "handshake of transport key " + lost_.transport().public_key().ToHex().substr(0, 16),
                "revoked"});
  ExpectNothingChanged(before);
  CountAttack();
}

// A refused commit takes out only itself (and its device's later commits): the rest of
// the push is imported in a second attempt, and acknowledged.
TEST_F(AttackCliTest, ARefusedCommitDoesNotHoldUpTheRestOfItsPush) {
  Revoke(lost_.signing().public_key().ToHex());
  InstallRosterEverywhere();
  Commit late = lost_.Next("Skola efter spärren");
  Commit honest = raw_.Next("Skola före spärren");
  RawClient client(server_->endpoint(), server_->key(), raw_.transport());
  PushAnswer answer = Push(client, {Bytes(late), Bytes(honest)});
  ASSERT_TRUE(answer.answered) << "no answer to the push";
  EXPECT_EQ(answer.refused, "");
  EXPECT_EQ(answer.accepted, 1u);
  ASSERT_EQ(answer.rejected.size(), 1u);
  EXPECT_NE(answer.rejected[0].find("revoked at"), std::string::npos) << answer.rejected[0];
  ExpectLogged({"refused", "raw writer", late.id().ToHex().substr(0, 16), "revoked at"});
  // The honest commit is held: pushed again, it is a duplicate.
  PushAnswer again = Push(client, {Bytes(honest)});
  EXPECT_EQ(again.accepted, 0u);
  EXPECT_EQ(again.duplicates, 1u);
  EXPECT_TRUE(again.rejected.empty());
}

// 3. An old commit replayed: it is held already, so it is ignored (not applied twice),
// the reply says so and the log names it a replay.
TEST_F(AttackCliTest, ReplayOfAnOldCommitChangesNothing) {
  Snapshot before = Take();
  std::vector<std::vector<uint8_t>> old;
  RawClient client(server_->endpoint(), server_->key(), raw_.transport());
  // Pull the raw writer's commit back from the server (as an eavesdropper would have it).
  capnp::MallocMessageBuilder pull_message;
  auto pull = pull_message.initRoot<schema::SyncRequest>();
  pull.setProtocol(kSyncProtocol);
  pull.initPull().initHave(0);
  ASSERT_TRUE(client.Send(MessageBytes(pull_message)));
  auto reply = client.Receive(10000);
  ASSERT_TRUE(reply.has_value());
  auto pulled = SyncMessage<schema::SyncReply>::Read(*reply);
  ASSERT_TRUE(pulled.ok());
  ASSERT_TRUE(pulled->root().isCommits());
  for (auto data : pulled->root().getCommits().getCommits()) old.emplace_back(data.begin(), data.end());
  ASSERT_EQ(old.size(), 2u) << "the raw writer's commit and Farsta's";

  PushAnswer answer = Push(client, old);
  ASSERT_TRUE(answer.answered);
  EXPECT_EQ(answer.refused, "");
  EXPECT_EQ(answer.accepted, 0u);
  EXPECT_EQ(answer.duplicates, 2u);
  EXPECT_TRUE(answer.rejected.empty());
  ExpectLogged({"replay", "raw writer", "2 commits pushed are held already", "nothing changed"});
  ExpectNothingChanged(before);
  CountAttack();
}

// 4. A commit after a gap in its device's chain (seq 3 while the server holds 1).
TEST_F(AttackCliTest, CommitAfterASequenceGapIsRefused) {
  Snapshot before = Take();
  raw_.Next("Skola 2, never sent");
  Commit third = raw_.Next("Skola 3");
  ExpectPushRefused({Bytes(third)}, "the chain has a gap");
  ExpectLogged({"refused", "raw writer", third.id().ToHex().substr(0, 16), "seq 3", "gap"});
  ExpectNothingChanged(before);
  EXPECT_EQ(ServerStatus()["waiting"], 0) << "nothing waits in the server's store for the missing commit";
  CountAttack();
}

// 5. A cloned device: two different commits with one parent (seq 2 twice). The second
// is refused, logged as evidence of a cloned device with both commit ids, both signed
// commits kept, and `samsync-server status` lists the fork.
TEST_F(AttackCliTest, ForkOfADevicesChainIsRefusedAndKeptAsEvidence) {
  RawDevice clone = raw_;  // a copy of the store: same key, same chain
  Commit original = raw_.Next("Skola på originalet");
  Commit copy = clone.Next("Skola på klonen");
  ASSERT_EQ(original.seq(), copy.seq());
  ASSERT_EQ(original.parent(), copy.parent());
  ASSERT_NE(original.id(), copy.id());
  {
    RawClient client(server_->endpoint(), server_->key(), raw_.transport());
    PushAnswer first = Push(client, {Bytes(original)});
    ASSERT_EQ(first.accepted, 1u);
  }
  Snapshot before = Take();
  ExpectPushRefused({Bytes(copy)}, "evidence of a cloned device");
  ExpectLogged({"fork", raw_.signing().public_key().ToHex(), "signed two different commits as seq 2",
                original.id().ToHex(), copy.id().ToHex(), "evidence of a cloned device"});
  nlohmann::json status = ServerStatus();
  ASSERT_EQ(status["forks"].size(), 1u) << status.dump();
  EXPECT_EQ(status["forks"][0]["device"], raw_.signing().public_key().ToHex());
  EXPECT_EQ(status["forks"][0]["seq"], 2);
  EXPECT_EQ(status["forks"][0]["held"], original.id().ToHex());
  EXPECT_EQ(status["forks"][0]["offered"], copy.id().ToHex());
  std::string folder = status["forks"][0].value("evidence", "");
  EXPECT_EQ(Slurp(folder + "/offered.commit"), std::string(copy.signed_bytes().begin(), copy.signed_bytes().end()));
  EXPECT_EQ(Slurp(folder + "/held.commit"),
            std::string(original.signed_bytes().begin(), original.signed_bytes().end()));
  CommandResult text = RunSamsyncServer({"status", "--data", server_data_});
  EXPECT_NE(text.out.find("FORK: device " + raw_.signing().public_key().ToHex()), std::string::npos) << text.out;
  // The clone's next commit (on its own branch) is refused too, as the same evidence.
  Commit copy3 = clone.Next("Skola 3 på klonen");
  ExpectPushRefused({Bytes(copy3)}, "evidence of a cloned device");
  ExpectNothingChanged(before);
  CountAttack();
}

// 6. A Farsta writer writing Bromma's records: a commit of Bromma's district, and a
// Farsta commit that overwrites Bromma's school (its id, taken from Bromma's replica).
TEST_F(AttackCliTest, ADistrictWritingAnotherDistrictsRecordsIsRefused) {
  Snapshot before = Take();
  RawDevice as_bromma = raw_;
  as_bromma.district = "Bromma";
  Commit bromma_commit = as_bromma.Next("Brommas skola, från Farsta");
  ExpectPushRefused({Bytes(bromma_commit)}, "writes records of Bromma; this machine is a writer of Farsta");
  ExpectLogged({"refused", "raw writer", "writes records of Bromma"});

  nlohmann::json schools = Json(bromma_, {"list", "school"});
  ASSERT_TRUE(schools.is_array() && schools.size() == 1) << schools.dump();
  auto id = RecordId::Parse(schools[0].value("id", ""));
  ASSERT_TRUE(id.ok()) << schools.dump();
  Record hijacked = RawDevice::NewSchool("Kapad skola", "Farsta");
  hijacked.set_id(*id);
  Commit overwrite = raw_.Sign(raw_.NextHeader(), std::move(hijacked));
  ExpectPushRefused({Bytes(overwrite)}, "of Bromma, not of its own district Farsta");
  ExpectLogged({"refused", "raw writer", overwrite.id().ToHex().substr(0, 16), "of Bromma"});
  ExpectNothingChanged(before);
  CountAttack();
}

// 7. A central-office key pushing a commit.
TEST_F(AttackCliTest, ACentralOfficeKeyTryingToWriteIsRefused) {
  Snapshot before = Take();
  Commit commit = central_.Next("Centralt skrivet");
  RawClient client(server_->endpoint(), server_->key(), central_.transport());
  PushAnswer answer = Push(client, {Bytes(commit)});
  ASSERT_TRUE(answer.answered);
  EXPECT_NE(answer.refused.find("a central key may only pull"), std::string::npos) << answer.refused;
  ExpectLogged({"refused", "central office", "a central key may only pull"});
  ExpectNothingChanged(before);
  CountAttack();
}

// 8. A CURVE key the roster does not hold: the handshake is refused, nothing answered.
TEST_F(AttackCliTest, AnUnknownCurveKeyIsRefusedAtTheHandshake) {
  Snapshot before = Take();
  TransportKey stranger = TransportKey::Generate();
  RawClient client(server_->endpoint(), server_->key(), stranger);
  EXPECT_EQ(client.NextHandshakeEvent(5000), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  client.Send(PushRequest({Bytes(raw_.Next("Främlingens skola"))}));  // not taken, or never answered
  EXPECT_FALSE(client.Receive(1500).has_value()) << "the server answered a key it does not admit";
  ExpectLogged({"refused", "handshake of transport key " + stranger.public_key().ToHex().substr(0, 16),
                "not in the roster"});
  std::string log = server_->Log();
  size_t lines = 0;
  for (size_t at = log.find(stranger.public_key().ToHex().substr(0, 16)); at != std::string::npos;
       at = log.find(stranger.public_key().ToHex().substr(0, 16), at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << "a key knocking again is logged once a minute, not at every retry";
  ExpectNothingChanged(before);
  CountAttack();
}

// 9. A client claiming a huge batch: more commits than a push may hold, or more bytes
// (several commits over 4 MiB): refused whole, before any commit is read.
TEST_F(AttackCliTest, AClientClaimingAHugeBatchIsRefused) {
  Snapshot before = Take();
  RawClient client(server_->endpoint(), server_->key(), raw_.transport());
  std::vector<std::vector<uint8_t>> many(kMaxBatchCommits * 50, std::vector<uint8_t>(1, 0x42));
  PushAnswer count = Push(client, many);
  ASSERT_TRUE(count.answered);
  EXPECT_NE(count.refused.find("a push may hold at most 1000 commits, not 50000"), std::string::npos) << count.refused;
  ExpectLogged({"refused", "raw writer", "at most 1000 commits"});

  std::vector<std::vector<uint8_t>> large(4, std::vector<uint8_t>(static_cast<size_t>(3) << 20));
  for (auto& junk : large) randombytes_buf(junk.data(), junk.size());
  PushAnswer bytes = Push(client, large);
  ASSERT_TRUE(bytes.answered);
  EXPECT_NE(bytes.refused.find("may hold at most 4194304 bytes, not 12582912"), std::string::npos) << bytes.refused;
  ExpectLogged({"refused", "raw writer", "at most 4194304 bytes"});
  ExpectNothingChanged(before);
  CountAttack();
}

// 10. A checkpoint of another log (another origin), signed by a key the roster names as
// a server: the witness code refuses it (here through `samsync audit compare`, the
// check every sync makes of the checkpoint it is served).
TEST_F(AttackCliTest, ACheckpointFromAnotherOriginIsRefused) {
  SigningKey standby = SigningKey::Generate();  // a second server the city enrolled
  EnrolKeys(standby.public_key().ToHex(), TransportKey::Generate().public_key().ToHex(), "server", "", "standby");
  InstallRosterEverywhere();
  Snapshot before = Take();
  Checkpoint ours{LogOrigin("stockholm.se"), 1, Sha256(std::span<const uint8_t>()), {}};
  Checkpoint theirs{"goteborg.se/samsync", 1, ours.root, {}};
  auto sign = [&](const Checkpoint& checkpoint, const std::string& file) {
    auto text = FormatCheckpoint(checkpoint);
    ASSERT_TRUE(text.ok());
    auto note = SignNote(*text, LogOrigin("stockholm.se"), standby);
    ASSERT_TRUE(note.ok()) << note.status().message();
    Spit(file, *note);
  };
  sign(ours, dir_.Sub("ours.checkpoint"));
  sign(theirs, dir_.Sub("theirs.checkpoint"));
  CommandResult same = Run(farsta_, {"audit", "compare", dir_.Sub("ours.checkpoint"), dir_.Sub("ours.checkpoint")});
  EXPECT_EQ(same.exit_code, 0) << same.err << " (the standby's checkpoint of this city's log is accepted)";
  CommandResult refused =
      Run(farsta_, {"audit", "compare", dir_.Sub("ours.checkpoint"), dir_.Sub("theirs.checkpoint")});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(refused.err.find('\n'), refused.err.size() - 1) << refused.err;
  EXPECT_NE(refused.err.find("is of the log 'goteborg.se/samsync', not 'stockholm.se/samsync'"), std::string::npos)
      << refused.err;
  // The engine's witness check says the same of the served note.
  auto roster_bytes = Slurp(Roster());
  auto roster = samsync::Roster::Open({reinterpret_cast<const uint8_t*>(roster_bytes.data()), roster_bytes.size()});
  ASSERT_TRUE(roster.ok());
  auto opened = OpenCheckpoint(Slurp(dir_.Sub("theirs.checkpoint")), *roster);
  EXPECT_EQ(opened.status().code(), Code::kInvalidInput) << opened.status().message();
  ExpectNothingChanged(before);
  CountAttack();
}

// 11. A roster rollback: an older roster installed on the server or a district machine
// after a newer one is refused with a clear error, and the installed version stays.
TEST_F(AttackCliTest, ARosterRollbackIsRefused) {
  std::string old_roster = dir_.Sub("old.roster");
  fs::copy_file(Roster(), old_roster);
  uint64_t old_version = ServerStatus()["rosterVersion"].get<uint64_t>();
  Revoke(lost_.signing().public_key().ToHex());  // the newer roster revokes the lost laptop
  InstallRosterEverywhere();
  Snapshot before = Take();
  ASSERT_EQ(before.server["rosterVersion"], old_version + 1);

  CommandResult server = RunSamsyncServer({"roster", "import", "--data", server_data_, old_roster});
  ExpectOneLine(server, 2, "version " + std::to_string(old_version));
  EXPECT_NE(server.err.find(std::to_string(old_version + 1)), std::string::npos) << server.err;
  CommandResult district = Run(farsta_, {"roster", "import", old_roster});
  ExpectOneLine(district, 2, "version " + std::to_string(old_version));
  EXPECT_EQ(ServerStatus()["rosterVersion"], old_version + 1);
  // The lost laptop stays revoked: its key is still refused.
  RawClient own(server_->endpoint(), server_->key(), lost_.transport());
  EXPECT_EQ(own.NextHandshakeEvent(5000), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  ExpectNothingChanged(before);
  CountAttack();
}

// A lost laptop revoked while the server runs: its next sync is refused (no restart
// of anything), a colleague's machine still syncs, the laptop's earlier commits still
// verify on the server, on the colleague's machine and for an auditor, and after a
// server restart the laptop is still refused.
TEST_F(AttackCliTest, ARevokedLaptopIsRefusedAndItsEarlierCommitsStillVerify) {
  Machine laptop = NewMachine("laptop", "Farsta");
  Machine auditor = NewMachine("auditor", "", /*city_wide=*/true);
  EnrolKeys(laptop.device_key, laptop.transport_key, "writer", "Farsta", "farsta laptop");
  EnrolKeys(auditor.device_key, auditor.transport_key, "auditor", "", "audit office");
  InstallRosterEverywhere();
  Ok(laptop, {"roster", "import", Roster()});
  Ok(auditor, {"roster", "import", Roster()});
  AddSchool(laptop, "Laptopskolan 1");
  AddSchool(laptop, "Laptopskolan 2");
  EXPECT_EQ(Sync(laptop)["pushed"], 2);
  uint64_t commits_before = ServerStatus()["commits"].get<uint64_t>();

  Revoke(laptop.device_key);
  CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, Roster()});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;  // the server keeps running
  AddSchool(laptop, "Laptopskolan 3, efter förlusten");
  CommandResult refused = Run(laptop, SyncArgs({"--timeout", "3"}));
  ExpectOneLine(refused, 3, "does not admit this machine's key");
  ExpectLogged({"refused", "handshake of transport key " + laptop.transport_key.substr(0, 16), "revoked",
                "farsta laptop"});

  // The colleague's machine, untouched (its own roster still the old one), syncs.
  AddSchool(farsta_, "Farstaskolan 2");
  nlohmann::json synced = Sync(farsta_);
  EXPECT_EQ(synced["pushed"], 1);
  EXPECT_EQ(synced["pulled"], 2) << "the laptop's commits from before the revocation";
  EXPECT_EQ(ServerStatus()["commits"], commits_before + 1);
  std::string verified = VerifyLine();
  EXPECT_NE(verified.find("verify: ok: " + std::to_string(commits_before + 1) + " commits"), std::string::npos)
      << verified;
  // With the new roster installed, the colleague's replica still verifies the
  // laptop's earlier commits (signed before the revocation).
  Ok(farsta_, {"roster", "import", Roster()});
  CommandResult local = Run(farsta_, {"verify"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  // The auditor fetches the log and verifies it offline.
  Ok(auditor, {"roster", "import", Roster()});
  std::string bundle = dir_.Sub("city.audit");
  CommandResult fetched = Run(auditor, {"audit", "fetch", bundle, "--server", server_->endpoint(), "--server-key",
                                        server_->key()});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  CommandResult audited = Run(auditor, {"audit", "verify", bundle, "--json"});
  EXPECT_EQ(audited.exit_code, 0) << audited.out << audited.err;
  nlohmann::json audit = ParseJson(audited.out);
  EXPECT_EQ(audit["ok"], true) << audited.out;

  // After a restart the laptop is still refused.
  StartServer();
  CommandResult again = Run(laptop, SyncArgs({"--timeout", "3"}));
  ExpectOneLine(again, 3, "does not admit this machine's key");
  EXPECT_EQ(ServerStatus()["commits"], commits_before + 1);
}

}  // namespace
}  // namespace samsync
