// Helpers shared by the tests: temporary folders, stores that open fast, record
// builders that keep test data readable.
#ifndef SAMSYNC_TESTS_TEST_SUPPORT_H_
#define SAMSYNC_TESTS_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <filesystem>
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

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the real `samsync` binary with `args`, the environment `env` ("NAME=value",
// added to a clean one holding only PATH and HOME) and `input` on stdin. Waits for it.
CommandResult RunSamsync(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         const std::string& input = "");

}  // namespace samsync::testing

#endif  // SAMSYNC_TESTS_TEST_SUPPORT_H_
