// samsync-server: the city's sync server. See README.md, "The city's sync server".
#include <csignal>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "samsync/districts.h"
#include "sync_server.h"

namespace samsync::server {
namespace {

using cli::Fail;

std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int) { g_stop = true; }

struct Options {
  std::string data;
  std::string key_file;  // default: DATA.key beside the folder
  std::string roster;
  std::string listen = "tcp://127.0.0.1:7700";
  bool json = false;
};

std::string KeyFileOf(const Options& o) {
  if (!o.key_file.empty()) return o.key_file;
  std::string data = o.data;
  while (data.size() > 1 && data.back() == '/') data.pop_back();
  return data + ".key";
}

Result<std::unique_ptr<Store>> OpenServerStore(const Options& o, const Clock& clock) {
  if (o.data.empty()) return Status::Invalid("no data folder: pass --data DIR");
  SAMSYNC_ASSIGN_OR_RETURN(auto store, Store::Open(o.data, KeySource::KeyFile(KeyFileOf(o)), clock));
  if (!store->city_wide()) return Status::Invalid(o.data + " is a district's store, not the city's sync server store");
  return store;
}

int RunInit(const Options& o) {
  SystemClock clock;
  if (o.data.empty()) return Fail(Status::Invalid("no data folder: pass --data DIR"));
  auto roster_bytes = cli::ReadFile(o.roster);
  if (!roster_bytes.ok()) return Fail(roster_bytes.status().WithContext("--roster"));
  std::span<const uint8_t> roster(reinterpret_cast<const uint8_t*>(roster_bytes->data()), roster_bytes->size());
  // Check the roster before anything is created: a server never starts on a bad one.
  auto checked = Roster::Open(roster);
  if (!checked.ok()) return Fail(checked.status().WithContext(o.roster));
  std::string key_file = KeyFileOf(o);
  bool made_key = false;
  if (!std::filesystem::exists(key_file)) {
    if (Status made = CreateKeyFile(key_file); !made.ok()) return Fail(made);
    made_key = true;
  }
  CreateOptions options;
  options.city_wide = true;
  auto store = Store::Create(o.data, KeySource::KeyFile(key_file), std::move(options), clock);
  if (!store.ok()) return Fail(store.status());
  if (Status installed = (*store)->InstallRoster(roster); !installed.ok()) return Fail(installed);
  if (o.json) {
    cli::PrintJson({{"data", o.data},
                    {"keyFile", key_file},
                    {"serverKey", (*store)->transport_key().ToHex()},
                    {"rosterVersion", checked->version()}});
    return cli::kExitOk;
  }
  std::cout << "created the city's sync store in " << o.data << '\n';
  if (made_key) std::cout << "created key file " << key_file << " (keep it safe: without it the store cannot be opened)\n";
  std::cout << "installed roster version " << checked->version() << " of " << checked->city() << '\n'
            << "server key " << (*store)->transport_key().ToHex() << '\n'
            << "district machines sync with: samsync sync --server tcp://HOST:PORT --server-key "
            << (*store)->transport_key().ToHex() << '\n';
  return cli::kExitOk;
}

int RunServe(const Options& o) {
  SystemClock clock;
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  SyncServer server(**store, std::cerr);
  Status ran = server.Run(
      o.listen,
      [&](const std::string& endpoint) {
        std::cout << "samsync-server listening on " << endpoint << '\n'
                  << "server key " << (*store)->transport_key().ToHex() << std::endl;
      },
      g_stop);
  if (!ran.ok()) return Fail(ran);
  std::cerr << "samsync-server: stopped" << std::endl;
  return cli::kExitOk;
}

int RunStatus(const Options& o) {
  SystemClock clock;
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  auto summary = (*store)->Summary();
  if (!summary.ok()) return Fail(summary.status());
  auto roster = (*store)->InstalledRoster();
  if (!roster.ok()) return Fail(roster.status());
  // Commits per district, from each device's head and its district in the roster.
  std::map<std::string, std::pair<uint64_t, uint64_t>> districts;  // devices, commits
  for (const auto& [device, seq] : summary->heads) {
    const RosterEntry* entry = *roster ? (*roster)->FindSigningKey(device) : nullptr;
    auto& counts = districts[entry ? entry->district : "(not in the roster)"];
    ++counts.first;
    counts.second += seq;
  }
  if (o.json) {
    nlohmann::json per = nlohmann::json::object();
    for (const auto& [district, counts] : districts) per[district] = {{"devices", counts.first}, {"commits", counts.second}};
    cli::PrintJson({{"stateHash", summary->state_hash.ToHex()},
                    {"records", summary->records},
                    {"commits", summary->commits},
                    {"devices", summary->heads.size()},
                    {"conflicts", summary->conflicts},
                    {"waiting", summary->waiting},
                    {"rosterVersion", *roster ? (*roster)->version() : 0},
                    {"districts", per}});
    return cli::kExitOk;
  }
  std::cout << "the city's sync store in " << o.data << '\n'
            << "state hash  " << summary->state_hash.ToHex() << '\n'
            << "records     " << summary->records << '\n'
            << "commits     " << summary->commits << " from " << summary->heads.size() << " devices\n"
            << "conflicts   " << summary->conflicts << '\n'
            << "waiting     " << summary->waiting << '\n'
            << "roster      version " << (*roster ? (*roster)->version() : 0) << "\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [district, counts] : districts) {
    rows.push_back({district, std::to_string(counts.first), std::to_string(counts.second)});
  }
  cli::PrintTable({"district", "devices", "commits"}, rows);
  return cli::kExitOk;
}

int RunVerify(const Options& o) {
  SystemClock clock;
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  auto report = (*store)->Verify();
  if (!report.ok()) return Fail(report.status());
  if (!report->failure.ok()) {
    std::cerr << "samsync-server: verify failed: " << report->failure.message() << std::endl;
    return cli::kExitCheckFailed;
  }
  std::cout << "verify: ok: " << report->commits << " commits (" << report->ops << " ops) from " << report->devices
            << " devices, every signature, chain link and author checked against roster version "
            << report->roster_version << "; " << report->records << " records re-derived; state hash "
            << report->state_hash.ToHex() << '\n';
  return cli::kExitOk;
}

int RunRosterImport(const Options& o) {
  SystemClock clock;
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  auto bytes = cli::ReadFile(o.roster);
  if (!bytes.ok()) return Fail(bytes.status());
  Status installed = (*store)->InstallRoster({reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
  if (!installed.ok()) return Fail(installed);
  auto roster = (*store)->InstalledRoster();
  std::cout << "installed roster version " << (roster.ok() && *roster ? (*roster)->version() : 0)
            << "; a running server uses it from the next sync\n";
  return cli::kExitOk;
}

}  // namespace
}  // namespace samsync::server

int main(int argc, char** argv) {
  using namespace samsync::server;
  CLI::App app{"samsync-server: the city's sync server (ZeroMQ with CURVE; only machines in the roster connect)"};
  app.set_version_flag("--version", "samsync-server 0.1.0");
  app.require_subcommand(1);
  Options o;
  int result = samsync::cli::kExitInvalid;
  auto common = [&o](CLI::App* sub) {
    sub->add_option("--data", o.data, "the server's store folder")->required()->envname("SAMSYNC_SERVER_DATA");
    sub->add_option("--key-file", o.key_file, "its key file (default: DATA.key beside the folder)");
    sub->add_flag("--json", o.json, "machine-readable JSON output");
  };
  CLI::App* init = app.add_subcommand("init", "create the server's encrypted store, its keys and its roster");
  common(init);
  init->add_option("--roster", o.roster, "the city's signed roster file (roster.latest)")->required();
  init->callback([&] { result = RunInit(o); });
  CLI::App* run = app.add_subcommand("run", "serve syncs until SIGINT or SIGTERM");
  common(run);
  run->add_option("--listen", o.listen, "where to listen; port 0 picks a free one (printed)")->capture_default_str();
  run->callback([&] { result = RunServe(o); });
  CLI::App* status = app.add_subcommand("status", "the city view: state hash, commits per district");
  common(status);
  status->callback([&] { result = RunStatus(o); });
  CLI::App* verify = app.add_subcommand("verify", "re-derive the city view from the signed commits and check them all");
  common(verify);
  verify->callback([&] { result = RunVerify(o); });
  CLI::App* roster = app.add_subcommand("roster", "the roster the server admits machines by")->require_subcommand(1);
  CLI::App* roster_import = roster->add_subcommand("import", "install a newer signed roster");
  common(roster_import);
  roster_import->add_option("FILE", o.roster, "the signed roster file")->required();
  roster_import->callback([&] { result = RunRosterImport(o); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "samsync-server: " << e.what() << " (see samsync-server --help)" << std::endl;
    return samsync::cli::kExitInvalid;
  }
  return result;
}
