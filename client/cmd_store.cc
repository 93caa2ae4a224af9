// init, info, person: the store itself and its local identity table.
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
