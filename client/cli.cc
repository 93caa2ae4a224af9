#include "cli.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace samsync::cli {
namespace {

// Reads a line from the terminal with echo off. Returns false without a terminal.
bool ReadHidden(const char* prompt, SecretBytes& out) {
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (tty == nullptr) return false;
  int fd = fileno(tty);
  termios old{};
  bool have_termios = tcgetattr(fd, &old) == 0;
  if (have_termios) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::fputs(prompt, tty);
  std::fflush(tty);
  SecretBytes buffer(1024);
  char* line = std::fgets(reinterpret_cast<char*>(buffer.data()), static_cast<int>(buffer.size()), tty);
  if (have_termios) tcsetattr(fd, TCSAFLUSH, &old);
  std::fputs("\n", tty);
  std::fclose(tty);
  if (line == nullptr) return false;
  size_t length = std::strlen(line);
  while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) --length;
  out = SecretBytes::CopyOf(std::span<const uint8_t>(buffer.data(), length));
  return true;
}

size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;  // count code points
  return width;
}

}  // namespace

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return kExitOk;
    case Code::kNotFound:
    case Code::kDisconnected: return kExitNotFound;
    case Code::kCorruption: return kExitCorruption;
    case Code::kIoError:
    case Code::kMapFull: return kExitIo;
    case Code::kBadSignature:
    case Code::kUnauthorised: return kExitCheckFailed;
    default: return kExitInvalid;
  }
}

int Fail(const Status& status) {
  std::cerr << "samsync: " << status.message() << std::endl;
  return ExitCodeFor(status);
}

void AddGlobalOptions(CLI::App& app, Globals& globals) {
  app.add_option("--store", globals.store_dir, "the store folder")->envname("SAMSYNC_STORE");
  app.add_option("--key-file", globals.key_file,
                 "a key file (64 hex characters, mode 0600) instead of a passphrase")
      ->envname("SAMSYNC_KEY_FILE");
  app.add_flag("--json", globals.json, "machine-readable JSON output");
}

Result<KeySource> ResolveKey(const Globals& globals, bool confirm) {
  if (!globals.key_file.empty()) return KeySource::KeyFile(globals.key_file);
  if (const char* env = std::getenv("SAMSYNC_PASSPHRASE"); env != nullptr && *env != '\0') {
    return KeySource::Passphrase(SecretBytes::CopyOf(std::string_view(env)));
  }
  SecretBytes passphrase;
  if (!ReadHidden("Passphrase: ", passphrase)) {
    return Status::Invalid("no passphrase: set SAMSYNC_PASSPHRASE, pass --key-file, or run in a terminal");
  }
  if (confirm) {
    SecretBytes again;
    if (!ReadHidden("Passphrase again: ", again) || again.view() != passphrase.view()) {
      return Status::Invalid("the passphrases differ; nothing was created");
    }
    if (passphrase.size() < 8) return Status::Invalid("the passphrase must have at least 8 characters");
  }
  if (passphrase.empty()) return Status::Invalid("the passphrase is empty");
  return KeySource::Passphrase(std::move(passphrase));
}

Result<KeySource> ResolveNewKey(const Globals& globals, bool& made_key_file) {
  made_key_file = false;
  if (!globals.key_file.empty() && !std::filesystem::exists(globals.key_file)) {
    SAMSYNC_RETURN_IF_ERROR(CreateKeyFile(globals.key_file));
    made_key_file = true;
  }
  return ResolveKey(globals, /*confirm=*/true);
}

Result<std::unique_ptr<Store>> OpenStore(const Globals& globals) {
  if (globals.store_dir.empty()) return Status::Invalid("no store: pass --store DIR or set SAMSYNC_STORE");
  SAMSYNC_ASSIGN_OR_RETURN(KeySource key, ResolveKey(globals, false));
  auto opened = Store::Open(globals.store_dir, key, globals.clock);
  // A store on a read-only file system (a mounted backup, a write-protected share)
  // still serves reads: it is opened read-only, and a write then fails on one line.
  if (!opened.ok() && opened.status().code() == Code::kIoError &&
      opened.status().message().find(std::strerror(EROFS)) != std::string::npos) {
    OpenOptions read_only;
    read_only.read_only = true;
    return Store::Open(globals.store_dir, key, globals.clock, read_only);
  }
  return opened;
}

void PrintTable(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                const std::string& indent) {
  std::vector<size_t> widths(headers.size(), 0);
  for (size_t c = 0; c < headers.size(); ++c) widths[c] = DisplayWidth(headers[c]);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line = indent;
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print_row(headers);
  std::vector<std::string> rule;
  for (size_t w : widths) rule.emplace_back(w, '-');
  print_row(rule);
  for (const auto& row : rows) print_row(row);
}

DeviceNames::DeviceNames(const Store& store) : self_(store.device_key()) {
  auto roster = store.InstalledRoster();
  if (roster.ok() && *roster) roster_ = std::move(**roster);
}

std::string DeviceNames::Name(const PublicKey& key) const {
  std::string name = key.ToHex().substr(0, 16);
  if (roster_) {
    const RosterEntry* entry = roster_->FindSigningKey(key);
    if (entry != nullptr && !entry->label.empty()) name = entry->label;
  }
  return name + (key == self_ ? " (this device)" : "");
}

SchoolNames LoadSchoolNames(const Store& store) {
  SchoolNames names;
  const FieldInfo* name = FindField(RecordType::kSchool, "name");
  Status listed = store.List(RecordType::kSchool, {}, [&](const Record& school) {
    names.by_id[school.id().ToText()] = FieldToText(school, *name);
    return true;
  });
  names.loaded = listed.ok();
  if (!names.loaded) names.by_id.clear();  // without names, the table shows ids
  return names;
}

std::string DisplayText(const Record& record, const FieldInfo& field, const SchoolNames& names) {
  std::string text = FieldToText(record, field);
  if (field.refers_to != RecordType::kSchool || text.empty() || !names.loaded) return text;
  std::string out;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = std::min(text.find(',', start), text.size());
    auto it = names.by_id.find(text.substr(start, comma - start));
    out += (out.empty() ? "" : ", ") + (it == names.by_id.end() ? std::string("(deleted school)") : it->second);
    start = comma + 1;
  }
  return out;
}

CLI::App* Subcommand(CLI::App& app, const std::string& name, const std::string& description) {
  auto found = app.get_subcommands([&name](CLI::App* sub) { return sub->get_name() == name; });
  if (!found.empty()) return found.front();
  CLI::App* added = app.add_subcommand(name, description);
  added->fallthrough();
  return added;
}

void PrintJson(const nlohmann::json& value) { std::cout << value.dump(2) << std::endl; }

Result<std::string> ReadFile(const std::string& path) {
  if (path == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    return in.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return Status::Io("cannot read " + path);
  return contents.str();
}

}  // namespace samsync::cli
