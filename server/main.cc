// samsync-server: the city's sync server. See README.md, "The city's sync server".
#include <csignal>
#include <filesystem>
#include <iostream>
#include <set>

#include "cli.h"
#include "cmd_export.h"
#include "cmd_report.h"
#include "dashboard.h"
#include "samsync/districts.h"
#include "samsync/process.h"
#include "samsync/tlog.h"
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
  std::string http;                // run: the dashboard's HOST:PORT; empty: no dashboard
  bool http_allow_remote = false;  // run: allow --http off the loopback
  std::string device_key;          // token: the central office's signing key, hex
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
  options.transparency_log = true;
  auto store = Store::Create(o.data, KeySource::KeyFile(key_file), std::move(options), clock);
  if (!store.ok()) return Fail(store.status());
  if (Status installed = (*store)->InstallRoster(roster); !installed.ok()) return Fail(installed);
  if (o.json) {
    cli::PrintJson({{"data", o.data},
                    {"keyFile", key_file},
                    {"serverKey", (*store)->transport_key().ToHex()},
                    {"logKey", (*store)->device_key().ToHex()},
                    {"rosterVersion", checked->version()}});
    return cli::kExitOk;
  }
  std::cout << "created the city's sync store in " << o.data << '\n';
  if (made_key) std::cout << "created key file " << key_file << " (keep it safe: without it the store cannot be opened)\n";
  std::cout << "installed roster version " << checked->version() << " of " << checked->city() << '\n'
            << "server key " << (*store)->transport_key().ToHex() << '\n'
            << "log key    " << (*store)->device_key().ToHex() << '\n'
            << "next, the city's admin enrols this server, so that every machine can check its log:\n"
            << "  samsync roster add --role server --device-key " << (*store)->device_key().ToHex()
            << " --transport-key " << (*store)->transport_key().ToHex() << " --label \"sync server\"\n"
            << "and installs the new roster here (samsync-server roster import) and on the machines.\n"
            << "district machines sync with: samsync sync --server tcp://HOST:PORT --server-key "
            << (*store)->transport_key().ToHex() << '\n';
  return cli::kExitOk;
}

int RunServe(const Options& o) {
  SystemClock clock;
  std::optional<HttpAddress> http;
  if (!o.http.empty()) {
    auto address = ParseHttpAddress(o.http, o.http_allow_remote);
    if (!address.ok()) return Fail(address.status());
    http = *address;
  }
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // The dashboard reads the store from its own thread beside the sync loop (dashboard.h).
  std::unique_ptr<Dashboard> dashboard;
  if (http) {
    DashboardOptions options;
    options.address = *http;
    auto started = Dashboard::Start(**store, clock, options, std::cerr);
    if (!started.ok()) return Fail(started.status());
    dashboard = std::move(started).value();
    std::string host = http->host.find(':') == std::string::npos ? http->host : "[" + http->host + "]";
    std::cout << "dashboard on http://" << host << ":" << dashboard->port() << "/" << std::endl;
  }
  SyncServer server(**store, std::cerr, o.data + "/evidence");
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

// Prints the dashboard token of an active central-office entry of the roster.
int RunToken(const Options& o) {
  SystemClock clock;
  auto key = PublicKey::FromHex(o.device_key, "--device-key");
  if (!key.ok()) return Fail(key.status());
  auto store = OpenServerStore(o, clock);
  if (!store.ok()) return Fail(store.status());
  auto roster = (*store)->InstalledRoster();
  if (!roster.ok()) return Fail(roster.status());
  if (!*roster) return Fail(Status::Invalid("the server has no roster installed"));
  std::string token = DashboardToken(**store, *key);
  if (Status checked = CheckDashboardToken(**store, **roster, token); !checked.ok()) {
    return Fail(Status::Unauthorised("--device-key " + o.device_key.substr(0, 16) +
                                     "…: not an active central-office entry of the roster (samsync roster add "
                                     "--role central)"));
  }
  if (o.json) {
    cli::PrintJson({{"token", token}});
  } else {
    std::cout << token << '\n';
  }
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
  // Devices the server caught signing two histories (cloned), from the kept evidence.
  std::vector<ForkEvidence> forks = ListForkEvidence(o.data + "/evidence");
  if (o.json) {
    nlohmann::json per = nlohmann::json::object();
    for (const auto& [district, counts] : districts) per[district] = {{"devices", counts.first}, {"commits", counts.second}};
    nlohmann::json forked = nlohmann::json::array();
    for (const ForkEvidence& f : forks) {
      forked.push_back({{"device", f.device.ToHex()}, {"seq", f.seq}, {"held", f.held.ToHex()},
                        {"offered", f.offered.ToHex()}, {"evidence", f.folder}});
    }
    cli::PrintJson({{"stateHash", summary->state_hash.ToHex()},
                    {"records", summary->records},
                    {"commits", summary->commits},
                    {"devices", summary->heads.size()},
                    {"conflicts", summary->conflicts},
                    {"waiting", summary->waiting},
                    {"rosterVersion", *roster ? (*roster)->version() : 0},
                    {"districts", per},
                    {"forks", forked}});
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
  for (const ForkEvidence& f : forks) {
    std::cout << "FORK: device " << f.device.ToHex() << " signed two histories at seq " << f.seq << " (held "
              << f.held.ToHex().substr(0, 16) << ", refused " << f.offered.ToHex().substr(0, 16)
              << "): a cloned device; evidence in " << f.folder << '\n';
  }
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
  // The transparency log: every commit held is one leaf, once, and the stored tree's
  // root is the one the leaves give.
  auto size = (*store)->LogSize();
  if (!size.ok()) return Fail(size.status());
  std::set<Hash> leaves;
  MerkleRootBuilder builder;
  Status walked = (*store)->LogCommits(0, [&](uint64_t, const Commit& commit) {
    leaves.insert(commit.id());
    builder.Add(MerkleLeafHash(commit.id().span()));
    return true;
  });
  if (!walked.ok()) return Fail(walked);
  auto root = (*store)->LogRoot(*size);
  if (!root.ok()) return Fail(root.status());
  std::string log_failure;
  if (leaves.size() != *size) log_failure = "a commit is in the transparency log twice";
  else if (*size != report->commits) {
    log_failure = "the transparency log has " + std::to_string(*size) + " entries for " +
                  std::to_string(report->commits) + " commits";
  } else if (builder.Root() != *root) {
    log_failure = "the transparency log's stored tree does not match its leaves";
  }
  if (!log_failure.empty()) {
    std::cerr << "samsync-server: verify failed: " << log_failure << std::endl;
    return cli::kExitCheckFailed;
  }
  std::cout << "verify: ok: " << report->commits << " commits (" << report->ops << " ops) from " << report->devices
            << " devices, every signature, chain link and author checked against roster version "
            << report->roster_version << "; " << report->records << " records re-derived; state hash "
            << report->state_hash.ToHex() << "; the transparency log holds each commit once, root "
            << root->ToHex() << '\n';
  return cli::kExitOk;
}

// A consistent copy of the running server's store (its own read transaction: the sync
// loop keeps writing), encrypted under its key file as the store is.
int RunBackup(const Options& o, const std::string& file) {
  SystemClock clock;
  if (o.data.empty()) return Fail(Status::Invalid("no data folder: pass --data DIR"));
  OpenOptions options;
  options.read_only = true;
  auto store = Store::Open(o.data, KeySource::KeyFile(KeyFileOf(o)), clock, options);
  if (!store.ok()) return Fail(store.status());
  if (!(*store)->city_wide()) return Fail(Status::Invalid(o.data + " is a district's store, not the city's sync server store"));
  auto log_size = (*store)->LogSize();
  if (!log_size.ok()) return Fail(log_size.status());
  auto info = (*store)->Backup(file);
  if (!info.ok()) return Fail(info.status());
  if (o.json) {
    cli::PrintJson({{"file", file}, {"bytes", info->file_bytes}, {"dataBytes", info->data_bytes},
                    {"sha256", info->data_sha256.ToHex()}, {"logSizeAtLeast", *log_size}});
    return cli::kExitOk;
  }
  std::cout << "backup written to " << file << " (" << info->file_bytes / 1024 << " KiB, sha256 "
            << info->data_sha256.ToHex() << "; the log held at least " << *log_size << " entries)\n"
            << "it opens with the key file " << KeyFileOf(o) << ": keep the two apart\n";
  return cli::kExitOk;
}

int RunRestore(const Options& o, const std::string& file) {
  SystemClock clock;
  if (o.data.empty()) return Fail(Status::Invalid("no data folder: pass --data DIR"));
  Store::RestoreOptions options;
  options.city_wide = true;
  auto store = Store::Restore(file, o.data, KeySource::KeyFile(KeyFileOf(o)), clock, options);
  if (!store.ok()) return Fail(store.status());
  auto log_size = (*store)->LogSize();
  if (!log_size.ok()) return Fail(log_size.status());
  auto summary = (*store)->Summary();
  if (!summary.ok()) return Fail(summary.status());
  if (o.json) {
    cli::PrintJson({{"data", o.data}, {"commits", summary->commits}, {"records", summary->records},
                    {"logSize", *log_size}, {"stateHash", summary->state_hash.ToHex()}});
    return cli::kExitOk;
  }
  std::cout << "restored the city's sync store into " << o.data << " from " << file << " (" << summary->commits
            << " commits, log size " << *log_size << ")\n"
            << "check it with samsync-server verify before serving; machines that cosigned a larger log than this "
               "one will report the server's history as inconsistent\n(README: \"Backups, passphrase changes and "
               "erasure\")\n";
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
  samsync::KeepFreedMemoryForReuse();
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
  run->add_option("--http", o.http,
                  "also serve the read-only dashboard on HOST:PORT (loopback; port 0 picks a free one, printed)");
  run->add_flag("--http-allow-remote", o.http_allow_remote,
                "allow --http on an address off the loopback (put a TLS proxy in front)");
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
  std::string backup_file;
  CLI::App* backup = app.add_subcommand("backup", "write a consistent, encrypted copy of the store to FILE (while it serves)");
  common(backup);
  backup->add_option("FILE", backup_file, "the backup file to create (never overwritten)")->required();
  backup->callback([&] { result = RunBackup(o, backup_file); });
  CLI::App* restore = app.add_subcommand(
      "restore", "create the data folder --data DIR from a backup (--key-file: the key file it was taken with)");
  common(restore);
  restore->add_option("FILE", backup_file, "the backup file")->required();
  restore->callback([&] { result = RunRestore(o, backup_file); });
  CLI::App* report = app.add_subcommand("report", "the citywide follow-up: each district's 13 indicators and the city's");
  common(report);
  ReportOptions report_options;
  AddReportOptions(*report, report_options);
  report->callback([&] {
    samsync::SystemClock clock;
    result = RunReport(report_options, o.json, clock, [&] { return OpenServerStore(o, clock); });
  });
  CLI::App* token = app.add_subcommand("token", "print a dashboard token for a central-office roster entry");
  common(token);
  token->add_option("--device-key", o.device_key, "the entry's signing key (hex)")->required();
  token->callback([&] { result = RunToken(o); });
  CLI::App* export_command = app.add_subcommand("export", "write the citywide follow-up into PostgreSQL");
  common(export_command);
  ExportOptions export_options;
  AddExportOptions(*export_command, export_options);
  export_command->callback([&] {
    samsync::SystemClock clock;
    auto store = OpenServerStore(o, clock);
    result = store.ok() ? RunExport(export_options, o.json, clock, **store) : Fail(store.status());
  });
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
