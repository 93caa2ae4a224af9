// Shared by the `samsync` subcommands: how a store is found and opened, how errors
// become one stderr line and an exit code, and how output is printed.
#ifndef SAMSYNC_CLIENT_CLI_H_
#define SAMSYNC_CLIENT_CLI_H_

#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "samsync/clock.h"
#include "samsync/record_fields.h"
#include "samsync/roster.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync::cli {

// Exit codes, documented in the README.
enum Exit : int {
  kExitOk = 0,
  kExitCheckFailed = 1,  // a check found a problem: a signature, an author the roster refuses
  kExitInvalid = 2,      // bad input, wrong passphrase or key, unusable arguments
  kExitNotFound = 3,      // also: the sync server could not be reached (offline is normal)
  kExitCorruption = 4,
  kExitIo = 5,           // file system, full store
};

int ExitCodeFor(const Status& status);

// Prints "samsync: <message>" on stderr and returns the exit code for `status`.
int Fail(const Status& status);

// Options every store command shares, filled in by CLI11.
struct Globals {
  std::string store_dir;  // --store or SAMSYNC_STORE
  std::string key_file;   // --key-file or SAMSYNC_KEY_FILE
  bool json = false;      // --json: machine-readable output
  SystemClock clock;
};

void AddGlobalOptions(CLI::App& app, Globals& globals);

// The key source: the key file if given; else SAMSYNC_PASSPHRASE; else a prompt on
// the terminal without echo (asked twice when `confirm`). Fails with kInvalidInput
// when there is no way to get one.
Result<KeySource> ResolveKey(const Globals& globals, bool confirm);

// The key for something being created: as ResolveKey (asking twice), and when
// --key-file names a file that does not exist yet, a new key file (then
// `made_key_file` is set, so the caller can remove it if creation fails).
Result<KeySource> ResolveNewKey(const Globals& globals, bool& made_key_file);

// Opens the store named by --store / SAMSYNC_STORE.
Result<std::unique_ptr<Store>> OpenStore(const Globals& globals);

// Prints rows as a table with aligned columns (UTF-8 aware), headers first, each line
// starting with `indent`.
void PrintTable(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                const std::string& indent = "");

// Prints JSON with two-space indentation and a newline.
void PrintJson(const nlohmann::json& value);

// Reads a whole file (or stdin for "-"); fails with kNotFound / kIoError naming it.
Result<std::string> ReadFile(const std::string& path);

// How people are shown a device: its roster label (when a roster is installed and
// lists it), else the first 16 hex characters of its key; " (this device)" for the
// store's own.
class DeviceNames {
 public:
  explicit DeviceNames(const Store& store);
  std::string Name(const PublicKey& key) const;

 private:
  PublicKey self_;
  std::optional<Roster> roster_;
};

// School names by id, for tables: people read names, programs read ids (JSON, CSV).
// Empty when the schools cannot be read (tables then show ids).
struct SchoolNames {
  std::map<std::string, std::string> by_id;  // id text → name
  bool loaded = false;
};
SchoolNames LoadSchoolNames(const Store& store);

// A field as a person reads it: school ids replaced by school names, and a school
// that is not there (deleted on another device while this record was written, and
// merged since) shown as "(deleted school)".
std::string DisplayText(const Record& record, const FieldInfo& field, const SchoolNames& names);

// Each group of subcommands registers itself; handlers run after parsing.
using Handler = std::function<int()>;
void RegisterStoreCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterRecordCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterFollowupCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterCityCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterHistoryCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterMergeCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterSyncCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterAuditCommands(CLI::App& app, Globals& globals, Handler& handler);
void RegisterAuditVerifyCommands(CLI::App& app, Globals& globals, Handler& handler);

// The subcommand `name` of `app`, added with `description` if it is not there yet
// (two groups of commands share `roster` and `person`).
CLI::App* Subcommand(CLI::App& app, const std::string& name, const std::string& description);

}  // namespace samsync::cli

#endif  // SAMSYNC_CLIENT_CLI_H_
