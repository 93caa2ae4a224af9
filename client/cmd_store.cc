// init, info, person, backup, restore, passwd: the store itself and its local
// identity table.
#include <termios.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "samsync/districts.h"
#include "samsync/identity.h"

namespace samsync::cli {
namespace {

Result<KdfStrength> ParseKdf(const std::string& name) {
  if (name == "interactive") return KdfStrength::kInteractive;
  if (name == "moderate") return KdfStrength::kModerate;
  if (name == "sensitive") return KdfStrength::kSensitive;
  return Status::Invalid("--kdf must be interactive, moderate or sensitive");
}

struct InitOptions {
  std::string district;
  bool city_wide = false;
  std::string kdf = "interactive";
  std::string pseudonym_key_file;
};

int RunInit(Globals& g, const InitOptions& o) {
  if (g.store_dir.empty()) return Fail(Status::Invalid("no store: pass --store DIR or set SAMSYNC_STORE"));
  if (o.city_wide == !o.district.empty()) {
    return Fail(Status::Invalid("pass --district NAME for a district's machine, or --city-wide for the central "
                                "office's or an auditor's"));
  }
  CreateOptions options;
  options.city_wide = o.city_wide;
  if (!o.city_wide) {
    auto district = CanonicalDistrict(o.district);
    if (!district.ok()) return Fail(district.status());
    options.district = *district;
  }
  auto kdf = ParseKdf(o.kdf);
  if (!kdf.ok()) return Fail(kdf.status());
  options.kdf = *kdf;
  if (!o.pseudonym_key_file.empty()) {
    auto key = ReadKeyFile(o.pseudonym_key_file);
    if (!key.ok()) return Fail(key.status().WithContext("--pseudonym-key-file"));
    options.pseudonym_key = std::move(key).value();
  }
  bool made_key_file = false;
  auto key = ResolveNewKey(g, made_key_file);
  if (!key.ok()) return Fail(key.status());
  auto store = Store::Create(g.store_dir, *key, std::move(options), g.clock);
  if (!store.ok()) {
    if (made_key_file) std::filesystem::remove(g.key_file);
    return Fail(store.status());
  }
  if (g.json) {
    PrintJson({{"store", g.store_dir},
               {"district", (*store)->district()},
               {"cityWide", (*store)->city_wide()},
               {"keyFileCreated", made_key_file}});
  } else {
    std::string whose = (*store)->city_wide() ? "the whole city (it pulls every district's commits)" : (*store)->district();
    std::cout << "created a store for " << whose << " in " << g.store_dir << '\n';
    if (made_key_file) std::cout << "created key file " << g.key_file << " (keep it safe: without it the store cannot be opened)\n";
  }
  return 0;
}

int RunInfo(Globals& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto stats = (*store)->Stats();
  if (!stats.ok()) return Fail(stats.status());
  if (g.json) {
    nlohmann::json records = nlohmann::json::object();
    for (RecordType t : AllRecordTypes()) records[std::string(RecordTypeName(t))] = stats->records_by_type[static_cast<int>(t)];
    PrintJson({{"district", stats->district}, {"records", records}, {"children", stats->persons}, {"fileBytes", stats->file_bytes}});
    return 0;
  }
  std::cout << "district  " << stats->district << "\nstore     " << g.store_dir << " (" << stats->file_bytes / 1024
            << " KiB)\nchildren  " << stats->persons << " in the local identity table\n\n";
  std::vector<std::vector<std::string>> rows;
  for (RecordType t : AllRecordTypes()) {
    rows.push_back({std::string(RecordTypeName(t)), std::to_string(stats->records_by_type[static_cast<int>(t)])});
  }
  PrintTable({"type", "records"}, rows);
  return 0;
}

std::string FormatTime(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

int RunBackup(Globals& g, const std::string& file) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto info = (*store)->Backup(file);
  if (!info.ok()) return Fail(info.status());
  if (g.json) {
    PrintJson({{"file", file}, {"bytes", info->file_bytes}, {"dataBytes", info->data_bytes},
               {"sha256", info->data_sha256.ToHex()}});
  } else {
    std::cout << "backup written to " << file << " (" << info->file_bytes / 1024 << " KiB, sha256 "
              << info->data_sha256.ToHex() << ")\nit is encrypted like the store: it opens with the passphrase or key "
              << "file the store has now\n";
  }
  return 0;
}

int RunRestore(Globals& g, const std::string& file) {
  if (g.store_dir.empty()) return Fail(Status::Invalid("no store folder to restore into: pass --store DIR"));
  if (!std::filesystem::exists(file)) return Fail(Status::NotFound("no backup file " + file));
  auto key = ResolveKey(g, false);
  if (!key.ok()) return Fail(key.status());
  Store::RestoreOptions options;
  options.city_wide = std::nullopt;
  auto store = Store::Restore(file, g.store_dir, *key, g.clock, options);
  if (!store.ok()) return Fail(store.status());
  auto summary = (*store)->Summary();
  if (!summary.ok()) return Fail(summary.status());
  if (g.json) {
    PrintJson({{"store", g.store_dir}, {"district", (*store)->district()}, {"records", summary->records},
               {"commits", summary->commits}, {"stateHash", summary->state_hash.ToHex()}});
  } else {
    std::cout << "restored the store of " << ((*store)->city_wide() ? "the whole city" : (*store)->district())
              << " into " << g.store_dir << " from " << file << " (" << summary->records << " records, "
              << summary->commits << " commits)\nrun samsync sync before working on it: it brings back what this "
                 "machine synced after the backup\n";
  }
  return 0;
}

// Reads a line from the terminal with echo off; false without a terminal. (As cli.cc
// reads the passphrase; the new one is asked with other prompts.)
bool ReadHiddenLine(const char* prompt, SecretBytes& out) {
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

// The new passphrase: SAMSYNC_NEW_PASSPHRASE (scripts), else asked twice on the terminal.
Result<SecretBytes> ReadNewPassphrase() {
  SecretBytes passphrase;
  if (const char* env = std::getenv("SAMSYNC_NEW_PASSPHRASE"); env != nullptr && *env != '\0') {
    passphrase = SecretBytes::CopyOf(std::string_view(env));
  } else {
    if (!ReadHiddenLine("New passphrase: ", passphrase)) {
      return Status::Invalid("no new passphrase: set SAMSYNC_NEW_PASSPHRASE or run in a terminal");
    }
    SecretBytes again;
    if (!ReadHiddenLine("New passphrase again: ", again) || again.view() != passphrase.view()) {
      return Status::Invalid("the new passphrases differ; nothing was changed");
    }
  }
  if (passphrase.size() < 8) {
    return Status::Invalid("the new passphrase must have at least 8 characters; nothing was changed");
  }
  return passphrase;
}

int RunPasswd(Globals& g, const std::string& new_key_file) {
  if (!g.key_file.empty() && new_key_file.empty()) {
    return Fail(Status::Invalid("this store opens with a key file (" + g.key_file +
                                "), which has no passphrase: pass --new-key-file FILE to move it to a new key file"));
  }
  auto store = OpenStore(g);  // the present passphrase or key file
  if (!store.ok()) return Fail(store.status());
  KeySource new_key;
  bool made_key_file = false;
  if (!new_key_file.empty()) {
    if (!std::filesystem::exists(new_key_file)) {
      if (Status made = CreateKeyFile(new_key_file); !made.ok()) return Fail(made);
      made_key_file = true;
    }
    new_key = KeySource::KeyFile(new_key_file);
  } else {
    auto passphrase = ReadNewPassphrase();
    if (!passphrase.ok()) return Fail(passphrase.status());
    new_key = KeySource::Passphrase(std::move(passphrase).value());
  }
  Status changed = (*store)->ChangeKey(new_key);
  if (!changed.ok()) {
    if (made_key_file) std::filesystem::remove(new_key_file);
    return Fail(changed);
  }
  std::string now = new_key_file.empty() ? "the new passphrase" : "key file " + new_key_file;
  if (g.json) {
    PrintJson({{"store", g.store_dir}, {"keySource", new_key_file.empty() ? "passphrase" : "keyFile"},
               {"keyFileCreated", made_key_file}});
  } else {
    std::cout << "the store in " << g.store_dir << " now opens with " << now
              << " only (its data key was re-wrapped, no record re-encrypted, and the file compacted so the old "
                 "wrapped key is in no free page)\n"
              << "backups taken before still open with the old one\n";
  }
  return 0;
}

int RunForget(Globals& g, const std::string& ref_text) {
  auto ref = Id16::Parse(ref_text, "child reference");
  if (!ref.ok()) return Fail(ref.status());
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto report = (*store)->ForgetPerson(*ref);
  if (!report.ok()) return Fail(report.status());
  if (g.json) {
    PrintJson({{"childRef", ref->ToText()}, {"erasedMs", report->erased_ms}, {"alreadyErased", report->already_erased},
               {"fileBytesBefore", report->file_bytes_before}, {"fileBytesAfter", report->file_bytes_after}});
  } else {
    std::cout << (report->already_erased ? "child " + ref->ToText() + " was already erased; "
                                         : "erased child " + ref->ToText() + " from the identity table; ")
              << "the store file was rewritten (" << report->file_bytes_before / 1024 << " KiB → "
              << report->file_bytes_after / 1024
              << " KiB) so no free page keeps the old entry\nrecords and history that refer to " << ref->ToText()
              << " stay (pseudonymous); backups taken before still hold the entry\n";
  }
  return 0;
}

}  // namespace

void RegisterStoreCommands(CLI::App& app, Globals& g, Handler& handler) {
  auto init_options = std::make_shared<InitOptions>();
  CLI::App* init = app.add_subcommand("init", "create a district store (a new key file is made if --key-file names none)");
  init->fallthrough();
  init->add_option("--district", init_options->district, "the district, e.g. Skarpnäck");
  init->add_flag("--city-wide", init_options->city_wide,
                 "a store of every district's commits, for the central office or an auditor (synced read-only)");
  init->add_option("--kdf", init_options->kdf, "passphrase hardening: interactive (default), moderate, sensitive");
  init->add_option("--pseudonym-key-file", init_options->pseudonym_key_file,
                   "the city's pseudonymisation key (64 hex characters); a new one if not given");
  init->callback([&g, &handler, init_options] { handler = [&g, init_options] { return RunInit(g, *init_options); }; });

  CLI::App* info = app.add_subcommand("info", "the store's district, size and record counts");
  info->fallthrough();
  info->callback([&g, &handler] { handler = [&g] { return RunInfo(g); }; });

  CLI::App* person = app.add_subcommand("person", "the local identity table (never synced)")->require_subcommand(1);
  person->fallthrough();
  auto pnr = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  CLI::App* person_add = person->add_subcommand("add", "add a child; prints the child reference to use in records");
  person_add->fallthrough();
  person_add->add_option("--personnummer", *pnr, "YYYYMMDD-NNNN")->required();
  person_add->add_option("--name", *name, "the child's name")->required();
  person_add->callback([&g, &handler, pnr, name] {
    handler = [&g, pnr, name] {
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto ref = (*store)->AddPerson(*pnr, *name);
      WipeMemory(pnr->data(), pnr->size());
      if (!ref.ok()) return Fail(ref.status());
      if (g.json) {
        PrintJson({{"childRef", ref->ToText()}});
      } else {
        std::cout << ref->ToText() << '\n';
      }
      return 0;
    };
  });
  auto forget_ref = std::make_shared<std::string>();
  CLI::App* person_forget = person->add_subcommand(
      "forget", "erase a child from the identity table for good (gallring); records keep the reference");
  person_forget->fallthrough();
  person_forget->add_option("ref", *forget_ref, "the child reference")->required();
  person_forget->callback([&g, &handler, forget_ref] {
    handler = [&g, forget_ref] { return RunForget(g, *forget_ref); };
  });

  auto backup_file = std::make_shared<std::string>();
  CLI::App* backup = app.add_subcommand("backup", "write a consistent, encrypted copy of the store to FILE (while it is in use)");
  backup->fallthrough();
  backup->add_option("FILE", *backup_file, "the backup file to create (never overwritten)")->required();
  backup->callback([&g, &handler, backup_file] { handler = [&g, backup_file] { return RunBackup(g, *backup_file); }; });

  auto restore_file = std::make_shared<std::string>();
  CLI::App* restore = app.add_subcommand(
      "restore", "create the store folder --store DIR from a backup (it opens with the key the store had then)");
  restore->fallthrough();
  restore->add_option("FILE", *restore_file, "the backup file")->required();
  restore->callback([&g, &handler, restore_file] { handler = [&g, restore_file] { return RunRestore(g, *restore_file); }; });

  auto new_key_file = std::make_shared<std::string>();
  CLI::App* passwd = app.add_subcommand(
      "passwd", "change the store's passphrase (SAMSYNC_NEW_PASSPHRASE, or asked twice): the data key is re-wrapped");
  passwd->fallthrough();
  passwd->add_option("--new-key-file", *new_key_file,
                     "open the store with this key file from now on instead (created if missing)");
  passwd->callback([&g, &handler, new_key_file] { handler = [&g, new_key_file] { return RunPasswd(g, *new_key_file); }; });

  auto ref_text = std::make_shared<std::string>();
  CLI::App* person_show = person->add_subcommand("show", "show who a child reference is (the lookup is logged)");
  person_show->fallthrough();
  person_show->add_option("ref", *ref_text, "the child reference")->required();
  person_show->callback([&g, &handler, ref_text] {
    handler = [&g, ref_text] {
      auto ref = Id16::Parse(*ref_text, "child reference");
      if (!ref.ok()) return Fail(ref.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto found = (*store)->LookupPerson(*ref);
      if (!found.ok() && found.status().code() == Code::kNotFound) {
        auto erased = (*store)->ErasureOf(*ref);
        if (erased.ok() && *erased) {
          return Fail(Status::NotFound("child " + ref->ToText() + " was erased from this store's identity table on " +
                                       FormatTime((*erased)->time_ms) + " by device " +
                                       (*erased)->device.ToHex().substr(0, 16) +
                                       "; records keep only the reference"));
        }
      }
      if (!found.ok()) return Fail(found.status());
      if (g.json) {
        PrintJson({{"childRef", found->child_ref.ToText()}, {"personnummer", found->personnummer}, {"name", found->name}});
      } else {
        PrintTable({"childRef", "personnummer", "name"}, {{found->child_ref.ToText(), found->personnummer, found->name}});
      }
      return 0;
    };
  });
}

}  // namespace samsync::cli
