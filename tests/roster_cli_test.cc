// `samsync city init` and `samsync roster add / revoke / show`, end to end: the real
// binary, real files.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "samsync/keys.h"
#include "samsync/roster.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::TempDir;

struct DeviceKeys {
  std::string signing = SigningKey::Generate().public_key().ToHex();
  std::string transport = TransportKey::Generate().public_key().ToHex();
};

class RosterCliTest : public ::testing::Test {
 protected:
  RosterCliTest() : city_(dir_.Sub("city")), env_({"SAMSYNC_PASSPHRASE=korrekt häst batteri"}) {}

  CommandResult Run(std::vector<std::string> args, std::vector<std::string> env = {}) {
    if (env.empty()) env = env_;
    return RunSamsync(args, env);
  }
  std::string Ok(std::vector<std::string> args) {
    CommandResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    return r.out;
  }
  nlohmann::json Json(std::vector<std::string> args) {
    args.push_back("--json");
    std::string out = Ok(args);
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << out;
    return parsed;
  }
  // Interactive Argon2 keeps the test fast; the default for a city is moderate.
  nlohmann::json Init() { return Json({"city", "init", city_, "--name", "stockholm.se", "--kdf", "interactive"}); }
  nlohmann::json Add(const DeviceKeys& device, const std::string& role, const std::string& district,
                     const std::string& label) {
    std::vector<std::string> args = {"roster", "add", "--city", city_, "--device-key", device.signing,
                                     "--transport-key", device.transport, "--role", role, "--label", label};
    if (!district.empty()) {
      args.push_back("--district");
      args.push_back(district);
    }
    return Json(args);
  }

  TempDir dir_;
  std::string city_;
  std::vector<std::string> env_;
};


std::vector<uint8_t> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(RosterCliTest, InitAddShowRevoke) {
  nlohmann::json made = Init();
  EXPECT_EQ(made["city"], "stockholm.se");
  EXPECT_EQ(made["version"], 1);
  std::string root_key = made["rootKey"];
  EXPECT_EQ(root_key.size(), 64u);
  EXPECT_TRUE(fs::exists(city_ + "/roster.latest"));

  DeviceKeys farsta, central;
  nlohmann::json added = Add(farsta, "writer", "farsta", "Farsta mottagning 2");
  EXPECT_EQ(added["version"], 2);
  EXPECT_EQ(added["roster"], city_ + "/rosters/000002.roster");
  EXPECT_EQ(added["latest"], city_ + "/roster.latest");
  EXPECT_EQ(Add(central, "central", "", "Centralt")["version"], 3);

  nlohmann::json shown = Json({"roster", "show", "--city", city_});
  EXPECT_EQ(shown["city"], "stockholm.se");
  EXPECT_EQ(shown["version"], 3);
  EXPECT_EQ(shown["rootKey"], root_key);
  EXPECT_EQ(shown["rootKeyFrom"], "city");
  ASSERT_EQ(shown["entries"].size(), 2u);
  EXPECT_EQ(shown["entries"][0]["signingKey"], farsta.signing);
  EXPECT_EQ(shown["entries"][0]["transportKey"], farsta.transport);
  EXPECT_EQ(shown["entries"][0]["role"], "writer");
  EXPECT_EQ(shown["entries"][0]["district"], "Farsta");
  EXPECT_EQ(shown["entries"][0]["label"], "Farsta mottagning 2");
  EXPECT_EQ(shown["entries"][0]["active"], true);
  EXPECT_EQ(shown["entries"][1]["role"], "central");
  EXPECT_EQ(shown["entries"][1]["district"], "");

  std::string revoked = Ok({"roster", "revoke", "--city", city_, "--device-key", farsta.signing});
  EXPECT_NE(revoked.find("roster version 4 of stockholm.se: revoked " + farsta.signing), std::string::npos)
      << revoked;

  // A roster file handed on is checked on its own, and says whose key it trusted.
  nlohmann::json from_file = Json({"roster", "show", city_ + "/roster.latest"});
  EXPECT_EQ(from_file["version"], 4);
  EXPECT_EQ(from_file["rootKey"], root_key);
  EXPECT_EQ(from_file["rootKeyFrom"], "file");
  EXPECT_EQ(from_file["entries"][0]["active"], false);
  EXPECT_GT(from_file["entries"][0]["revokedMs"].get<int64_t>(), 0);
  EXPECT_EQ(from_file["entries"][1]["active"], true);

  std::string table = Ok({"roster", "show", city_ + "/rosters/000002.roster"});
  EXPECT_NE(table.find("version    2"), std::string::npos) << table;
  EXPECT_NE(table.find("root key   " + root_key), std::string::npos) << table;
  EXPECT_NE(table.find("compare it with the city's root key"), std::string::npos) << table;
  EXPECT_NE(table.find("Farsta mottagning 2"), std::string::npos) << table;
  EXPECT_NE(table.find("1 device, 1 active"), std::string::npos) << table;

  // Each version was kept and each is a valid replacement of the one before.
  for (int v = 1; v <= 4; ++v) {
    EXPECT_TRUE(fs::exists(city_ + "/rosters/00000" + std::to_string(v) + ".roster")) << v;
  }
  auto v4 = Roster::Open(Slurp(city_ + "/roster.latest"));
  auto v2 = Roster::Open(Slurp(city_ + "/rosters/000002.roster"));
  ASSERT_TRUE(v4.ok() && v2.ok());
  EXPECT_TRUE(v2->CheckReplacement(*v4).ok());
  EXPECT_EQ(v4->CheckReplacement(*v2).code(), Code::kInvalidInput);
}

TEST_F(RosterCliTest, MistakesAreOneLineAndChangeNothing) {
  Init();
  DeviceKeys device;
  Add(device, "writer", "Skarpnäck", "S1");
  std::vector<uint8_t> before = Slurp(city_ + "/roster.latest");

  auto add = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"roster", "add", "--city", city_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  DeviceKeys fresh;
  ExpectOneLineError(add({"--device-key", device.signing, "--transport-key", fresh.transport, "--role", "central"}),
                     2, "is already in the roster");
  ExpectOneLineError(add({"--device-key", fresh.signing, "--transport-key", fresh.transport, "--role", "writer"}), 2,
                     "a writer needs --district");
  ExpectOneLineError(add({"--device-key", fresh.signing, "--transport-key", fresh.transport, "--role", "writer",
                          "--district", "Gamla stan"}),
                     2, "unknown district 'Gamla stan'");
  ExpectOneLineError(add({"--device-key", fresh.signing, "--transport-key", fresh.transport, "--role", "auditor",
                          "--district", "Farsta"}),
                     2, "city-wide");
  ExpectOneLineError(add({"--device-key", fresh.signing, "--transport-key", fresh.transport, "--role", "boss"}), 2,
                     "unknown role 'boss'");
  ExpectOneLineError(add({"--device-key", "abc", "--transport-key", fresh.transport, "--role", "central"}), 2,
                     "--device-key must be 64 hexadecimal characters");
  ExpectOneLineError(Run({"roster", "revoke", "--city", city_, "--device-key", fresh.signing}), 3,
                     "is not in the roster");
  ExpectOneLineError(Run({"roster", "revoke", "--city", city_, "--device-key", device.signing},
                         {"SAMSYNC_PASSPHRASE=fel"}),
                     2, "wrong passphrase, or not a samsync city folder");
  ExpectOneLineError(Run({"city", "init", city_, "--kdf", "interactive"}), 2, "already holds a city");
  ExpectOneLineError(Run({"roster", "show"}), 2, "either --city DIR or a roster FILE");
  ExpectOneLineError(Run({"roster", "show", "--city", dir_.Sub("nowhere")}), 3, "no city at");
  EXPECT_EQ(Slurp(city_ + "/roster.latest"), before);
  EXPECT_FALSE(fs::exists(city_ + "/rosters/000003.roster"));
}

TEST_F(RosterCliTest, ATamperedRosterFileIsRefused) {
  Init();
  Add(DeviceKeys(), "writer", "Bromma", "B1");
  std::vector<uint8_t> bytes = Slurp(city_ + "/roster.latest");
  bytes[bytes.size() - 10] ^= 0x01;  // inside the signature
  std::string copy = dir_.Sub("copy.roster");
  std::ofstream(copy, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  ExpectOneLineError(Run({"roster", "show", copy}), 1, "signature does not verify");
  ExpectOneLineError(Run({"roster", "show", city_ + "/city.header"}), 4, "city.header");
}

TEST_F(RosterCliTest, AKeyFileNamedAtInitIsCreated) {
  std::string key = dir_.Sub("city.key");
  std::vector<std::string> no_passphrase = {"SAMSYNC_KEY_FILE=" + key};
  CommandResult made = Run({"city", "init", city_}, no_passphrase);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("created key file " + key), std::string::npos) << made.out;
  EXPECT_TRUE(fs::exists(key));
  DeviceKeys device;
  CommandResult added = Run({"roster", "add", "--city", city_, "--device-key", device.signing, "--transport-key",
                             device.transport, "--role", "admin", "--label", "IT"},
                            no_passphrase);
  EXPECT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("roster version 2 of stockholm.se: added admin " + device.signing), std::string::npos)
      << added.out;
  // Without the key file (and no passphrase to fall back on), nothing opens.
  CommandResult no_key = Run({"roster", "revoke", "--city", city_, "--device-key", device.signing},
                             {"SAMSYNC_PASSPHRASE=korrekt häst batteri"});
  EXPECT_EQ(no_key.exit_code, 2);
  EXPECT_NE(no_key.err.find("opened with a key file"), std::string::npos) << no_key.err;
}

}  // namespace
}  // namespace samsync
