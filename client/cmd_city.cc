// city init, roster add / revoke / show: the city admin's folder and its signed roster.
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "samsync/clock.h"
#include "samsync/city.h"
#include "samsync/districts.h"
#include "samsync/roster.h"

namespace samsync::cli {
namespace {

// "2016-11-15 12:00 UTC"; "" for 0 (no time).
std::string FormatUtc(int64_t ms) { return ms == 0 ? "" : FormatTime(ms, /*seconds=*/false); }

Result<KdfStrength> ParseKdf(const std::string& name) {
  if (name == "interactive") return KdfStrength::kInteractive;
  if (name == "moderate") return KdfStrength::kModerate;
  if (name == "sensitive") return KdfStrength::kSensitive;
  return Status::Invalid("--kdf must be interactive, moderate or sensitive");
}

Result<std::unique_ptr<City>> OpenCity(const Globals& g, const std::string& dir) {
  if (dir.empty()) return Status::Invalid("no city folder: pass --city DIR or set SAMSYNC_CITY");
  SAMSYNC_ASSIGN_OR_RETURN(KeySource key, ResolveKey(g, /*confirm=*/false));
  return City::Open(dir, key, g.clock);
}

struct InitOptions {
  std::string dir;
  std::string name = "stockholm.se";
  std::string kdf = "moderate";
};

int RunCityInit(Globals& g, const InitOptions& o) {
  auto kdf = ParseKdf(o.kdf);
  if (!kdf.ok()) return Fail(kdf.status());
  bool made_key_file = false;
  auto key = ResolveNewKey(g, made_key_file);
  if (!key.ok()) return Fail(key.status());
  auto city = City::Create(o.dir, *key, o.name, g.clock, *kdf);
  if (!city.ok()) {
    if (made_key_file) std::filesystem::remove(g.key_file);
    return Fail(city.status());
  }
  const City& c = **city;
  if (g.json) {
    PrintJson({{"city", c.name()},
               {"dir", c.dir()},
               {"rootKey", c.root_key().ToHex()},
               {"version", c.roster().version()},
               {"roster", c.LatestPath()},
               {"keyFileCreated", made_key_file}});
    return 0;
  }
  std::cout << "created the city " << c.name() << " in " << c.dir() << '\n'
            << "root key  " << c.root_key().ToHex() << '\n'
            << "          every device and server checks the roster against this key: give it to them\n"
            << "roster    version 1, no devices yet: " << c.LatestPath() << '\n';
  if (made_key_file) {
    std::cout << "created key file " << g.key_file
              << " (keep it safe and apart from the folder: without it the root key cannot be used)\n";
  }
  return 0;
}

// What a change printed: the new version and where it was written.
int PrintChange(const Globals& g, const City& city, const std::string& what) {
  uint64_t version = city.roster().version();
  if (g.json) {
    PrintJson({{"city", city.name()},
               {"version", version},
               {"roster", city.RosterPath(version)},
               {"latest", city.LatestPath()}});
    return 0;
  }
  std::cout << "roster version " << version << " of " << city.name() << ": " << what << '\n'
            << "wrote " << city.RosterPath(version) << " and its copy " << city.LatestPath() << '\n';
  return 0;
}

struct AddOptions {
  std::string city;
  std::string device_key, transport_key, district, role, label;
};

int RunRosterAdd(Globals& g, const AddOptions& o) {
  RosterEntry entry;
  auto signing = Bytes32::FromHex(o.device_key, "--device-key");
  if (!signing.ok()) return Fail(signing.status());
  auto transport = Bytes32::FromHex(o.transport_key, "--transport-key");
  if (!transport.ok()) return Fail(transport.status());
  auto role = ParseRole(o.role);
  if (!role.ok()) return Fail(role.status().WithContext("--role"));
  entry.signing_key = *signing;
  entry.transport_key = *transport;
  entry.role = *role;
  entry.label = o.label;
  if (*role == Role::kWriter) {
    if (o.district.empty()) return Fail(Status::Invalid("a writer needs --district (the district it writes for)"));
    auto district = CanonicalDistrict(o.district);
    if (!district.ok()) return Fail(district.status().WithContext("--district"));
    entry.district = *district;
  } else if (!o.district.empty()) {
    return Fail(Status::Invalid("the role " + o.role + " is city-wide: leave out --district"));
  }
  auto city = OpenCity(g, o.city);
  if (!city.ok()) return Fail(city.status());
  if (Status s = (*city)->AddEntry(entry); !s.ok()) return Fail(s);
  std::string what = "added " + std::string(RoleName(entry.role)) +
                     (entry.district.empty() ? "" : " of " + entry.district) + " " + entry.signing_key.ToHex();
  return PrintChange(g, **city, what);
}

int RunRosterRevoke(Globals& g, const std::string& dir, const std::string& device_key) {
  auto signing = Bytes32::FromHex(device_key, "--device-key");
  if (!signing.ok()) return Fail(signing.status());
  auto city = OpenCity(g, dir);
  if (!city.ok()) return Fail(city.status());
  int64_t now = g.clock.NowMs();
  if (Status s = (*city)->Revoke(*signing, now); !s.ok()) return Fail(s);
  return PrintChange(g, **city, "revoked " + signing->ToHex() + " from " + FormatUtc(now) + " on");
}

struct ShowOptions {
  std::string city;
  std::string file;
};

int RunRosterShow(Globals& g, const ShowOptions& o) {
  if (o.city.empty() == o.file.empty()) {
    return Fail(Status::Invalid("roster show takes either --city DIR or a roster FILE"));
  }
  auto read = [&o]() -> Result<Roster> {
    if (!o.city.empty()) return City::ReadLatestRoster(o.city);
    SAMSYNC_ASSIGN_OR_RETURN(std::string bytes, ReadFile(o.file));
    auto opened = Roster::Open({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    if (!opened.ok()) return opened.status().WithContext(o.file);
    return opened;
  };
  Result<Roster> roster = read();
  if (!roster.ok()) return Fail(roster.status());
  std::string trust = o.city.empty() ? "the root key the file names: compare it with the city's root key"
                                     : "the city's root key (" + o.city + "/city.header)";
  const Roster& r = *roster;
  size_t active = 0;
  for (const RosterEntry& e : r.entries()) active += e.revoked_ms == 0;

  if (g.json) {
    nlohmann::json entries = nlohmann::json::array();
    for (const RosterEntry& e : r.entries()) {
      entries.push_back({{"label", e.label},
                         {"role", RoleName(e.role)},
                         {"district", e.district},
                         {"signingKey", e.signing_key.ToHex()},
                         {"transportKey", e.transport_key.ToHex()},
                         {"addedMs", e.added_ms},
                         {"revokedMs", e.revoked_ms},
                         {"active", e.revoked_ms == 0}});
    }
    PrintJson({{"city", r.city()},
               {"version", r.version()},
               {"issuedMs", r.issued_ms()},
               {"rootKey", r.root_key().ToHex()},
               {"rootKeyFrom", o.city.empty() ? "file" : "city"},
               {"signatureVerified", true},
               {"entries", entries}});
    return 0;
  }
  std::cout << "city       " << r.city() << '\n'
            << "version    " << r.version() << ", issued " << FormatUtc(r.issued_ms()) << '\n'
            << "root key   " << r.root_key().ToHex() << '\n'
            << "signature  verified with " << trust << "\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const RosterEntry& e : r.entries()) {
    rows.push_back({e.label, std::string(RoleName(e.role)), e.district, e.signing_key.ToHex(),
                    e.transport_key.ToHex(), FormatUtc(e.added_ms), FormatUtc(e.revoked_ms)});
  }
  PrintTable({"label", "role", "district", "signing key", "transport key", "added", "revoked"}, rows);
  std::cout << r.entries().size() << (r.entries().size() == 1 ? " device, " : " devices, ") << active
            << " active\n";
  return 0;
}

}  // namespace

void RegisterCityCommands(CLI::App& app, Globals& g, Handler& handler) {
  CLI::App* city = Subcommand(app, "city", "the city admin's folder: the root key that signs the roster");
  city->require_subcommand(1);
  auto init_options = std::make_shared<InitOptions>();
  CLI::App* init = city->add_subcommand(
      "init", "create the city folder with a new root key (a new key file is made if --key-file names none)");
  init->fallthrough();
  init->add_option("dir", init_options->dir, "the city folder to create")->required();
  init->add_option("--name", init_options->name, "the city's name (default stockholm.se)");
  init->add_option("--kdf", init_options->kdf, "passphrase hardening: interactive, moderate (default), sensitive");
  init->callback([&g, &handler, init_options] {
    handler = [&g, init_options] { return RunCityInit(g, *init_options); };
  });

  // Shared with `roster import` (cmd_history.cc): whichever group registers first adds it.
  CLI::App* roster = Subcommand(app, "roster", "the city's signed list of devices: who may write, read or audit");
  roster->require_subcommand(1);

  auto add_options = std::make_shared<AddOptions>();
  CLI::App* add = roster->add_subcommand("add", "add a device; signs and writes the next roster version");
  add->fallthrough();
  add->add_option("--city", add_options->city, "the city folder")->envname("SAMSYNC_CITY");
  add->add_option("--device-key", add_options->device_key, "the device's signing key (samsync whoami)")->required();
  add->add_option("--transport-key", add_options->transport_key, "the device's transport key (samsync whoami)")
      ->required();
  add->add_option("--district", add_options->district, "the district a writer writes for");
  add->add_option("--role", add_options->role,
                  "writer, central, auditor, admin, or server (the sync server: its --device-key is the "
                  "log key samsync-server init printed)")
      ->required();
  add->add_option("--label", add_options->label, "what to call the device, e.g. \"Farsta mottagning 2\"");
  add->callback([&g, &handler, add_options] {
    handler = [&g, add_options] { return RunRosterAdd(g, *add_options); };
  });

  auto revoke_city = std::make_shared<std::string>();
  auto revoke_key = std::make_shared<std::string>();
  CLI::App* revoke = roster->add_subcommand(
      "revoke", "revoke a device from now on; signs and writes the next roster version");
  revoke->fallthrough();
  revoke->add_option("--city", *revoke_city, "the city folder")->envname("SAMSYNC_CITY");
  revoke->add_option("--device-key", *revoke_key, "the device's signing key")->required();
  revoke->callback([&g, &handler, revoke_city, revoke_key] {
    handler = [&g, revoke_city, revoke_key] { return RunRosterRevoke(g, *revoke_city, *revoke_key); };
  });

  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = roster->add_subcommand("show", "check a roster's signature and list its devices");
  show->fallthrough();
  show->add_option("--city", show_options->city, "the city folder (its newest roster)");
  show->add_option("file", show_options->file, "a roster file, e.g. roster.latest");
  show->callback([&g, &handler, show_options] {
    handler = [&g, show_options] { return RunRosterShow(g, *show_options); };
  });
}

}  // namespace samsync::cli
