// `samsync audit verify` and `samsync audit compare`, run as the real binary against
// audit bundles and checkpoints written by the engine (the server side is
// audit_test.cc's business): the report people read, the JSON programs read, the exit
// codes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "samsync/audit.h"
#include "samsync/history.h"
#include "samsync/note.h"
#include "samsync/roster.h"
#include "samsync/store.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::AddSchool;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::TempDir;
using testing::TestStore;

constexpr int64_t kStart = 1479211200000;

std::string Tmp() { return ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; }

void Push(Store& from, Store& to) {
  auto heads = to.Heads();
  ASSERT_TRUE(heads.ok());
  std::vector<std::vector<uint8_t>> bytes;
  ASSERT_TRUE(from.CommitsAfter(*heads, [&](const Commit& c) {
                    bytes.push_back(c.signed_bytes());
                    return true;
                  }).ok());
  size_t next = 0;
  auto imported = to.ImportCommits([&]() -> Result<std::optional<Commit>> {
    if (next == bytes.size()) return std::optional<Commit>();
    SAMSYNC_ASSIGN_OR_RETURN(Commit c, Commit::Decode(bytes[next++]));
    return std::optional<Commit>(std::move(c));
  });
  ASSERT_TRUE(imported.ok()) << imported.status().message();
}

RosterEntry Entry(const Store& store, std::string district, Role role, std::string label) {
  RosterEntry entry;
  entry.signing_key = store.device_key();
  entry.transport_key = store.transport_key();
  entry.district = std::move(district);
  entry.role = role;
  entry.label = std::move(label);
  return entry;
}

// One Skarpnäck and one Farsta device, and the sync server's store; the checkpoint
// cosigned by Skarpnäck only (so the report names Farsta as missing).
class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_dir_ = dirs_.Sub("server");
    ASSERT_TRUE(CreateKeyFile(server_dir_ + ".key").ok());
    CreateOptions options;
    options.city_wide = true;
    options.transparency_log = true;
    auto server = Store::Create(server_dir_, KeySource::KeyFile(server_dir_ + ".key"), std::move(options), clock_);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    auto roster = Roster::Sign(root_, "stockholm.se", 1, kStart,
                               {Entry(skarpnack_.store(), "Skarpnäck", Role::kWriter, "skarpnäck laptop"),
                                Entry(farsta_.store(), "Farsta", Role::kWriter, "farsta laptop"),
                                Entry(*server_, "", Role::kServer, "sync server")});
    ASSERT_TRUE(roster.ok());
    roster_ = *roster;
    for (Store* s : {&skarpnack_.store(), &farsta_.store(), server_.get()}) {
      ASSERT_TRUE(s->InstallRoster(roster->signed_bytes()).ok());
    }
    Work(3);
  }

  void Work(int rounds) {
    for (int i = 0; i < rounds; ++i) {
      for (TestStore* t : {&skarpnack_, &farsta_}) {
        t->clock().AdvanceMs(60'000);
        AddSchool(t->store(), "Skolan " + std::to_string(n_++));
        Push(t->store(), *server_);
      }
    }
  }

  // Writes the server's log as an audit bundle; `tamper` may alter the commits first.
  std::string Bundle(Store& server, const std::function<void(std::vector<std::vector<uint8_t>>&)>& tamper = nullptr) {
    auto checkpoint = server.SignCheckpoint();
    EXPECT_TRUE(checkpoint.ok());
    auto note = ParseNote(checkpoint->note);
    auto line = skarpnack_->CosignCheckpoint(note->text);
    EXPECT_TRUE(server.AddCosignature({checkpoint->size, skarpnack_->device_key(), *line}).ok());
    std::vector<std::vector<uint8_t>> commits;
    EXPECT_TRUE(server.LogCommits(0, [&](uint64_t, const Commit& c) {
                        commits.push_back(c.signed_bytes());
                        return true;
                      }).ok());
    if (tamper) tamper(commits);
    std::string path = dirs_.Sub("city-" + std::to_string(bundles_++) + ".audit");
    auto writer = AuditBundleWriter::Create(path, "tcp://127.0.0.1:7400", kStart);
    EXPECT_TRUE(writer.ok());
    auto rosters = server.RosterHistory();
    EXPECT_TRUE(rosters.ok());
    for (const auto& r : *rosters) EXPECT_TRUE(writer->AddRoster(r).ok());
    EXPECT_TRUE(writer->SetCheckpoint(server.CheckpointAt(checkpoint->size)->note, *server.SignStateStatement()).ok());
    for (const auto& c : commits) EXPECT_TRUE(writer->AddCommit(c).ok());
    EXPECT_TRUE(writer->Finish().ok());
    return path;
  }

  std::string CheckpointFile(Store& server, const std::string& name) {
    std::string path = dirs_.Sub(name);
    std::ofstream(path) << server.SignCheckpoint()->note;
    return path;
  }

  CommandResult Run(std::vector<std::string> args, std::vector<std::string> env = {}) {
    env.push_back("TMPDIR=" + Tmp());
    return RunSamsync(args, env);
  }

  std::string RootHex() const { return root_.public_key().ToHex(); }

  TempDir dirs_;
  SigningKey root_ = SigningKey::Generate();
  TestStore skarpnack_{"Skarpnäck"}, farsta_{"Farsta"};
  FixedClock clock_{kStart + 3'600'000};
  std::string server_dir_;
  std::unique_ptr<Store> server_;
  Roster roster_;
  int n_ = 0;
  int bundles_ = 0;
};

TEST_F(AuditCliTest, AGoodBundleVerifies) {
  std::string bundle = Bundle(*server_);
  CommandResult r = Run({"audit", "verify", bundle, "--root-key", RootHex()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* expected : {"stockholm.se/samsync: 6 entries", "roster version 1 (1 in the bundle)", "format",
                               "rosters", "checkpoint", "commits", "tree", "state", "passed",
                               "cosigned by  Skarpnäck: skarpnäck laptop", "not by: Farsta", "commits/s"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
  const std::string last = "audit verify: ok\n";
  ASSERT_GE(r.out.size(), last.size());
  EXPECT_EQ(r.out.substr(r.out.size() - last.size()), last) << r.out;
  std::cout << r.out;

  CommandResult json = Run({"audit", "verify", bundle, "--root-key", RootHex(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["commits"], 6);
  EXPECT_EQ(report["treeSize"], 6);
  EXPECT_EQ(report["ops"], 6);
  EXPECT_EQ(report["origin"], "stockholm.se/samsync");
  EXPECT_EQ(report["root"], report["computedRoot"]);
  EXPECT_EQ(report["stateHash"], report["statedStateHash"]);
  EXPECT_EQ(report["stateHash"], server_->Summary()->state_hash.ToHex());
  EXPECT_TRUE(report["failure"].is_null());
  ASSERT_EQ(report["checks"].size(), 6u);
  EXPECT_EQ(report["checks"][3]["name"], "commits");
  for (const auto& check : report["checks"]) EXPECT_EQ(check["outcome"], "passed") << check;
  ASSERT_EQ(report["cosigners"].size(), 1u);
  EXPECT_EQ(report["cosigners"][0]["district"], "Skarpnäck");
}

TEST_F(AuditCliTest, TheTrustAnchorCanBeTheLocalStoresRoster) {
  std::string bundle = Bundle(*server_);
  CommandResult r =
      Run({"audit", "verify", bundle}, {"SAMSYNC_STORE=" + farsta_.dir(), "SAMSYNC_KEY_FILE=" + farsta_.key_file()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectOneLineError(Run({"audit", "verify", bundle}), 2, "no trust anchor: pass --root-key");
}

TEST_F(AuditCliTest, ATamperedBundleFailsNamingTheCommit) {
  std::string bundle = Bundle(*server_, [](std::vector<std::vector<uint8_t>>& commits) {
    std::vector<uint8_t>& c = commits[2];
    size_t at = std::string(c.begin(), c.end()).find("Skolan");
    c[at] = 's';
  });
  CommandResult r = Run({"audit", "verify", bundle, "--root-key", RootHex()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("audit verify: FAILED — commits: leaf 2, commit "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(skarpnäck laptop, Skarpnäck): the signature does not verify"), std::string::npos) << r.out;
  std::cout << r.out;

  CommandResult json = Run({"audit", "verify", bundle, "--root-key", RootHex(), "--json"});
  EXPECT_EQ(json.exit_code, 1);
  auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["failure"]["check"], "commits");
  EXPECT_EQ(report["failure"]["leaf"], 2);
  EXPECT_EQ(report["failure"]["seq"], 2);
  EXPECT_EQ(report["checks"][4]["outcome"], "failed");   // the tree
  EXPECT_EQ(report["checks"][5]["outcome"], "not run");  // the state
}

TEST_F(AuditCliTest, BadInputExitsTwo) {
  std::string bundle = Bundle(*server_);
  ExpectOneLineError(Run({"audit", "verify", dirs_.Sub("none.audit"), "--root-key", RootHex()}), 2, "does not exist");
  std::string note = CheckpointFile(*server_, "checkpoint.txt");
  ExpectOneLineError(Run({"audit", "verify", note, "--root-key", RootHex()}), 2, "is not a samsync audit bundle");
  ExpectOneLineError(Run({"audit", "verify", bundle, "--root-key", "abc"}), 2, "--root-key");
  // Another city's root key: the rosters fail (a check, exit 1).
  CommandResult r = Run({"audit", "verify", bundle, "--root-key", SigningKey::Generate().public_key().ToHex()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("audit verify: FAILED — rosters: roster 1 of the bundle: it is not signed by the city's root key"),
            std::string::npos)
      << r.out;
}

TEST_F(AuditCliTest, CompareSaysConsistentWithTheProof) {
  std::string early = CheckpointFile(*server_, "early.checkpoint");
  Work(2);
  std::string bundle = Bundle(*server_);
  CommandResult r = Run({"audit", "compare", early, bundle, "--root-key", RootHex()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("consistent: stockholm.se/samsync\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("proof  RFC 6962 consistency proof from 6 to 10"), std::string::npos) << r.out;
  std::cout << r.out;

  CommandResult json = Run({"audit", "compare", early, bundle, "--root-key", RootHex(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto out = nlohmann::json::parse(json.out);
  EXPECT_EQ(out["verdict"], "consistent");
  EXPECT_EQ(out["a"]["kind"], "checkpoint");
  EXPECT_EQ(out["b"]["kind"], "audit bundle");
  EXPECT_EQ(out["a"]["size"], 6);
  EXPECT_EQ(out["b"]["size"], 10);
  std::vector<std::string> proof;
  auto expected = server_->LogConsistencyProof(6, 10);
  ASSERT_TRUE(expected.ok());
  for (const Hash& h : *expected) proof.push_back(h.ToHex());
  EXPECT_EQ(out["proof"], proof);

  // Two checkpoint files of different sizes, no leaves: bad input, saying what to give.
  std::string later = CheckpointFile(*server_, "later.checkpoint");
  ExpectOneLineError(Run({"audit", "compare", early, later, "--root-key", RootHex(), "--bundle", dirs_.Sub("x")}), 2,
                     "does not exist");
  ExpectOneLineError(Run({"audit", "compare", early, later},
                         {"SAMSYNC_STORE=" + farsta_.dir(), "SAMSYNC_KEY_FILE=" + farsta_.key_file()}),
                     2, "give an audit bundle holding the larger checkpoint's leaves");
  EXPECT_EQ(Run({"audit", "compare", early, later, "--bundle", bundle, "--root-key", RootHex()}).exit_code, 0);
}

TEST_F(AuditCliTest, CompareShowsASplitViewWithTheEvidence) {
  // A second server store with the same log key (a copy of the folder) that diverges.
  server_.reset();
  fs::copy(server_dir_, dirs_.Sub("fork"), fs::copy_options::recursive);
  fs::copy_file(server_dir_ + ".key", dirs_.Sub("fork.key"));
  server_ = std::move(Store::Open(server_dir_, KeySource::KeyFile(server_dir_ + ".key"), clock_)).value();
  auto fork = std::move(Store::Open(dirs_.Sub("fork"), KeySource::KeyFile(dirs_.Sub("fork.key")), clock_)).value();
  AddSchool(farsta_.store(), "Bara Farsta ser denna");
  Push(farsta_.store(), *server_);
  AddSchool(skarpnack_.store(), "Bara Skarpnäck ser denna");
  Push(skarpnack_.store(), *fork);
  std::string a = CheckpointFile(*server_, "farsta.checkpoint");
  std::string b = CheckpointFile(*fork, "skarpnack.checkpoint");
  CommandResult r = Run({"audit", "compare", a, b, "--root-key", RootHex(), "--bundle", Bundle(*server_)});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("split view: stockholm.se/samsync\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("the log key signed two different trees of 7 leaves"), std::string::npos) << r.out;
  for (const std::string& file : {a, b}) {
    std::ifstream in(file);
    std::string note{std::istreambuf_iterator<char>(in), {}};
    EXPECT_NE(r.out.find(note), std::string::npos) << r.out;  // the evidence, whole
  }
  std::cout << r.out;

  // Different sizes: the larger one's bundle proves the smaller is not its prefix.
  AddSchool(skarpnack_.store(), "Och denna");
  Push(skarpnack_.store(), *fork);
  std::string larger = Bundle(*fork);
  CommandResult d = Run({"audit", "compare", a, larger, "--root-key", RootHex(), "--json"});
  EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
  auto out = nlohmann::json::parse(d.out);
  EXPECT_EQ(out["verdict"], "split view");
  EXPECT_EQ(out["leavesFrom"], larger);
}

}  // namespace
}  // namespace samsync
