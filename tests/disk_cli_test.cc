// Disk trouble, on the real binary: a store on a read-only file system, and a store on
// a full one.
//
// Tests run as root, where chmod does not stop a write, so a read-only disk is made
// for real: the test process moves into a mount namespace of its own (unshare
// CLONE_NEWNS, every mount private), bind-mounts the store's folder read-only onto
// itself, and mounts a small tmpfs for the full disk. The `samsync` processes it starts
// inherit that namespace; every mount vanishes with the test process, whatever happens
// to it. Where the namespace cannot be made (no CAP_SYS_ADMIN), the tests are skipped
// and say why.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "samsync/clock.h"
#include "samsync/store.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::CommandResult;
using testing::RunSamsync;
using testing::TempDir;

nlohmann::json ParseJson(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed.is_discarded() ? nlohmann::json::object() : parsed;
}

// One line on stderr starting "samsync: " and holding `contains`; exit `exit_code`;
// nothing on stdout.
void ExpectOneLine(const CommandResult& r, int exit_code, const std::string& contains) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind("samsync: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

class DiskCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::unshare(CLONE_NEWNS) != 0) {
      no_namespace_ = std::string("cannot make a mount namespace: ") + std::strerror(errno);
      return;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      no_namespace_ = std::string("cannot make the mounts private: ") + std::strerror(errno);
    }
  }
  void SetUp() override {
    if (!no_namespace_.empty()) GTEST_SKIP() << no_namespace_;
  }
  void TearDown() override {
    for (auto it = mounted_.rbegin(); it != mounted_.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
  }

  void MountReadOnly(const std::string& dir) {
    ASSERT_EQ(::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
    mounted_.push_back(dir);
    ASSERT_EQ(::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0)
        << std::strerror(errno);
  }
  void MountTmpfs(const std::string& dir, const std::string& size) {
    std::filesystem::create_directories(dir);
    std::string options = "size=" + size + ",mode=0700";
    ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()), 0) << std::strerror(errno);
    mounted_.push_back(dir);
  }
  void Unmount(const std::string& dir) {
    ASSERT_EQ(::umount2(dir.c_str(), 0), 0) << std::strerror(errno);
    std::erase(mounted_, dir);
  }

  static inline std::string no_namespace_;
  TempDir dir_;  // removed after TearDown has unmounted what is mounted in it
  std::vector<std::string> mounted_;
};

std::string AddSchool(const std::vector<std::string>& env, const std::string& name) {
  CommandResult r = RunSamsync({"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"},
                               env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string id = r.out;
  if (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

// A store whose folder is on a read-only file system: reads are served, a write is
// refused on one line (exit 5) and nothing changes; once writable again the store is
// whole.
TEST_F(DiskCliTest, AReadOnlyStoreRefusesAWriteOnOneLine) {
  TempDir& dir = dir_;
  std::string store = dir.Sub("store");
  std::vector<std::string> env = {"SAMSYNC_STORE=" + store, "SAMSYNC_KEY_FILE=" + dir.Sub("store.key")};
  ASSERT_EQ(RunSamsync({"init", "--district", "Farsta"}, env).exit_code, 0);
  std::string id = AddSchool(env, "Farstaskolan");
  nlohmann::json before = ParseJson(RunSamsync({"status", "--json"}, env).out);

  MountReadOnly(store);
  // Really read-only, even for root.
  int probe = ::open((store + "/probe").c_str(), O_CREAT | O_WRONLY, 0600);
  int probe_errno = errno;
  if (probe >= 0) ::close(probe);
  ASSERT_LT(probe, 0) << "the bind mount is writable";
  ASSERT_EQ(probe_errno, EROFS);

  // The command opens it read-only: reads are served, and a write is refused on one
  // line (exit 5) with nothing written.
  CommandResult add =
      RunSamsync({"add", "school", "--name", "Ny skola", "--principal", "municipal", "--forms", "compulsory"}, env);
  ExpectOneLine(add, 5, "read-only");
  CommandResult update = RunSamsync({"update", id, "--name", "Farstaskolan 2"}, env);
  ExpectOneLine(update, 5, "read-only");
  CommandResult show = RunSamsync({"show", id}, env);
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("Farstaskolan"), std::string::npos) << show.out;
  CommandResult status = RunSamsync({"status", "--json"}, env);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(ParseJson(status.out)["stateHash"], before["stateHash"]);

  Unmount(store);
  nlohmann::json after = ParseJson(RunSamsync({"status", "--json"}, env).out);
  EXPECT_EQ(after["stateHash"], before["stateHash"]) << "the refused writes changed nothing";
  EXPECT_EQ(after["commits"], 1);
  CommandResult verified = RunSamsync({"verify"}, env);
  EXPECT_EQ(verified.exit_code, 0) << verified.err;
}

// A store on a full disk (a 3 MiB tmpfs): an import too large for it is refused on one
// line (exit 5) with nothing of it written; the store still opens, verifies, and takes
// a small write once there is room.
TEST_F(DiskCliTest, AFullDiskRefusesAWriteOnOneLineAndTheStoreStaysWhole) {
  TempDir& dir = dir_;
  std::string small = dir.Sub("small");
  MountTmpfs(small, "3m");
  std::string store = small + "/store";
  std::vector<std::string> env = {"SAMSYNC_STORE=" + store, "SAMSYNC_KEY_FILE=" + dir.Sub("store.key")};
  CommandResult init = RunSamsync({"init", "--district", "Farsta"}, env);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  AddSchool(env, "Farstaskolan");
  nlohmann::json before = ParseJson(RunSamsync({"status", "--json"}, env).out);

  std::string csv = dir.Sub("skolor.csv");
  {
    std::ofstream out(csv);
    out << "name;principal;forms\n";
    for (int i = 0; i < 30000; ++i) out << "Skolan nummer " << i << " i Farsta med ett langt namn;municipal;compulsory\n";
  }
  CommandResult import = RunSamsync({"import", "school", csv}, env);
  std::cout << "a 30,000-row import on a full 3 MiB disk: exit " << import.exit_code << ", " << import.err;
  ExpectOneLine(import, 5, "the disk holding the store is full");

  nlohmann::json after = ParseJson(RunSamsync({"status", "--json"}, env).out);
  EXPECT_EQ(after["stateHash"], before["stateHash"]) << "nothing of the refused import is in the store";
  EXPECT_EQ(after["records"], 1);
  EXPECT_EQ(after["commits"], 1);
  CommandResult verified = RunSamsync({"verify"}, env);
  EXPECT_EQ(verified.exit_code, 0) << verified.err;
  // The pages the failed transaction wrote are free again: a small write fits.
  AddSchool(env, "Farsta grundskola");
  EXPECT_EQ(ParseJson(RunSamsync({"status", "--json"}, env).out)["commits"], 2);
  EXPECT_EQ(RunSamsync({"verify"}, env).exit_code, 0);
}

}  // namespace
}  // namespace samsync
