// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the
// real engine: a small city's stores, commits, bundles, rosters, notes and CSV files,
// plus a few known-tricky variants of each. Run by hand when a format changes:
//   SAMSYNC_FUZZ_SEEDS_OUT=tests/fuzz/corpus build-fuzz/tests/fuzz/make_fuzz_seeds
// and commit what it wrote. It also writes bundle_import_roster.bin, the roster the
// bundle target's store installs (it names the seed bundles' author). Not a ctest.
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_keys.h"
#include "samsync/audit.h"
#include "samsync/csv.h"
#include "samsync/date.h"
#include "samsync/demo_data.h"
#include "samsync/history.h"
#include "samsync/note.h"
#include "samsync/record_fields.h"
#include "samsync/roster.h"
#include "samsync/store.h"
#include "samsync/sync_protocol.h"
#include "samsync/witness.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::AddSchool;
using testing::TempDir;
using testing::TestStore;

constexpr int64_t kStart = 1479211200000;  // TestStore's clock

std::string OutDir() {
  const char* out = std::getenv("SAMSYNC_FUZZ_SEEDS_OUT");
  return out != nullptr ? out : "";
}

void WriteSeed(const std::string& target, const std::string& name, std::string_view bytes) {
  fs::path dir = fs::path(OutDir()) / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
void WriteSeed(const std::string& target, const std::string& name, std::span<const uint8_t> bytes) {
  WriteSeed(target, name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

RosterEntry Entry(const Store& store, std::string district, Role role, std::string label) {
  RosterEntry entry;
  entry.signing_key = store.device_key();
  entry.transport_key = store.transport_key();
  entry.district = std::move(district);
  entry.role = role;
  entry.label = std::move(label);
  entry.added_ms = kStart;
  return entry;
}

void Rename(Store& store, const RecordId& id, const std::string& name) {
  auto record = store.Get(id);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(SetFieldFromText(*record, *FindField(RecordType::kSchool, "name"), name).ok());
  WriteBatch batch;
  batch.Put(std::move(*record));
  ASSERT_TRUE(store.Apply(batch).ok());
}

std::vector<std::vector<uint8_t>> CommitsOf(const Store& store) {
  std::vector<std::vector<uint8_t>> bytes;
  EXPECT_TRUE(store.CommitsAfter({}, [&](const Commit& c) {
                     bytes.push_back(c.signed_bytes());
                     return true;
                   }).ok());
  return bytes;
}

void Import(Store& to, const std::vector<std::vector<uint8_t>>& bytes) {
  size_t next = 0;
  auto imported = to.ImportCommits([&]() -> Result<std::optional<Commit>> {
    if (next == bytes.size()) return std::optional<Commit>();
    SAMSYNC_ASSIGN_OR_RETURN(Commit c, Commit::Decode(bytes[next++]));
    return std::optional<Commit>(std::move(c));
  });
  ASSERT_TRUE(imported.ok()) << imported.status().message();
}

// Every seed and its variants: bytes cut short, one byte flipped, one appended.
void WriteWithVariants(const std::string& target, const std::string& name, const std::string& bytes) {
  WriteSeed(target, name, bytes);
  WriteSeed(target, name + "-cut", bytes.substr(0, bytes.size() * 2 / 3));
  std::string flipped = bytes;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x40);
  WriteSeed(target, name + "-flipped", flipped);
  WriteSeed(target, name + "-trailing", bytes + std::string(8, '\0'));
}

class SeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (OutDir().empty()) GTEST_SKIP() << "set SAMSYNC_FUZZ_SEEDS_OUT to the corpus folder";
    server_dir_ = dirs_.Sub("server");
    ASSERT_TRUE(CreateKeyFile(server_dir_ + ".key").ok());
    CreateOptions options;
    options.city_wide = true;
    options.transparency_log = true;
    auto server = Store::Create(server_dir_, KeySource::KeyFile(server_dir_ + ".key"), std::move(options), clock_);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    std::vector<RosterEntry> entries = {Entry(s1_.store(), "Skarpnäck", Role::kWriter, "skarpnäck 1"),
                                        Entry(f1_.store(), "Farsta", Role::kWriter, "farsta 1"),
                                        Entry(*server_, "", Role::kServer, "sync server")};
    auto v1 = fuzz::FixedRoster(1, entries);
    ASSERT_TRUE(v1.ok()) << v1.status().message();
    auto v2 = fuzz::FixedRoster(2, entries);
    ASSERT_TRUE(v2.ok()) << v2.status().message();
    rosters_ = {v1->signed_bytes(), v2->signed_bytes()};
    for (Store* s : {&s1_.store(), &f1_.store(), server_.get()}) {
      ASSERT_TRUE(s->InstallRoster(v1->signed_bytes()).ok());
      ASSERT_TRUE(s->InstallRoster(v2->signed_bytes()).ok());
    }
    for (int round = 0; round < 2; ++round) {
      for (TestStore* t : {&s1_, &f1_}) {
        t->clock().AdvanceMs(60'000);
        RecordId school = AddSchool(t->store(), "Skolan " + std::to_string(round));
        Rename(t->store(), school, "Nya skolan " + std::to_string(round));
      }
    }
    Import(*server_, CommitsOf(s1_.store()));
    Import(*server_, CommitsOf(f1_.store()));
  }

  TempDir dirs_;
  FixedClock clock_{kStart};
  TestStore s1_{"Skarpnäck"}, f1_{"Farsta"};
  std::string server_dir_;
  std::unique_ptr<Store> server_;
  std::vector<std::vector<uint8_t>> rosters_;
};

TEST_F(SeedTest, SyncRequests) {
  auto request = [](const std::string& name, uint32_t protocol, auto fill) {
    capnp::MallocMessageBuilder message;
    auto root = message.initRoot<schema::SyncRequest>();
    root.setProtocol(protocol);
    fill(root);
    WriteSeed("sync_request", name, MessageBytes(message));
  };
  std::vector<std::vector<uint8_t>> commits = CommitsOf(s1_.store());
  auto heads = server_->Heads();
  ASSERT_TRUE(heads.ok());
  request("hello", kSyncProtocol, [](auto root) { root.setHello(); });
  request("hello-protocol-2", 2, [](auto root) { root.setHello(); });
  request("push", kSyncProtocol, [&](auto root) {
    auto list = root.initPush(static_cast<unsigned>(commits.size()));
    for (unsigned i = 0; i < commits.size(); ++i) list.set(i, capnp::Data::Reader(commits[i].data(), commits[i].size()));
  });
  request("push-garbage", kSyncProtocol, [&](auto root) {
    auto list = root.initPush(2);
    std::vector<uint8_t> cut(commits[0].begin(), commits[0].begin() + 40);
    list.set(0, capnp::Data::Reader(cut.data(), cut.size()));
    list.set(1, capnp::Data::Reader(commits[1].data(), commits[1].size() - 8));
  });
  request("pull", kSyncProtocol, [&](auto root) {
    auto pull = root.initPull();
    WriteSeen(pull.initHave(static_cast<unsigned>(heads->size())), *heads);
    pull.setMaxCommits(10);
    pull.setMaxBytes(1 << 20);
  });
  request("pull-seq0", kSyncProtocol, [&](auto root) {
    auto have = root.initPull().initHave(1);
    uint8_t key[31] = {};
    have[0].setDevice(capnp::Data::Reader(key, sizeof key));
    have[0].setSeq(0);
  });
  request("checkpoint", kSyncProtocol, [](auto root) { root.setCheckpoint(3); });
  auto checkpoint = server_->SignCheckpoint();
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  auto note = ParseNote(checkpoint->note);
  ASSERT_TRUE(note.ok());
  auto line = s1_.store().CosignCheckpoint(note->text);
  ASSERT_TRUE(line.ok()) << line.status().message();
  request("cosign", kSyncProtocol, [&](auto root) {
    auto cosign = root.initCosign();
    cosign.setSize(checkpoint->size);
    cosign.setLine(*line);
  });
  request("exchange", kSyncProtocol, [&](auto root) {
    auto exchange = root.initExchange();
    auto list = exchange.initPush(1);
    list.set(0, capnp::Data::Reader(commits[0].data(), commits[0].size()));
    auto pull = exchange.initPull();
    WriteSeen(pull.initHave(static_cast<unsigned>(heads->size())), *heads);
    exchange.setSeenSize(1);
    auto cosign = exchange.initCosign();
    cosign.setSize(checkpoint->size);
    cosign.setLine(*line);
  });
  auto first = Commit::Decode(commits[0]);
  ASSERT_TRUE(first.ok());
  request("prove", kSyncProtocol, [&](auto root) {
    auto prove = root.initProve();
    prove.setCommit(capnp::Data::Reader(first->id().bytes.data(), 32));
    prove.setSeenSize(1);
  });
  request("audit", kSyncProtocol, [](auto root) {
    auto page = root.initAudit();
    page.setFrom(0);
    page.setMaxCommits(2);
  });
  // A reply where a request belongs: its union's pointers are of other kinds.
  capnp::MallocMessageBuilder reply;
  auto root = reply.initRoot<schema::SyncReply>();
  root.setProtocol(kSyncProtocol);
  root.initCheckpoint().setNote(checkpoint->note);
  WriteSeed("sync_request", "a-reply", MessageBytes(reply));
}

TEST_F(SeedTest, Bundles) {
  std::string path = dirs_.Sub("s1.bundle");
  auto exported = s1_->ExportBundle(path, {});
  ASSERT_TRUE(exported.ok()) << exported.status().message();
  WriteWithVariants("bundle_import", "s1-all", ReadFile(path));
  auto heads = s1_->Heads();
  ASSERT_TRUE(heads.ok());
  std::string empty = dirs_.Sub("empty.bundle");
  ASSERT_TRUE(s1_->ExportBundle(empty, *heads).ok());
  WriteSeed("bundle_import", "s1-nothing-new", ReadFile(empty));
  // The roster the bundle target's store installs: it enrols s1's key.
  std::ofstream(fs::path(OutDir()) / ".." / "bundle_import_roster.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(rosters_.back().data()), static_cast<std::streamsize>(rosters_.back().size()));
}

TEST_F(SeedTest, AuditBundles) {
  auto checkpoint = server_->SignCheckpoint();
  ASSERT_TRUE(checkpoint.ok());
  auto note = ParseNote(checkpoint->note);
  ASSERT_TRUE(note.ok());
  for (TestStore* t : {&s1_, &f1_}) {
    auto line = t->store().CosignCheckpoint(note->text);
    ASSERT_TRUE(line.ok());
    ASSERT_TRUE(server_->AddCosignature({checkpoint->size, t->store().device_key(), *line}).ok());
  }
  auto held = server_->CheckpointAt(checkpoint->size);
  ASSERT_TRUE(held.ok());
  auto statement = server_->SignStateStatement();
  ASSERT_TRUE(statement.ok());
  std::string path = dirs_.Sub("city.audit");
  {
    auto writer = AuditBundleWriter::Create(path, "tcp://127.0.0.1:7400", kStart);
    ASSERT_TRUE(writer.ok());
    for (const auto& roster : rosters_) ASSERT_TRUE(writer->AddRoster(roster).ok());
    ASSERT_TRUE(writer->SetCheckpoint(held->note, *statement).ok());
    ASSERT_TRUE(server_->LogCommits(0, [&](uint64_t, const Commit& c) {
                          EXPECT_TRUE(writer->AddCommit(c.signed_bytes()).ok());
                          return true;
                        }).ok());
    ASSERT_TRUE(writer->Finish().ok());
  }
  AuditOptions options;
  options.root_key = fuzz::RootKey().public_key();
  options.temp_dir = dirs_.path();
  auto report = VerifyAuditBundle(path, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_TRUE(report->ok()) << "the seed audit bundle must verify";
  WriteWithVariants("audit_verify", "city", ReadFile(path));
  // The server's own notes are seeds of the note target too (another roster there:
  // they open as notes of a log whose key that roster does not hold).
  WriteSeed("note", "server-checkpoint", held->note);
  WriteSeed("note", "server-statement", *statement);
}

TEST_F(SeedTest, Notes) {
  auto text = FormatCheckpoint({std::string(LogOrigin(fuzz::kCity)), 5, Sha256(std::vector<uint8_t>{1, 2, 3}), {}});
  ASSERT_TRUE(text.ok());
  auto signed_note = SignNote(*text, LogOrigin(fuzz::kCity), fuzz::LogKey());
  ASSERT_TRUE(signed_note.ok());
  auto note = ParseNote(*signed_note);
  ASSERT_TRUE(note.ok());
  for (int i = 0; i < 2; ++i) {
    auto cosignature = CosignCheckpoint(*text, WitnessName(LogOrigin(fuzz::kCity), fuzz::WitnessKey(i).public_key()),
                                        fuzz::WitnessKey(i), 1479211200 + static_cast<uint64_t>(i));
    ASSERT_TRUE(cosignature.ok()) << cosignature.status().message();
    note->signatures.push_back(*cosignature);
  }
  auto cosigned = FormatNote(*note);
  ASSERT_TRUE(cosigned.ok());
  WriteSeed("note", "checkpoint", *signed_note);
  WriteSeed("note", "checkpoint-cosigned", *cosigned);
  std::string statement_text = FormatStateStatement({std::string(LogOrigin(fuzz::kCity)), 5, Sha256(std::vector<uint8_t>{4})});
  auto statement = SignNote(statement_text, LogOrigin(fuzz::kCity), fuzz::LogKey());
  ASSERT_TRUE(statement.ok());
  WriteSeed("note", "statement", *statement);
  auto extended = FormatCheckpoint({std::string(LogOrigin(fuzz::kCity)), 18446744073709551615u,
                                    Sha256(std::vector<uint8_t>{}), {"an extension line"}});
  ASSERT_TRUE(extended.ok());
  auto extended_note = SignNote(*extended, LogOrigin(fuzz::kCity), fuzz::WitnessKey(0));
  ASSERT_TRUE(extended_note.ok());
  WriteSeed("note", "checkpoint-max-size-other-key", *extended_note);
  WriteSeed("note", "no-blank-line", "stockholm.se/samsync\n5\nAAAA\n— stockholm.se/samsync AAAAAAAA\n");
  WriteSeed("note", "bad-base64", *text + "\n— stockholm.se/samsync !!!notbase64\n");
  WriteSeed("note", "size-not-canonical", "stockholm.se/samsync\n05\n" + text->substr(text->find('\n', 21) + 1) +
                                            "\n" + signed_note->substr(signed_note->find("\n—") + 1));
}

TEST_F(SeedTest, Rosters) {
  WriteSeed("roster", "v1", rosters_[0]);
  WriteSeed("roster", "v2", rosters_[1]);
  auto base = fuzz::FixedRoster(1);
  ASSERT_TRUE(base.ok());
  WriteSeed("roster", "fixed-v1", base->signed_bytes());
  RosterEntry revoked = Entry(s1_.store(), "skarpnäck", Role::kWriter, "revoked one");
  revoked.revoked_ms = kStart + 5;
  RosterEntry auditor;
  auditor.signing_key = fuzz::FixedKey("auditor").public_key();
  auditor.transport_key = fuzz::FixedKey("auditor transport").public_key();
  auditor.role = Role::kAuditor;
  auditor.label = "city audit office";
  auto v3 = fuzz::FixedRoster(3, {revoked, auditor});
  ASSERT_TRUE(v3.ok()) << v3.status().message();
  WriteSeed("roster", "fixed-v3-revoked-auditor", v3->signed_bytes());
  std::string bytes(v3->signed_bytes().begin(), v3->signed_bytes().end());
  WriteSeed("roster", "v3-cut", bytes.substr(0, bytes.size() / 2));
  bytes[bytes.size() - 10] = static_cast<char>(bytes[bytes.size() - 10] ^ 1);
  WriteSeed("roster", "v3-signature-flipped", bytes);
}

// CSV seeds start with the record type's number (one byte), as the csv target reads.
TEST_F(SeedTest, Csv) {
  TestStore demo("Skarpnäck");
  DemoOptions options;
  options.scale = 0.05;
  options.today = *Date::Parse("2016-11-15");
  ASSERT_TRUE(GenerateDemoDistrict(demo.store(), options).ok());
  for (int type = 0; type < kRecordTypeCount; ++type) {
    auto records = demo->ListAll(static_cast<RecordType>(type));
    ASSERT_TRUE(records.ok());
    if (records->size() > 4) records->erase(records->begin() + 4, records->end());
    std::string name(RecordTypeName(static_cast<RecordType>(type)));
    WriteSeed("csv", name, std::string(1, static_cast<char>(type)) + RecordsToCsv(static_cast<RecordType>(type), *records));
    WriteSeed("csv", name + "-comma-no-bom",
              std::string(1, static_cast<char>(type)) +
                  RecordsToCsv(static_cast<RecordType>(type), *records, {.separator = ',', .byte_order_mark = false}));
  }
  std::string school(1, '\0');
  WriteSeed("csv", "school-quoted", school + "name;principal;forms;ppssFocus\r\n"
                                             "\"Kunskapsskolan; Skarpnäck\";independent;compulsory;\r\n"
                                             "\"Ett \"\"citat\"\"\";kommunal;;ja\n");
  WriteSeed("csv", "school-unterminated-quote", school + "name;principal\n\"X;municipal\n");
  WriteSeed("csv", "school-latin1", school + "name;principal\nS\xF6" "dermalm;municipal\n");
  WriteSeed("csv", "school-extra-field", school + "name;principal\nX;municipal;extra\n");
}

}  // namespace
}  // namespace samsync
