// whoami, roster import, verify, log, person log: the store's identity and history.
#include <iostream>

#include "cli.h"
#include "samsync/history.h"
#include "samsync/merge.h"
#include "samsync/record_fields.h"

namespace samsync::cli {
namespace {

struct Change {
  std::string action;  // add, update, delete
  RecordType type;
  RecordId id;
  std::vector<std::tuple<std::string, std::string, std::string>> fields;  // name, from, to
};

// Applies a commit's ops to `state` and says what each changed.
Result<std::vector<Change>> Replay(const Commit& commit, DerivedState& state) {
  std::vector<Change> changes;
  for (auto op : commit.reader().getOps()) {
    Change change;
    if (op.isDelete()) {
      change.action = "delete";
      change.type = static_cast<RecordType>(op.getDelete().getType() % kRecordTypeCount);
      auto id = Id16::FromBytes({op.getDelete().getId().begin(), op.getDelete().getId().size()});
      if (!id.ok()) return Status::Corruption(commit.Name() + ": a delete op holds no valid id");
      change.id = *id;
    } else {
      if (static_cast<unsigned>(op.getSet().getBody().which()) >= kRecordTypeCount) {
        return Status::Corruption(commit.Name() + ": a set op holds a record of an unknown type");
      }
      Record after = Record::CopyOf(op.getSet());
      change.type = after.type();
      change.id = after.id();
      const Record* before = state.Find(change.type, change.id);
      change.action = before == nullptr ? "add" : "update";
      const auto& fields = FieldsOf(change.type);
      for (uint16_t ordinal : op.getFields()) {
        if (ordinal >= fields.size()) continue;
        std::string from = before == nullptr ? "" : FieldToText(*before, fields[ordinal]);
        std::string to = FieldToText(after, fields[ordinal]);
        if (before == nullptr && to.empty()) continue;  // an add shows what was given
        change.fields.emplace_back(fields[ordinal].name, from, to);
      }
    }
    changes.push_back(std::move(change));
  }
  SAMSYNC_RETURN_IF_ERROR(state.Apply(commit));
  return changes;
}

int RunLog(Globals& g, const std::string& id_text, size_t limit) {
  std::optional<RecordId> record;
  if (!id_text.empty()) {
    auto id = Id16::Parse(id_text, "id");
    if (!id.ok()) return Fail(id.status());
    record = *id;
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  DeviceNames names(**store);
  DerivedState state(/*whole_history=*/!record.has_value());
  nlohmann::json entries = nlohmann::json::array();
  size_t shown = 0;
  Status replayed;
  Status walked = (*store)->History(record, [&](const Commit& commit) {
    auto changes = Replay(commit, state);
    if (!changes.ok()) {
      replayed = changes.status();
      return false;
    }
    if (g.json) {
      nlohmann::json json_changes = nlohmann::json::array();
      for (const Change& c : *changes) {
        if (record && c.id != *record) continue;
        nlohmann::json fields = nlohmann::json::object();
        for (const auto& [name, from, to] : c.fields) fields[name] = {{"from", from}, {"to", to}};
        json_changes.push_back({{"action", c.action}, {"type", std::string(RecordTypeName(c.type))},
                                {"id", c.id.ToText()}, {"fields", fields}});
      }
      entries.push_back({{"commit", commit.id().ToHex()},
                         {"time", FormatTime(Hlc::Millis(commit.hlc()))},
                         {"device", commit.author().ToHex()},
                         {"deviceName", names.Name(commit.author())},
                         {"district", commit.district()},
                         {"seq", commit.seq()},
                         {"note", commit.reader().getNote().cStr()},
                         {"changes", json_changes}});
    } else {
      std::cout << FormatTime(Hlc::Millis(commit.hlc())) << "  " << commit.district() << "  "
                << names.Name(commit.author()) << "  commit " << commit.id().ToHex().substr(0, 12) << " (seq "
                << commit.seq() << ")";
      std::string note = commit.reader().getNote().cStr();
      if (!note.empty()) std::cout << "  " << note;
      std::cout << '\n';
      size_t printed = 0;
      for (const Change& c : *changes) {
        if (record && c.id != *record) continue;
        if (!record && ++printed > 20) {
          std::cout << "    … and " << (changes->size() - 20) << " more changes\n";
          break;
        }
        std::cout << "    " << c.action << " " << RecordTypeName(c.type) << " " << c.id.ToText() << '\n';
        for (const auto& [name, from, to] : c.fields) {
          if (c.action == "add") {
            std::cout << "        " << name << ": " << to << '\n';
          } else {
            std::cout << "        " << name << ": " << (from.empty() ? "–" : from) << " → " << (to.empty() ? "–" : to)
                      << '\n';
          }
        }
      }
    }
    return limit == 0 || ++shown < limit;
  });
  if (!walked.ok()) return Fail(walked);
  if (!replayed.ok()) return Fail(replayed);
  if (g.json) PrintJson(entries);
  return 0;
}

int RunVerify(Globals& g, int64_t max_skew_seconds) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  VerifyOptions options;
  options.max_skew_ms = max_skew_seconds * 1000;
  auto report = (*store)->Verify(options);
  if (!report.ok()) return Fail(report.status());
  const VerifyReport& r = *report;
  bool ok = r.failure.ok();
  if (g.json) {
    PrintJson({{"ok", ok},
               {"commits", r.commits},
               {"ops", r.ops},
               {"devices", r.devices},
               {"records", r.records},
               {"stateHash", ok ? nlohmann::json(r.state_hash.ToHex()) : nlohmann::json(nullptr)},
               {"rosterVersion", r.roster_version},
               {"authorsChecked", r.roster_version != 0},
               {"failure", ok ? nlohmann::json(nullptr) : nlohmann::json(r.failure.message())}});
    return ok ? 0 : kExitCheckFailed;
  }
  std::cout << "checked " << r.commits << " commits (" << r.ops << " ops) from " << r.devices << " device"
            << (r.devices == 1 ? "" : "s") << '\n';
  if (!ok) {
    std::cout << "verify: FAILED: " << r.failure.message() << '\n';
    return kExitCheckFailed;
  }
  std::cout << "  signatures   ok: every commit is signed by its author\n"
            << "  chains       ok: every device's commits follow one another, no gap, no rewrite\n"
            << "  clocks       ok: each commit later than its parent, none in the future\n";
  if (r.roster_version != 0) {
    std::cout << "  authors      ok: every author a writer of its district when it signed (roster version "
              << r.roster_version << ")\n";
  } else {
    std::cout << "  authors      not checked: no roster installed (samsync roster import FILE)\n";
  }
  std::cout << "  state        ok: the " << r.records << " stored records are exactly what the commits derive\n"
            << "state hash " << r.state_hash.ToHex() << '\n'
            << "verify: ok\n";
  return 0;
}

}  // namespace

void RegisterHistoryCommands(CLI::App& app, Globals& g, Handler& handler) {
  CLI::App* whoami = app.add_subcommand("whoami", "this device's public keys, to hand to the city's admin");
  whoami->fallthrough();
  whoami->callback([&g, &handler] {
    handler = [&g] {
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      if (g.json) {
        PrintJson({{"district", (*store)->district()},
                   {"deviceKey", (*store)->device_key().ToHex()},
                   {"transportKey", (*store)->transport_key().ToHex()}});
      } else {
        std::cout << "district       " << (*store)->district() << "\ndevice key     " << (*store)->device_key().ToHex()
                  << "\ntransport key  " << (*store)->transport_key().ToHex() << '\n';
      }
      return 0;
    };
  });

  auto roster_file = std::make_shared<std::string>();
  CLI::App* roster = Subcommand(app, "roster", "the city's roster of devices");
  CLI::App* import = roster->add_subcommand("import", "install a signed roster in this store");
  import->fallthrough();
  import->add_option("file", *roster_file, "the roster file from the city's admin")->required();
  import->callback([&g, &handler, roster_file] {
    handler = [&g, roster_file] {
      auto bytes = ReadFile(*roster_file);
      if (!bytes.ok()) return Fail(bytes.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
      if (Status s = (*store)->InstallRoster(span); !s.ok()) return Fail(s.WithContext(*roster_file));
      auto installed = (*store)->InstalledRoster();
      if (!installed.ok() || !*installed) return Fail(installed.ok() ? Status::Corruption("roster vanished") : installed.status());
      const Roster& r = **installed;
      const RosterEntry* self = r.FindSigningKey((*store)->device_key());
      if (g.json) {
        PrintJson({{"city", r.city()}, {"version", r.version()}, {"rootKey", r.root_key().ToHex()},
                   {"thisDeviceListed", self != nullptr}});
      } else {
        std::cout << "installed roster version " << r.version() << " of " << r.city() << " (root key "
                  << r.root_key().ToHex() << ")\n";
        if (self == nullptr) {
          std::cout << "note: this device is not in it yet; give the city's admin the keys `samsync whoami` prints\n";
        }
      }
      return 0;
    };
  });

  auto max_skew = std::make_shared<int64_t>(600);
  CLI::App* verify = app.add_subcommand("verify", "re-derive the state from the signed history and check every commit");
  verify->fallthrough();
  verify->add_option("--max-skew", *max_skew, "seconds a commit may be dated ahead of this clock (default 600)");
  verify->callback([&g, &handler, max_skew] { handler = [&g, max_skew] { return RunVerify(g, *max_skew); }; });

  auto log_id = std::make_shared<std::string>();
  auto log_limit = std::make_shared<size_t>(0);
  CLI::App* log = app.add_subcommand("log", "who changed what, when, in which commit: for one record or the whole store");
  log->fallthrough();
  log->add_option("id", *log_id, "a record's id (default: every commit)");
  log->add_option("--limit", *log_limit, "at most this many commits");
  log->callback([&g, &handler, log_id, log_limit] {
    handler = [&g, log_id, log_limit] { return RunLog(g, *log_id, *log_limit); };
  });

  CLI::App* person = Subcommand(app, "person", "the local identity table (never synced)");
  CLI::App* person_log = person->add_subcommand("log", "the identity table's access log: who was added or looked up, when");
  person_log->fallthrough();
  person_log->callback([&g, &handler] {
    handler = [&g] {
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto accesses = (*store)->PersonAccessLog();
      if (!accesses.ok()) return Fail(accesses.status());
      if (g.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : *accesses) {
          out.push_back({{"time", FormatTime(e.time_ms)}, {"action", e.action}, {"childRef", e.child_ref.ToText()},
                         {"device", (*store)->device_key().ToHex()}});
        }
        PrintJson(out);
        return 0;
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : *accesses) rows.push_back({FormatTime(e.time_ms), e.action, e.child_ref.ToText()});
      PrintTable({"time", "action", "childRef"}, rows);
      return 0;
    };
  });
}

}  // namespace samsync::cli
