// Backups, restores, passphrase changes, erasure and a full map, on real LMDB files.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "test_support.h"

namespace samsync {
namespace {

using testing::AddChild;
using testing::AddSchool;
using testing::MakeRecord;
using testing::PutOrDie;
using testing::RawLmdb;
using testing::TempDir;
using testing::TestStore;

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {(std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>()};
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << bytes;
}

size_t Count(const std::string& haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

Record Concern(const RecordId& school, const ChildRef& child, const std::string& received) {
  return MakeRecord(RecordType::kConcern,
                    {{"schoolId", school.ToText()}, {"receivedDate", received}, {"childRef", child.ToText()}});
}

// Every (table, key) → value of the tables holding sealed history and records.
std::map<std::string, std::string> RawValues(const std::string& dir) {
  std::map<std::string, std::string> values;
  RawLmdb(dir).ForEach([&](const std::string& table, std::string_view key, std::string_view value) {
    if (table == "records" || table == "commits" || table == "clocks" || table == "persons") {
      values[table + "/" + std::string(key)] = std::string(value);
    }
  });
  return values;
}

size_t Schools(Store& store) {
  auto all = store.ListAll(RecordType::kSchool);
  EXPECT_TRUE(all.ok()) << all.status().message();
  return all.ok() ? all->size() : 0;
}

void ExpectVerifies(Store& store) {
  auto report = store.Verify();
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->failure.ok()) << report->failure.message();
}

TEST(StoreBackupTest, ABackupTakenWhileAnotherThreadWritesIsConsistentAndRestores) {
  TestStore t;
  TempDir out;
  std::atomic<int> written{0};
  std::atomic<bool> failed{false};
  constexpr int kWrites = 300;
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      WriteBatch batch;
      batch.Put(MakeRecord(RecordType::kSchool, {{"name", "Skola " + std::to_string(i)},
                                                 {"principal", "municipal"},
                                                 {"forms", "compulsory"}}));
      if (!t->Apply(batch).ok()) failed = true;
      ++written;
    }
  });
  while (written < 60) std::this_thread::yield();
  auto info = t->Backup(out.Sub("mid.backup"));
  int written_after_backup = written;
  writer.join();
  ASSERT_FALSE(failed);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->file_bytes, info->data_bytes + 64);
  EXPECT_EQ(fs::file_size(out.Sub("mid.backup")), info->file_bytes);
  EXPECT_FALSE(fs::exists(out.Sub("mid.backup.partial")));

  auto restored = Store::Restore(out.Sub("mid.backup"), out.Sub("restored"), KeySource::KeyFile(t.key_file()),
                                 t.clock());
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  ExpectVerifies(**restored);
  size_t schools = Schools(**restored);
  EXPECT_GE(schools, 60u);
  EXPECT_LE(schools, static_cast<size_t>(written_after_backup));
  // One commit per school: the copy is one snapshot, not a mix of two.
  auto summary = (*restored)->Summary();
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->commits, schools);
  EXPECT_EQ((*restored)->device_key(), t->device_key());  // the same machine, as it was
  EXPECT_EQ(Schools(t.store()), static_cast<size_t>(kWrites));
}

TEST(StoreBackupTest, ABackupHoldsNoPlaintextNameOrPersonnummerOrChildRef) {
  TestStore t;
  TempDir out;
  RecordId school = AddSchool(t.store(), "Hemligaskolan");
  auto ref = t->AddPerson("20080215-1233", "Anna Hemligsson");
  ASSERT_TRUE(ref.ok());
  PutOrDie(t.store(), Concern(school, *ref, "2016-10-01"));
  ASSERT_TRUE(t->Backup(out.Sub("b")).ok());
  std::string raw = Slurp(out.Sub("b"));
  ASSERT_GT(raw.size(), 4096u);
  EXPECT_EQ(raw.rfind("samsync-backup", 0), 0u);
  for (std::string_view secret : {"Hemligaskolan", "Hemligsson", "Anna", "20080215", "0802151233", "Skarpn"}) {
    EXPECT_EQ(raw.find(secret), std::string::npos) << secret << " is in the backup";
  }
  EXPECT_EQ(raw.find(std::string(reinterpret_cast<const char*>(ref->bytes.data()), 16)), std::string::npos);
}

TEST(StoreBackupTest, RestoreRefusesGarbageCutDamagedOrForeignFilesAndAnExistingFolder) {
  TestStore t;
  TempDir out;
  AddSchool(t.store(), "Ett");
  ASSERT_TRUE(t->Backup(out.Sub("good")).ok());
  std::string good = Slurp(out.Sub("good"));
  auto key = [&] { return KeySource::KeyFile(t.key_file()); };
  auto restore = [&](const std::string& file, const std::string& dir) {
    return Store::Restore(file, dir, key(), t.clock()).status();
  };
  auto nothing_left = [&](const std::string& dir) {
    EXPECT_FALSE(fs::exists(dir)) << dir;
    for (const auto& entry : fs::directory_iterator(out.path())) {
      EXPECT_EQ(entry.path().filename().string().find(".restore-"), std::string::npos) << entry.path();
    }
  };

  // A backup is never written over a file.
  Spit(out.Sub("taken"), "keep me");
  auto again = t->Backup(out.Sub("taken"));
  EXPECT_EQ(again.status().code(), Code::kInvalidInput);
  EXPECT_NE(again.status().message().find("never overwritten"), std::string::npos);
  EXPECT_EQ(Slurp(out.Sub("taken")), "keep me");
  EXPECT_EQ(t->Backup(out.Sub("no-such-folder/b")).status().code(), Code::kNotFound);

  EXPECT_EQ(restore(out.Sub("missing"), out.Sub("s1")).code(), Code::kNotFound);
  nothing_left(out.Sub("s1"));

  Spit(out.Sub("garbage"), std::string(100000, 'x'));
  Status s = restore(out.Sub("garbage"), out.Sub("s2"));
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_NE(s.message().find("is not a samsync backup"), std::string::npos) << s.message();
  nothing_left(out.Sub("s2"));

  Spit(out.Sub("cut"), good.substr(0, good.size() - 4096));
  s = restore(out.Sub("cut"), out.Sub("s3"));
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("cut short"), std::string::npos) << s.message();
  nothing_left(out.Sub("s3"));

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x20;
  Spit(out.Sub("flipped"), flipped);
  s = restore(out.Sub("flipped"), out.Sub("s4"));
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("damaged"), std::string::npos) << s.message();
  nothing_left(out.Sub("s4"));

  std::string version = good;
  version[19] = 9;
  Spit(out.Sub("version"), version);
  s = restore(out.Sub("version"), out.Sub("s5"));
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_NE(s.message().find("format version 9"), std::string::npos) << s.message();

  // Another key: the file checks out, but the store inside does not open.
  std::string other_key = out.Sub("other.key");
  ASSERT_TRUE(CreateKeyFile(other_key).ok());
  s = Store::Restore(out.Sub("good"), out.Sub("s6"), KeySource::KeyFile(other_key), t.clock()).status();
  EXPECT_EQ(s.code(), Code::kWrongKey) << s.message();
  nothing_left(out.Sub("s6"));

  // A district backup is not a server's.
  Store::RestoreOptions server;
  server.city_wide = true;
  s = Store::Restore(out.Sub("good"), out.Sub("s7"), key(), t.clock(), server).status();
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  nothing_left(out.Sub("s7"));

  fs::create_directories(out.Sub("exists"));
  s = restore(out.Sub("good"), out.Sub("exists"));
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_NE(s.message().find("already exists"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(out.Sub("exists")));
  s = restore(out.Sub("good"), t.dir());
  EXPECT_EQ(s.code(), Code::kInvalidInput);

  auto restored = Store::Restore(out.Sub("good"), out.Sub("fine"), key(), t.clock());
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  EXPECT_EQ(Schools(**restored), 1u);
}

TEST(StoreBackupTest, ChangingThePassphraseRewrapsTheKeyAndReencryptsNothing) {
  TempDir dir;
  FixedClock clock(1479211200000);
  std::string store_dir = dir.Sub("store");
  auto pass = [](std::string_view p) { return KeySource::Passphrase(SecretBytes::CopyOf(p)); };
  CreateOptions options;
  options.district = "Skarpnäck";
  {
    auto made = Store::Create(store_dir, pass("gammalt lösenord"), std::move(options), clock);
    ASSERT_TRUE(made.ok()) << made.status().message();
    RecordId school = AddSchool(**made, "Ett");
    ChildRef child = AddChild(**made, 1);
    PutOrDie(**made, Concern(school, child, "2016-10-01"));
  }
  auto before = RawValues(store_dir);
  ASSERT_GE(before.size(), 5u);
  std::string header_before = RawLmdb(store_dir).Get("meta", "header");
  {
    auto store = Store::Open(store_dir, pass("gammalt lösenord"), clock);
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->ChangeKey(pass("")).code(), Code::kInvalidInput);
    ASSERT_TRUE((*store)->ChangeKey(pass("nytt lösenord")).ok());
    EXPECT_EQ(Schools(**store), 1u);  // this process keeps working
  }
  EXPECT_EQ(Store::Open(store_dir, pass("gammalt lösenord"), clock).status().code(), Code::kWrongKey);
  {
    auto store = Store::Open(store_dir, pass("nytt lösenord"), clock);
    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_EQ(Schools(**store), 1u);
    ExpectVerifies(**store);
  }
  EXPECT_EQ(RawValues(store_dir), before) << "a record, commit or person was re-encrypted";
  EXPECT_NE(RawLmdb(store_dir).Get("meta", "header"), header_before);
  // The old header (the data key wrapped under the old passphrase) is in no free page.
  EXPECT_EQ(Count(Slurp(store_dir + "/data.mdb"), header_before), 0u);

  // To a key file, and the passphrase no longer opens it.
  std::string key_file = dir.Sub("new.key");
  ASSERT_TRUE(CreateKeyFile(key_file).ok());
  {
    auto store = Store::Open(store_dir, pass("nytt lösenord"), clock);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->ChangeKey(KeySource::KeyFile(key_file)).ok());
  }
  EXPECT_EQ(Store::Open(store_dir, pass("nytt lösenord"), clock).status().code(), Code::kWrongKey);
  auto by_file = Store::Open(store_dir, KeySource::KeyFile(key_file), clock);
  ASSERT_TRUE(by_file.ok()) << by_file.status().message();
  by_file->reset();
  EXPECT_EQ(RawValues(store_dir), before);
}

TEST(StoreBackupTest, ForgettingAChildLeavesNoTraceInTheFileOrLaterBackupsAndKeepsTheHistory) {
  TestStore t;
  TempDir out;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef anna = AddChild(t.store(), 1);
  // Anna's sealed identity entry, as it lies in the file.
  t.Close();
  std::map<std::string, std::string> persons;
  RawLmdb(t.dir()).ForEach([&](const std::string& table, std::string_view key, std::string_view value) {
    if (table == "persons") persons[std::string(key)] = std::string(value);
  });
  ASSERT_EQ(persons.size(), 1u);
  std::string anna_key = persons.begin()->first, anna_sealed = persons.begin()->second;
  t.Reopen();
  t.clock().AdvanceMs(1000);  // new ids (the access log's keys) sort after those before the reopen
  ChildRef bo = AddChild(t.store(), 2);
  RecordId concern = PutOrDie(t.store(), Concern(school, anna, "2016-10-01"));
  PutOrDie(t.store(), Concern(school, bo, "2016-10-02"));
  for (int i = 0; i < 20; ++i) AddChild(t.store(), 10 + i);  // rewrites the persons pages: old copies in free pages
  ASSERT_TRUE(t->Backup(out.Sub("before")).ok());
  std::string bo_sealed;
  {
    t.Close();
    RawLmdb raw(t.dir());
    raw.ForEach([&](const std::string& table, std::string_view key, std::string_view value) {
      if (table == "persons" && std::string(key) != anna_key && bo_sealed.empty()) bo_sealed = std::string(value);
    });
    t.Reopen();
  }
  ASSERT_FALSE(bo_sealed.empty());
  ASSERT_GE(Count(Slurp(t.dir() + "/data.mdb"), anna_sealed), 1u) << "the scan would find the entry";
  ASSERT_GE(Count(Slurp(out.Sub("before")), anna_sealed), 1u);
  {
    // The control: deleting the entry alone leaves its bytes in the file's free pages.
    t.Close();
    fs::copy(t.dir(), out.Sub("control"), fs::copy_options::recursive);
    RawLmdb(out.Sub("control")).Delete("persons", anna_key);
    EXPECT_EQ(RawLmdb(out.Sub("control")).Get("persons", anna_key), "");
    EXPECT_GE(Count(Slurp(out.Sub("control") + "/data.mdb"), anna_sealed), 1u)
        << "a plain delete leaves no trace here, so this test would not show what the compaction does";
    t.Reopen();
    t.clock().AdvanceMs(1000);
  }

  EXPECT_EQ(t->ForgetPerson(Id16::Parse("01M83V3D5CWHZ1P416TVF4CJY8", "ref").value()).status().code(), Code::kNotFound);
  auto forgot = t->ForgetPerson(anna);
  ASSERT_TRUE(forgot.ok()) << forgot.status().message();
  EXPECT_FALSE(forgot->already_erased);
  EXPECT_EQ(forgot->erased_ms, t.clock().NowMs());
  EXPECT_GT(forgot->file_bytes_before, 0u);
  EXPECT_GT(forgot->file_bytes_after, 0u);

  // This Store object keeps working on the new file.
  EXPECT_FALSE(t->HasPerson(anna));
  EXPECT_TRUE(t->HasPerson(bo));
  EXPECT_EQ(t->LookupPerson(anna).status().code(), Code::kNotFound);
  auto erasure = t->ErasureOf(anna);
  ASSERT_TRUE(erasure.ok() && *erasure);
  EXPECT_EQ((*erasure)->time_ms, t.clock().NowMs());
  EXPECT_EQ((*erasure)->device, t->device_key());
  auto kept = t->Get(concern);
  ASSERT_TRUE(kept.ok()) << "the record about the child stays";
  ExpectVerifies(t.store());
  AddSchool(t.store(), "Två");  // and writes
  ASSERT_TRUE(t->Backup(out.Sub("after")).ok());

  std::string file = Slurp(t.dir() + "/data.mdb");
  EXPECT_EQ(Count(file, anna_sealed), 0u) << "the erased entry is still in the store file";
  EXPECT_GE(Count(file, bo_sealed), 1u) << "the scan finds what is kept";
  EXPECT_EQ(Count(Slurp(out.Sub("after")), anna_sealed), 0u) << "a later backup holds the erased entry";
  EXPECT_GE(Count(Slurp(out.Sub("after")), bo_sealed), 1u);
  EXPECT_FALSE(fs::exists(t.dir() + "/data.mdb.old"));
  EXPECT_FALSE(fs::exists(t.dir() + "/data.mdb.compact.partial"));

  // Another process opens it as usual; the erasure survives reopening; again is a no-op.
  t.Reopen();
  ExpectVerifies(t.store());
  EXPECT_FALSE(t->HasPerson(anna));
  EXPECT_EQ(Schools(t.store()), 2u);
  auto again = t->ForgetPerson(anna);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->already_erased);
  t.Close();
  EXPECT_EQ(Count(Slurp(t.dir() + "/data.mdb"), anna_sealed), 0u);
}

TEST(StoreBackupTest, ForgettingIsRefusedWithNothingWrittenWhileAnotherProcessHasTheStoreOpen) {
  TestStore t;
  ChildRef anna = AddChild(t.store(), 1);
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // another program with the store open
    ::close(ready[0]);
    ::close(release[1]);
    MDB_env* env = nullptr;
    int rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 24);
    if (rc == 0) rc = mdb_env_open(env, t.dir().c_str(), MDB_NOTLS, 0600);
    char byte = rc == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &byte, 1);
    (void)!::read(release[0], &byte, 1);  // until the parent closes its end
    mdb_env_close(env);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 'y');
  auto refused = t->ForgetPerson(anna);
  EXPECT_EQ(refused.status().code(), Code::kInvalidInput);
  EXPECT_NE(refused.status().message().find("another program has this store open"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(t->HasPerson(anna)) << "nothing is written when the swap cannot be done";
  std::string new_key = t.dir() + "-new.key";
  ASSERT_TRUE(CreateKeyFile(new_key).ok());
  EXPECT_EQ(t->ChangeKey(KeySource::KeyFile(new_key)).code(), Code::kInvalidInput);
  t.Reopen();  // still the old key
  t.clock().AdvanceMs(1000);
  auto erasure = t->ErasureOf(anna);
  ASSERT_TRUE(erasure.ok());
  EXPECT_FALSE(*erasure);
  ::close(release[1]);
  ::close(ready[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  auto forgot = t->ForgetPerson(anna);
  ASSERT_TRUE(forgot.ok()) << forgot.status().message();
  EXPECT_FALSE(t->HasPerson(anna));
}

TEST(StoreBackupTest, AFullMapFailsWithAClearErrorAndLosesNothingAcknowledged) {
  TestStore t;
  AddSchool(t.store(), "Först");
  t.Close();
  OpenOptions tiny;
  tiny.map_size_bytes = 1;  // LMDB raises it to the file's present size
  auto store = Store::Open(t.dir(), KeySource::KeyFile(t.key_file()), t.clock(), tiny);
  ASSERT_TRUE(store.ok()) << store.status().message();
  size_t acknowledged = 1;
  Status full;
  for (int i = 0; i < 5000 && full.ok(); ++i) {
    WriteBatch batch;
    for (int j = 0; j < 10; ++j) {
      batch.Put(MakeRecord(RecordType::kSchool, {{"name", "Skola " + std::to_string(i) + "-" + std::to_string(j) +
                                                              std::string(200, 'x')},
                                                 {"principal", "municipal"},
                                                 {"forms", "compulsory"}}));
    }
    auto applied = (*store)->Apply(batch);
    if (applied.ok()) {
      acknowledged += 10;
    } else {
      full = applied.status();
    }
  }
  ASSERT_EQ(full.code(), Code::kMapFull) << full.message();
  EXPECT_NE(full.message().find("size limit"), std::string::npos) << full.message();
  EXPECT_NE(full.message().find("nothing was written"), std::string::npos) << full.message();
  EXPECT_EQ(full.message().find('\n'), std::string::npos);
  EXPECT_EQ(Schools(**store), acknowledged);  // reads go on
  store->reset();

  t.Reopen();  // the default map size
  ExpectVerifies(t.store());
  EXPECT_EQ(Schools(t.store()), acknowledged);
  AddSchool(t.store(), "Efter");
  EXPECT_EQ(Schools(t.store()), acknowledged + 1);
}

}  // namespace
}  // namespace samsync
