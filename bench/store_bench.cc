// samsync_bench: the store's throughput, each figure beside this machine's raw limit
// for the same work measured in the same run, so that the ratio (ours / raw) means
// something on any machine and no figure is ever an absolute time to assert on.
//
// What is measured, on concern reports that refer to a school and a child added first
// (the commonest record a district writes), in a fresh store in a temp folder opened
// with a key file:
//   - records written/s, one record per Apply (one durable write transaction each)
//       beside raw LMDB: one mdb_put of a value of the same size per committed txn;
//   - records written/s in batches per Apply
//       beside raw LMDB: the same number of puts per txn, ascending keys;
//   - Store::Get/s by id in random order
//       beside raw LMDB: mdb_get in its own read transaction (as Get opens one);
//   - Store::List records/s over every concern report
//       beside raw LMDB: a cursor scan over as many entries;
//   - context without a ratio: XChaCha20-Poly1305 seals/s of the same plain size, and
//     mdb_get/s inside one long read transaction.
// The raw environment is plain LMDB (no named tables, no encryption) in its own temp
// folder, with the engine's flags and LMDB's default durability: it fsyncs on commit
// as the store does. Only the store call is timed: records are built before the clock
// starts.
//
// Each figure does a fixed amount of work (--quick: small, for CI to prove the suite
// runs; default: about a minute or two). The table goes to stdout; --json FILE writes
// it as JSON as well.
#include <lmdb.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "samsync/clock.h"
#include "samsync/date.h"
#include "samsync/record.h"
#include "samsync/record_fields.h"
#include "samsync/store.h"

namespace samsync::bench {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// The expectation: with encryption on, the batched write path stays within
// 3x of raw LMDB.
constexpr double kBatchedRatioFloor = 0.33;

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "samsync_bench: " << message << "\n";
  std::exit(1);
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.message());
}

void CheckMdb(int rc, const char* what) {
  if (rc != MDB_SUCCESS) Die(std::string(what) + ": " + mdb_strerror(rc));
}

// Makes `value` observable, so that the work that produced it is not optimised away.
void Keep(uint64_t value) { asm volatile("" : : "r"(value) : "memory"); }

// How much work each figure does.
struct Counts {
  int schools = 0;
  int children = 0;
  int single_writes = 0;  // Applies of one record
  int batches = 0;        // Applies of `batch_size` records
  int batch_size = 1000;
  int reads = 0;          // Gets, cycling over every record in random order
  int scan_passes = 0;    // full Lists of the type
  int seals = 0;

  static Counts Quick() { return {10, 50, 100, 5, 1000, 20'000, 3, 100'000}; }
  static Counts Default() { return {20, 300, 1'000, 100, 1000, 500'000, 20, 2'000'000}; }
};

// A fresh folder, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const fs::path& parent) {
    std::string pattern = (parent / "samsync-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) Die("cannot create a temp folder under " + parent.string());
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path Sub(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Accumulates the time spent inside timed sections.
class Stopwatch {
 public:
  template <typename Fn>
  void Time(Fn&& fn) {
    auto start = SteadyClock::now();
    fn();
    total_ += SteadyClock::now() - start;
  }
  double seconds() const { return std::chrono::duration<double>(total_).count(); }

 private:
  SteadyClock::duration total_{};
};

// One line of the table. A row without `raw` is context and has no ratio.
struct Row {
  std::string figure;
  double value = 0;
  std::string unit;
  std::optional<double> raw;
  std::string raw_unit;
  uint64_t ops = 0;         // work done for `value`
  double seconds = 0;
  double raw_seconds = 0;

  std::optional<double> ratio() const {
    if (!raw || *raw <= 0) return std::nullopt;
    return value / *raw;
  }
};

Row MakeRow(std::string figure, std::string unit, uint64_t ops, double seconds) {
  Row row;
  row.figure = std::move(figure);
  row.unit = std::move(unit);
  row.ops = ops;
  row.seconds = seconds;
  row.value = seconds > 0 ? static_cast<double>(ops) / seconds : 0;
  return row;
}

void SetRaw(Row& row, std::string raw_unit, uint64_t raw_ops, double raw_seconds) {
  row.raw_unit = std::move(raw_unit);
  row.raw_seconds = raw_seconds;
  row.raw = raw_seconds > 0 ? static_cast<double>(raw_ops) / raw_seconds : 0;
}

// ---------------------------------------------------------------------------------
// Realistic records, built through the same text path the CLI and CSV import use.

Record MakeRecord(RecordType type, const std::vector<std::pair<std::string, std::string>>& fields) {
  Record record(type);
  for (const auto& [name, value] : fields) {
    const FieldInfo* field = FindField(type, name);
    if (field == nullptr) Die("no field " + name + " in " + std::string(RecordTypeName(type)));
    Check(SetFieldFromText(record, *field, value), "field " + name);
  }
  return record;
}

// A valid personnummer (Luhn digit computed) born on `yyyymmdd` with serial `serial`.
std::string MakePersonnummer(const std::string& yyyymmdd, int serial) {
  std::string digits = yyyymmdd.substr(2) + std::to_string(100 + serial % 900);
  int sum = 0;
  for (size_t i = 0; i < 9; ++i) {
    int v = (digits[i] - '0') * (i % 2 == 0 ? 2 : 1);
    sum += v > 9 ? v - 9 : v;
  }
  return yyyymmdd + "-" + digits.substr(6) + std::to_string((10 - sum % 10) % 10);
}

constexpr const char* kFeedbackForms[] = {"meeting", "phone", "letter", "email"};

// Concern report number `n`: one of the schools and children, received on one of
// ~three years of days, most with feedback a few days later.
Record MakeConcern(int n, const std::vector<RecordId>& schools, const std::vector<ChildRef>& children) {
  static const Date kFirst = *Date::Parse("2015-01-01");
  Date received = kFirst.AddDays(n % 1000);
  std::vector<std::pair<std::string, std::string>> fields = {
      {"schoolId", schools[static_cast<size_t>(n) % schools.size()].ToText()},
      {"receivedDate", received.ToString()},
      {"childRef", children[static_cast<size_t>(n) * 7 % children.size()].ToText()},
  };
  if (n % 4 != 0) {
    fields.push_back({"feedbackDate", received.AddDays(n % 9).ToString()});
    fields.push_back({"feedbackForm", kFeedbackForms[n % 4]});
  }
  return MakeRecord(RecordType::kConcern, fields);
}

// ---------------------------------------------------------------------------------
// Plain LMDB, the machine's raw limit.

class RawEnv {
 public:
  explicit RawEnv(const fs::path& dir) {
    fs::create_directories(dir);
    CheckMdb(mdb_env_create(&env_), "mdb_env_create");
    CheckMdb(mdb_env_set_mapsize(env_, size_t{16} << 30), "mdb_env_set_mapsize");
    // The engine's flags (lmdb_env.cc); default durability: fsync on every commit.
    CheckMdb(mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open");
    MDB_txn* txn = nullptr;
    CheckMdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    CheckMdb(mdb_dbi_open(txn, nullptr, 0, &dbi_), "mdb_dbi_open");
    CheckMdb(mdb_txn_commit(txn), "mdb_txn_commit");
  }
  ~RawEnv() { mdb_env_close(env_); }
  RawEnv(const RawEnv&) = delete;
  RawEnv& operator=(const RawEnv&) = delete;

  MDB_env* env() const { return env_; }
  MDB_dbi dbi() const { return dbi_; }

 private:
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// Keys like the store's: 17 bytes, ascending with `n` (the store's ids are time-ordered).
std::array<uint8_t, 17> RawKey(uint64_t n) {
  std::array<uint8_t, 17> key{};
  key[0] = static_cast<uint8_t>(RecordType::kConcern);
  for (int i = 0; i < 8; ++i) key[9 + i] = static_cast<uint8_t>(n >> (8 * (7 - i)));
  return key;
}

// Commits `count` puts per transaction, `txns` times, keys continuing from `next_key`.
void RawPut(const RawEnv& raw, std::vector<uint8_t>& value, int txns, int count, uint64_t& next_key,
            Stopwatch& watch) {
  for (int t = 0; t < txns; ++t) {
    watch.Time([&] {
      MDB_txn* txn = nullptr;
      CheckMdb(mdb_txn_begin(raw.env(), nullptr, 0, &txn), "mdb_txn_begin");
      for (int i = 0; i < count; ++i) {
        auto key = RawKey(next_key++);
        value[0] = static_cast<uint8_t>(next_key);  // not one value over and over
        MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
        CheckMdb(mdb_put(txn, raw.dbi(), &k, &v, 0), "mdb_put");
      }
      CheckMdb(mdb_txn_commit(txn), "mdb_txn_commit");
    });
  }
}

// ---------------------------------------------------------------------------------

struct Setup {
  std::vector<RecordId> schools;
  std::vector<ChildRef> children;
};

Setup AddSchoolsAndChildren(Store& store, const Counts& counts) {
  Setup setup;
  WriteBatch batch;
  for (int i = 0; i < counts.schools; ++i) {
    batch.Put(MakeRecord(RecordType::kSchool, {{"name", "Skola " + std::to_string(i)},
                                               {"principal", i % 3 == 0 ? "independent" : "municipal"},
                                               {"forms", "preschoolClass,compulsory"}}));
  }
  auto applied = store.Apply(batch);
  if (!applied.ok()) Die("adding schools: " + applied.status().message());
  setup.schools = applied->ids;
  for (int i = 0; i < counts.children; ++i) {
    char date[16];
    std::snprintf(date, sizeof date, "2008%02d%02d", i % 12 + 1, i % 28 + 1);
    auto ref = store.AddPerson(MakePersonnummer(date, i), "Barn " + std::to_string(i));
    if (!ref.ok()) Die("adding a child: " + ref.status().message());
    setup.children.push_back(*ref);
  }
  return setup;
}

struct Sizes {
  size_t plain = 0;   // an encoded concern report as the store writes it
  size_t sealed = 0;  // what LMDB holds: nonce + ciphertext + tag
  size_t ad = 0;      // associated data: "samsync/1/records" 0x00 key
};

Sizes MeasureSizes(const Store& store, const Setup& setup) {
  Record record = MakeConcern(1, setup.schools, setup.children);
  record.set_district(store.district());
  record.set_id(setup.schools.front());  // any 16 bytes: only the size matters
  Sizes sizes;
  sizes.plain = record.Encode().size();
  sizes.sealed = sizes.plain + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                 crypto_aead_xchacha20poly1305_ietf_ABYTES;
  sizes.ad = std::strlen("samsync/1/records") + 1 + 17;
  return sizes;
}

struct Report {
  std::vector<Row> rows;
  Sizes sizes;
  uint64_t records = 0;
  std::optional<double> batched_ratio;
};

Report Run(const Counts& counts, const fs::path& parent) {
  TempDir temp(parent);
  SystemClock clock;
  std::string key_file = temp.Sub("store.key").string();
  Check(CreateKeyFile(key_file), "creating the key file");
  CreateOptions options;
  options.district = "Skarpnäck";
  auto created = Store::Create(temp.Sub("store").string(), KeySource::KeyFile(key_file), std::move(options), clock);
  if (!created.ok()) Die("creating the store: " + created.status().message());
  Store& store = **created;
  RawEnv raw(temp.Sub("raw"));

  Setup setup = AddSchoolsAndChildren(store, counts);
  Report report;
  report.sizes = MeasureSizes(store, setup);
  std::vector<uint8_t> value(report.sizes.sealed);
  randombytes_buf(value.data(), value.size());
  std::vector<RecordId> ids;
  int made = 0;
  uint64_t next_key = 0;

  // One record per Apply, each its own durable transaction.
  {
    Stopwatch ours, base;
    for (int i = 0; i < counts.single_writes; ++i) {
      WriteBatch batch;
      batch.Put(MakeConcern(made++, setup.schools, setup.children));
      ours.Time([&] {
        auto applied = store.Apply(batch);
        if (!applied.ok()) Die("Apply: " + applied.status().message());
        ids.push_back(applied->ids[0]);
      });
    }
    RawPut(raw, value, counts.single_writes, 1, next_key, base);
    Row row = MakeRow("write, 1 record per Apply", "records/s", static_cast<uint64_t>(counts.single_writes),
                      ours.seconds());
    SetRaw(row, "puts/s, 1 per txn", static_cast<uint64_t>(counts.single_writes), base.seconds());
    report.rows.push_back(row);
  }

  // Batches of `batch_size` records per Apply.
  {
    Stopwatch ours, base;
    for (int b = 0; b < counts.batches; ++b) {
      WriteBatch batch;
      for (int i = 0; i < counts.batch_size; ++i) batch.Put(MakeConcern(made++, setup.schools, setup.children));
      ours.Time([&] {
        auto applied = store.Apply(batch);
        if (!applied.ok()) Die("Apply: " + applied.status().message());
        ids.insert(ids.end(), applied->ids.begin(), applied->ids.end());
      });
    }
    RawPut(raw, value, counts.batches, counts.batch_size, next_key, base);
    uint64_t n = static_cast<uint64_t>(counts.batches) * static_cast<uint64_t>(counts.batch_size);
    std::string per = std::to_string(counts.batch_size);
    Row row = MakeRow("write, " + per + " records per Apply", "records/s", n, ours.seconds());
    SetRaw(row, "puts/s, " + per + " per txn", n, base.seconds());
    report.batched_ratio = row.ratio();
    report.rows.push_back(row);
  }
  report.records = ids.size();

  // Random reads by id: every record, shuffled, cycled until `reads` are done.
  std::mt19937_64 rng(20161115);
  {
    std::vector<RecordId> order = ids;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<uint64_t> raw_order(next_key);
    for (uint64_t i = 0; i < next_key; ++i) raw_order[i] = i;
    std::shuffle(raw_order.begin(), raw_order.end(), rng);

    Stopwatch ours, base, base_one_txn;
    uint64_t sink = 0;
    ours.Time([&] {
      for (int i = 0; i < counts.reads; ++i) {
        auto record = store.Get(order[static_cast<size_t>(i) % order.size()]);
        if (!record.ok()) Die("Get: " + record.status().message());
        sink += static_cast<uint64_t>(record->type());
      }
    });
    base.Time([&] {
      for (int i = 0; i < counts.reads; ++i) {
        auto key = RawKey(raw_order[static_cast<size_t>(i) % raw_order.size()]);
        MDB_val k{key.size(), key.data()}, v{};
        MDB_txn* txn = nullptr;
        CheckMdb(mdb_txn_begin(raw.env(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
        CheckMdb(mdb_get(txn, raw.dbi(), &k, &v), "mdb_get");
        sink += static_cast<const uint8_t*>(v.mv_data)[0];
        mdb_txn_abort(txn);
      }
    });
    base_one_txn.Time([&] {
      MDB_txn* txn = nullptr;
      CheckMdb(mdb_txn_begin(raw.env(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
      for (int i = 0; i < counts.reads; ++i) {
        auto key = RawKey(raw_order[static_cast<size_t>(i) % raw_order.size()]);
        MDB_val k{key.size(), key.data()}, v{};
        CheckMdb(mdb_get(txn, raw.dbi(), &k, &v), "mdb_get");
        sink += static_cast<const uint8_t*>(v.mv_data)[0];
      }
      mdb_txn_abort(txn);
    });
    Keep(sink);
    auto n = static_cast<uint64_t>(counts.reads);
    Row row = MakeRow("read, Get by id (random)", "reads/s", n, ours.seconds());
    SetRaw(row, "mdb_get/s, 1 txn each", n, base.seconds());
    report.rows.push_back(row);
    report.rows.push_back(MakeRow("context: raw mdb_get in one txn", "mdb_get/s", n, base_one_txn.seconds()));
  }

  // Full scans of the type.
  {
    Stopwatch ours, base;
    uint64_t seen = 0, raw_seen = 0;
    for (int p = 0; p < counts.scan_passes; ++p) {
      ours.Time([&] {
        Check(store.List(RecordType::kConcern, {}, [&](const Record&) {
          ++seen;
          return true;
        }),
              "List");
      });
      base.Time([&] {
        MDB_txn* txn = nullptr;
        MDB_cursor* cursor = nullptr;
        CheckMdb(mdb_txn_begin(raw.env(), nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
        CheckMdb(mdb_cursor_open(txn, raw.dbi(), &cursor), "mdb_cursor_open");
        MDB_val k{}, v{};
        uint8_t touch = 0;
        for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
          touch ^= static_cast<const uint8_t*>(v.mv_data)[v.mv_size - 1];
          ++raw_seen;
        }
        mdb_cursor_close(cursor);
        mdb_txn_abort(txn);
        Keep(touch);
      });
    }
    if (seen != report.records * static_cast<uint64_t>(counts.scan_passes)) {
      Die("List saw " + std::to_string(seen) + " records, expected " +
          std::to_string(report.records * static_cast<uint64_t>(counts.scan_passes)));
    }
    Row row = MakeRow("list scan, one type", "records/s", seen, ours.seconds());
    SetRaw(row, "cursor entries/s", raw_seen, base.seconds());
    report.rows.push_back(row);
  }

  // Sealing alone: what encryption costs at this value size.
  {
    std::vector<uint8_t> key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES), ad(report.sizes.ad),
        plain(report.sizes.plain), out(report.sizes.sealed);
    randombytes_buf(key.data(), key.size());
    randombytes_buf(ad.data(), ad.size());
    randombytes_buf(plain.data(), plain.size());
    Stopwatch watch;
    watch.Time([&] {
      for (int i = 0; i < counts.seals; ++i) {
        uint8_t* nonce = out.data();
        randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        unsigned long long written = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &written,
                                                   plain.data(), plain.size(), ad.data(), ad.size(), nullptr,
                                                   nonce, key.data());
        plain[0] = out[30];  // each seal depends on the one before
      }
    });
    report.rows.push_back(MakeRow("context: XChaCha20-Poly1305 seal, " + std::to_string(report.sizes.plain) + " B",
                                  "seals/s", static_cast<uint64_t>(counts.seals), watch.seconds()));
  }
  return report;
}

std::string Format(double v) {
  char buf[32];
  if (v >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 1) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  }
  // Thousands separators for readability: 1234567 -> 1 234 567.
  // (Built forwards: GCC 12 warns falsely on std::string::insert, PR 105651.)
  std::string_view digits = buf;
  size_t end = std::min(digits.find('.'), digits.size());
  std::string s;
  for (size_t i = 0; i < end; ++i) {
    if (i > 0 && (end - i) % 3 == 0) s += ' ';
    s += digits[i];
  }
  s += digits.substr(end);
  return s;
}

void PrintTable(const Report& report, const std::string& mode) {
  std::vector<std::vector<std::string>> cells = {{"figure", "value", "unit", "raw limit", "raw unit", "ratio"}};
  for (const Row& row : report.rows) {
    auto ratio = row.ratio();
    char r[16] = "";
    if (ratio) std::snprintf(r, sizeof r, "%.3f", *ratio);
    cells.push_back({row.figure, Format(row.value), row.unit, row.raw ? Format(*row.raw) : "", row.raw_unit, r});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  auto display_width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // UTF-8 code points
    return n;
  };
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], display_width(line[i]));
  }
  std::cout << "samsync_bench (" << mode << "): " << report.records << " concern reports, " << report.sizes.plain
            << " B encoded, " << report.sizes.sealed << " B sealed; " << std::thread::hardware_concurrency()
            << " CPUs\n\n";
  bool numeric[] = {false, true, false, true, false, true};
  for (size_t l = 0; l < cells.size(); ++l) {
    std::string out;
    for (size_t i = 0; i < cells[l].size(); ++i) {
      std::string pad(width[i] - display_width(cells[l][i]), ' ');
      out += numeric[i] && l > 0 ? pad + cells[l][i] : cells[l][i] + pad;
      out += i + 1 < cells[l].size() ? "  " : "";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << "\n";
    if (l == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      std::cout << std::string(total - 2, '-') << "\n";
    }
  }
  std::cout << "\nexpectation: batched writes within 3x of raw LMDB with encryption on (ratio >= "
            << kBatchedRatioFloor << "): ";
  if (!report.batched_ratio) {
    std::cout << "not measured\n";
  } else {
    char r[16];
    std::snprintf(r, sizeof r, "%.3f", *report.batched_ratio);
    std::cout << (*report.batched_ratio >= kBatchedRatioFloor ? "holds" : "DOES NOT HOLD") << " (" << r << ")\n";
  }
}

nlohmann::json ToJson(const Report& report, const std::string& mode, const Counts& counts) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Row& row : report.rows) {
    auto ratio = row.ratio();
    rows.push_back({{"figure", row.figure},
                    {"value", row.value},
                    {"unit", row.unit},
                    {"raw", row.raw ? nlohmann::json(*row.raw) : nlohmann::json()},
                    {"raw_unit", row.raw ? nlohmann::json(row.raw_unit) : nlohmann::json()},
                    {"ratio", ratio ? nlohmann::json(*ratio) : nlohmann::json()},
                    {"ops", row.ops},
                    {"seconds", row.seconds},
                    {"raw_seconds", row.raw ? nlohmann::json(row.raw_seconds) : nlohmann::json()}});
  }
  bool holds = report.batched_ratio && *report.batched_ratio >= kBatchedRatioFloor;
  return {
      {"mode", mode},
      {"cpus", std::thread::hardware_concurrency()},
      {"records", report.records},
      {"plain_bytes", report.sizes.plain},
      {"sealed_bytes", report.sizes.sealed},
      {"counts",
       {{"schools", counts.schools},
        {"children", counts.children},
        {"single_writes", counts.single_writes},
        {"batches", counts.batches},
        {"batch_size", counts.batch_size},
        {"reads", counts.reads},
        {"scan_passes", counts.scan_passes},
        {"seals", counts.seals}}},
      {"rows", rows},
      {"expectation",
       {{"figure", "batched writes"},
        {"min_ratio", kBatchedRatioFloor},
        {"ratio", report.batched_ratio ? nlohmann::json(*report.batched_ratio) : nlohmann::json()},
        {"holds", holds}}},
  };
}

}  // namespace
}  // namespace samsync::bench

int main(int argc, char** argv) {
  using namespace samsync::bench;
  CLI::App app{"samsync_bench: the store's throughput as ratios to this machine's raw LMDB and libsodium limits"};
  bool quick = false;
  std::string json_file;
  std::string dir = fs::temp_directory_path().string();
  app.add_flag("--quick", quick, "small counts: proves the suite runs (CI)");
  app.add_option("--json", json_file, "also write the table as JSON to this file");
  app.add_option("--dir", dir, "folder for the temporary stores (its disk is what fsync measures)")
      ->check(CLI::ExistingDirectory);
  CLI11_PARSE(app, argc, argv);

  if (sodium_init() < 0) Die("libsodium cannot be initialised");
  Counts counts = quick ? Counts::Quick() : Counts::Default();
  std::string mode = quick ? "quick" : "default";
  Report report = Run(counts, dir);
  PrintTable(report, mode);
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << ToJson(report, mode, counts).dump(2) << "\n";
    if (!out) Die("cannot write " + json_file);
  }
  return 0;
}
