// Several `samsync` processes on one store at once: each write is one LMDB write
// transaction (LMDB lets one writer in at a time, across processes) and the commit's
// sequence number, parent and clock are read inside it, so concurrent writers queue
// and the device's chain stays one unbroken line. Real binaries, a real store folder.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace samsync {
namespace {

using testing::ChildProcess;
using testing::CommandResult;
using testing::RunSamsync;
using testing::TempDir;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

nlohmann::json ParseJson(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed.is_discarded() ? nlohmann::json::object() : parsed;
}

// A shell loop of `count` `samsync add school` runs, each printing the new id; a
// failed run prints "FAILED n: <its error>" on stderr.
std::string AddLoop(const std::string& prefix, int count) {
  return "i=1; while [ $i -le " + std::to_string(count) + " ]; do "
         "\"$SAMSYNC\" add school --name \"" + prefix + " $i\" --principal municipal --forms compulsory "
         "|| echo \"FAILED $i\" >&2; i=$((i + 1)); done";
}

TEST(ConcurrentCliTest, TwoAddLoopsAndReadersOnOneStoreLoseNothingAndKeepOneChain) {
  TempDir dir;
  std::string store = dir.Sub("store");
  std::vector<std::string> env = {"SAMSYNC_STORE=" + store, "SAMSYNC_KEY_FILE=" + store + ".key",
                                  std::string("SAMSYNC=") + SAMSYNC_BINARY};
  CommandResult init = RunSamsync({"init", "--district", "Farsta"}, env);
  ASSERT_EQ(init.exit_code, 0) << init.err;

  constexpr int kEach = 50;
  ChildProcess a("/bin/sh", {"-c", AddLoop("Skola A", kEach)}, env);
  ChildProcess b("/bin/sh", {"-c", AddLoop("Skola B", kEach)}, env);
  // Readers beside the writers: each sees a consistent snapshot, never an error.
  ChildProcess reader("/bin/sh",
                      {"-c", "i=0; while [ $i -lt 30 ]; do \"$SAMSYNC\" list school --json > /dev/null || echo "
                             "\"READ FAILED\" >&2; \"$SAMSYNC\" status > /dev/null || echo \"STATUS FAILED\" >&2; "
                             "i=$((i + 1)); done"},
                      env);
  CommandResult ra = a.Wait(300000), rb = b.Wait(300000), rr = reader.Wait(300000);
  ASSERT_EQ(ra.exit_code, 0);
  ASSERT_EQ(rb.exit_code, 0);
  ASSERT_EQ(rr.exit_code, 0);
  // Nothing failed: concurrent writers wait for LMDB's write lock, they are not refused.
  EXPECT_EQ(ra.err, "");
  EXPECT_EQ(rb.err, "");
  EXPECT_EQ(rr.err, "");

  std::vector<std::string> ids = Lines(ra.out);
  std::vector<std::string> ids_b = Lines(rb.out);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEach));
  EXPECT_EQ(ids_b.size(), static_cast<size_t>(kEach));
  // The loops really ran at once: record ids begin with their time (ids.h), and the
  // spans of the two loops' ids overlap.
  ASSERT_FALSE(ids.empty());
  ASSERT_FALSE(ids_b.empty());
  EXPECT_LT(*std::min_element(ids_b.begin(), ids_b.end()), *std::max_element(ids.begin(), ids.end()));
  EXPECT_LT(*std::min_element(ids.begin(), ids.end()), *std::max_element(ids_b.begin(), ids_b.end()));
  ids.insert(ids.end(), ids_b.begin(), ids_b.end());
  std::set<std::string> acknowledged(ids.begin(), ids.end());
  EXPECT_EQ(acknowledged.size(), ids.size()) << "an id was given twice";

  // Every acknowledged id is there, and nothing else.
  CommandResult listed = RunSamsync({"list", "school", "--json"}, env);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::set<std::string> held;
  for (const auto& school : ParseJson(listed.out)) held.insert(school.value("id", ""));
  EXPECT_EQ(held, acknowledged);

  // One device, one unbroken chain: seq 1 to 100, each commit's parent the one before
  // (verify checks every link, sequence number and clock, and re-derives the records).
  CommandResult verified = RunSamsync({"verify", "--json"}, env);
  ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  nlohmann::json report = ParseJson(verified.out);
  EXPECT_EQ(report["ok"], true) << verified.out;
  EXPECT_EQ(report["commits"], 2 * kEach);
  EXPECT_EQ(report["devices"], 1);
  EXPECT_EQ(report["records"], 2 * kEach);
  nlohmann::json status = ParseJson(RunSamsync({"status", "--json"}, env).out);
  ASSERT_EQ(status["heads"].size(), 1u) << status.dump();
  EXPECT_EQ(status["heads"].begin().value(), 2 * kEach) << "the sequence numbers are dense: 1 to " << 2 * kEach;
  EXPECT_EQ(status["commits"], 2 * kEach);
  EXPECT_EQ(status["waiting"], 0);
  std::cout << "2 x " << kEach << " concurrent adds: " << acknowledged.size() << " acknowledged, " << held.size()
            << " held, chain 1.." << status["heads"].begin().value() << ", verify ok" << std::endl;
}

}  // namespace
}  // namespace samsync
