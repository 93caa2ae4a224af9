// status, conflicts, resolve, bundle export / import: working offline on several
// machines of one district, and settling what their concurrent edits left open.
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "samsync/history.h"
#include "samsync/merge.h"

namespace samsync::cli {
namespace {

std::string Plural(uint64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string ShortHex(const Hash& hash) { return hash.ToHex().substr(0, 12); }

// ---- status ----------------------------------------------------------------------

int RunStatus(Globals& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto summary = (*store)->Summary();
  if (!summary.ok()) return Fail(summary.status());
  const ReplicaSummary& s = *summary;
  std::string vector_text = FormatVersionVector(s.heads);
  if (g.json) {
    nlohmann::json heads = nlohmann::json::object();
    for (const auto& [device, seq] : s.heads) heads[device.ToHex()] = seq;
    PrintJson({{"stateHash", s.state_hash.ToHex()},
               {"heads", heads},
               {"records", s.records},
               {"commits", s.commits},
               {"conflicts", s.conflicts},
               {"waiting", s.waiting},
               {"versionVector", vector_text}});
    return 0;
  }
  DeviceNames names(**store);
  std::cout << "district    " << (*store)->district() << '\n'
            << "state hash  " << s.state_hash.ToHex() << '\n'
            << "records     " << s.records << '\n'
            << "commits     " << s.commits << '\n'
            << "conflicts   "
            << (s.conflicts == 0 ? "none" : Plural(s.conflicts, "record", "records") + " with unresolved conflicts: see samsync conflicts")
            << '\n'
            << "waiting     "
            << (s.waiting == 0 ? "none"
                               : Plural(s.waiting, "commit waits", "commits wait") +
                                     " for earlier ones: import the bundle that holds them")
            << "\n\ncommits held, per device (the version vector):\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [device, seq] : s.heads) rows.push_back({names.Name(device), device.ToHex().substr(0, 16), std::to_string(seq)});
  if (rows.empty()) {
    std::cout << "  none yet\n";
  } else {
    PrintTable({"device", "key", "up to seq"}, rows, "  ");
  }
  if (!vector_text.empty()) {
    std::cout << "\nas text (for samsync bundle export --since):\n" << vector_text << '\n';
  }
  return 0;
}

// ---- conflicts -------------------------------------------------------------------

// What a record looked like last: its current value, or for a deleted one the fields
// its commits set, folded in history order. Used only to name it to a person.
Record LastKnown(const Store& store, RecordType type, const RecordId& id) {
  auto live = store.Get(id);
  if (live.ok()) return std::move(live).value();
  Record record(type);
  record.set_id(id);
  Status walked = store.History(id, [&](const Commit& commit) {
    for (auto op : commit.reader().getOps()) {
      if (!op.isSet() || static_cast<unsigned>(op.getSet().getBody().which()) != static_cast<unsigned>(type)) continue;
      Record set = Record::CopyOf(op.getSet());
      if (set.id() != id) continue;
      const auto& fields = FieldsOf(type);
      for (uint16_t ordinal : op.getFields()) {
        if (ordinal < fields.size()) CopyField(set, record, fields[ordinal]);
      }
    }
    return true;
  });
  walked.Ignore();  // a label is a courtesy: without history, the id alone names it
  return record;
}

// "Skarpnäcksskolan" for a school; for other records their principal date and school:
// "receivedDate 2016-09-01, Skarpnäcksskolan".
std::string RecordLabel(const Record& record, const SchoolNames& names) {
  if (record.type() == RecordType::kSchool) {
    return FieldToText(record, *FindField(RecordType::kSchool, "name"));
  }
  std::string label;
  for (const FieldInfo& field : FieldsOf(record.type())) {
    std::string text;
    if (field.index_date) {
      text = FieldToText(record, field);
      if (!text.empty()) text = field.name + " " + text;
    } else if (field.kind == FieldKind::kRef && field.refers_to == RecordType::kSchool) {
      text = DisplayText(record, field, names);
    }
    if (!text.empty()) label += (label.empty() ? "" : ", ") + text;
  }
  return label;
}

// The value a write gave `field`, as `resolve` reads it.
std::string WriteValue(const ConflictWrite& write, const FieldInfo& field) {
  return write.value ? FieldToText(*write.value, field) : "";
}

nlohmann::json WriteToJson(const ConflictWrite& write, const DeviceNames& names) {
  return {{"device", write.device.ToHex()},
          {"deviceName", names.Name(write.device)},
          {"seq", write.seq},
          {"time", FormatTime(write.time_ms)},
          {"commit", write.commit.ToHex()}};
}

// The fields a write set on the record, name → text.
nlohmann::json WrittenFields(const ConflictWrite& write, RecordType type) {
  nlohmann::json fields = nlohmann::json::object();
  const auto& all = FieldsOf(type);
  for (uint16_t ordinal : write.fields) {
    if (ordinal < all.size()) fields[all[ordinal].name] = WriteValue(write, all[ordinal]);
  }
  return fields;
}

int RunConflicts(Globals& g) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto conflicts = (*store)->Conflicts();
  if (!conflicts.ok()) return Fail(conflicts.status());
  DeviceNames names(**store);
  SchoolNames schools = LoadSchoolNames(**store);
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Conflict& c : *conflicts) {
      const FieldInfo* field = c.deleted ? nullptr : &FieldsOf(c.type).at(c.field);
      nlohmann::json writes = nlohmann::json::array();
      for (const ConflictWrite& w : c.writes) {
        nlohmann::json entry = WriteToJson(w, names);
        entry["value"] = field ? nlohmann::json(WriteValue(w, *field)) : nlohmann::json(nullptr);
        entry["fields"] = WrittenFields(w, c.type);
        writes.push_back(std::move(entry));
      }
      out.push_back({{"type", std::string(RecordTypeName(c.type))},
                     {"id", c.id.ToText()},
                     {"label", RecordLabel(LastKnown(**store, c.type, c.id), schools)},
                     {"field", field ? nlohmann::json(field->name) : nlohmann::json(nullptr)},
                     {"deleted", c.deleted},
                     {"shown", field && !c.writes.empty() ? nlohmann::json(WriteValue(c.writes[0], *field))
                                                          : nlohmann::json(nullptr)},
                     {"writes", writes},
                     {"deletedBy", c.deleted_by ? WriteToJson(*c.deleted_by, names) : nlohmann::json(nullptr)}});
    }
    PrintJson(out);
    return 0;
  }
  if (conflicts->empty()) {
    std::cout << "no unresolved conflicts\n";
    return 0;
  }
  bool any_field = false, any_deleted = false;
  for (const Conflict& c : *conflicts) {
    std::string label = RecordLabel(LastKnown(**store, c.type, c.id), schools);
    std::cout << RecordTypeName(c.type) << " " << c.id.ToText() << (label.empty() ? "" : " (" + label + ")");
    if (c.deleted) {
      any_deleted = true;
      const ConflictWrite& d = *c.deleted_by;
      std::cout << ": deleted by " << names.Name(d.device) << " at " << FormatTime(d.time_ms) << " (commit "
                << ShortHex(d.commit) << "); edits it discarded:\n";
      std::vector<std::vector<std::string>> rows;
      const auto& all = FieldsOf(c.type);
      for (const ConflictWrite& w : c.writes) {
        std::string set;
        for (uint16_t ordinal : w.fields) {
          if (ordinal >= all.size()) continue;
          std::string value = WriteValue(w, all[ordinal]);
          set += (set.empty() ? "" : ", ") + all[ordinal].name + " = " + (value.empty() ? "–" : value);
        }
        rows.push_back({set, names.Name(w.device), FormatTime(w.time_ms), ShortHex(w.commit)});
      }
      PrintTable({"fields set", "device", "time", "commit"}, rows, "    ");
    } else {
      any_field = true;
      const FieldInfo& field = FieldsOf(c.type).at(c.field);
      std::cout << ": field " << field.name << " has " << c.writes.size() << " concurrent values\n";
      std::vector<std::vector<std::string>> rows;
      for (size_t i = 0; i < c.writes.size(); ++i) {
        const ConflictWrite& w = c.writes[i];
        std::string value = WriteValue(w, field);
        if (w.value && field.refers_to == RecordType::kSchool && !value.empty()) {
          value += " (" + DisplayText(*w.value, field, schools) + ")";
        }
        rows.push_back({i == 0 ? "*" : "", value.empty() ? "–" : value, names.Name(w.device), FormatTime(w.time_ms),
                        ShortHex(w.commit)});
      }
      PrintTable({"shown", "value", "device", "time", "commit"}, rows, "    ");
    }
    std::cout << '\n';
  }
  std::cout << Plural(conflicts->size(), "unresolved conflict", "unresolved conflicts")
            << (any_field ? " (* marks the value shown now)" : "") << ".\n";
  if (any_field) {
    std::cout << "Settle a field:  samsync resolve ID FIELD VALUE   (or samsync resolve ID FIELD --keep for the value "
                 "shown)\n";
  }
  if (any_deleted) {
    std::cout << "Settle a delete: samsync resolve ID --delete       (to keep an edit, re-add the record first: samsync "
                 "add)\n";
  }
  std::cout << "Then carry a bundle to the other machines: samsync bundle export FILE\n";
  return 0;
}

// ---- resolve ---------------------------------------------------------------------

struct ResolveOptions {
  std::string id, field, value;
  CLI::Option* value_option = nullptr;
  bool keep = false;
  bool delete_record = false;
};

std::string FieldList(RecordType type) {
  std::string list;
  for (const FieldInfo& f : FieldsOf(type)) list += (list.empty() ? "" : ", ") + f.name;
  return list;
}

// What resolve did. `field` null: a deleted record was deleted again. `value` is the
// field's text (JSON), `shown` what a person reads (school names for ids).
int PrintResolved(Globals& g, RecordType type, const RecordId& id, const FieldInfo* field, const std::string& value,
                  const std::string& shown, const ApplyResult& applied) {
  std::string commit = applied.commit_id ? applied.commit_id->ToHex() : "";
  if (g.json) {
    PrintJson({{"type", std::string(RecordTypeName(type))},
               {"id", id.ToText()},
               {"field", field ? nlohmann::json(field->name) : nlohmann::json(nullptr)},
               {"value", field ? nlohmann::json(value) : nlohmann::json(nullptr)},
               {"deleted", field == nullptr},
               {"commit", commit}});
    return 0;
  }
  if (field != nullptr) {
    std::cout << "settled " << field->name << " of " << RecordTypeName(type) << " " << id.ToText() << ": "
              << (shown.empty() ? "–" : shown) << '\n';
  } else {
    std::cout << "deleted " << RecordTypeName(type) << " " << id.ToText()
              << " again: the edits its delete discarded are settled\n";
  }
  std::cout << "commit " << commit << "\ncarry it to the other machines: samsync bundle export FILE\n";
  return 0;
}

int RunResolve(Globals& g, const ResolveOptions& o) {
  bool has_value = o.value_option->count() > 0;
  if (o.delete_record && (!o.field.empty() || o.keep)) {
    return Fail(Status::Invalid("--delete settles a deleted record: give only its id (samsync resolve ID --delete)"));
  }
  if (!o.delete_record) {
    if (o.field.empty()) {
      return Fail(Status::Invalid("give the field and the value to keep (samsync resolve ID FIELD VALUE), or --delete"));
    }
    if (has_value == o.keep) {
      return Fail(Status::Invalid(o.keep ? "give either a VALUE or --keep, not both"
                                         : "give the value to keep for " + o.field + ", or --keep for the one shown now"));
    }
  }
  auto id = Id16::Parse(o.id, "id");
  if (!id.ok()) return Fail(id.status());
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto conflicts = (*store)->Conflicts();
  if (!conflicts.ok()) return Fail(conflicts.status());
  const Conflict* deleted = nullptr;
  std::vector<const Conflict*> fields;
  for (const Conflict& c : *conflicts) {
    if (c.id != *id) continue;
    if (c.deleted) {
      deleted = &c;
    } else {
      fields.push_back(&c);
    }
  }

  if (o.delete_record) {
    if (deleted == nullptr) {
      return Fail(Status::Invalid("record " + id->ToText() +
                                  " has no conflict with a delete; see samsync conflicts (to delete a record: "
                                  "samsync delete ID)"));
    }
    WriteBatch batch;
    batch.set_note("resolve " + id->ToText() + " --delete");
    batch.Delete(*id);
    auto applied = (*store)->Apply(batch);
    if (!applied.ok()) return Fail(applied.status());
    return PrintResolved(g, deleted->type, *id, nullptr, "", "", *applied);
  }

  auto record = (*store)->Get(*id);
  if (!record.ok()) {
    if (deleted != nullptr) {
      return Fail(Status::Invalid("record " + id->ToText() +
                                  " was deleted; settle with samsync resolve " + id->ToText() +
                                  " --delete (to keep an edit, re-add the record first: samsync add)"));
    }
    return Fail(record.status());
  }
  const FieldInfo* field = FindField(record->type(), o.field);
  if (field == nullptr) {
    return Fail(Status::Invalid("a " + std::string(RecordTypeName(record->type())) + " has no field '" + o.field +
                                "' (fields: " + FieldList(record->type()) + ")"));
  }
  const Conflict* conflict = nullptr;
  for (const Conflict* c : fields) {
    if (c->field == field->ordinal) conflict = c;
  }
  if (conflict == nullptr) {
    return Fail(Status::Invalid("record " + id->ToText() + " has no conflict on field " + field->name +
                                "; see samsync conflicts"));
  }
  std::string value = o.keep ? FieldToText(*record, *field) : o.value;
  if (Status s = SetFieldFromText(*record, *field, value); !s.ok()) return Fail(s);
  WriteBatch batch;
  batch.set_note("resolve " + std::string(RecordTypeName(record->type())) + " " + id->ToText() + " " + field->name);
  batch.Settle(record->Clone(), field->ordinal);
  auto applied = (*store)->Apply(batch);
  if (!applied.ok()) return Fail(applied.status());
  auto settled = (*store)->Get(*id);
  if (!settled.ok()) return Fail(settled.status());
  return PrintResolved(g, settled->type(), *id, field, FieldToText(*settled, *field),
                       DisplayText(*settled, *field, LoadSchoolNames(**store)), *applied);
}

// ---- bundle export / import ------------------------------------------------------

std::string Trim(std::string text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// What the other replica holds, from `samsync status --json` output (its "heads") or
// from version vector text.
Result<VersionVector> ReadOtherHeads(const std::string& path) {
  SAMSYNC_ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  std::string text = Trim(std::move(contents));
  if (!text.empty() && text.front() == '{') {
    nlohmann::json status = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (status.is_discarded()) return Status::Invalid("--for " + path + ": holds no valid JSON");
    if (!status.is_object() || !status.contains("heads") || !status["heads"].is_object()) {
      return Status::Invalid("--for " + path + ": holds JSON without \"heads\" (give it the other machine's "
                             "samsync status --json)");
    }
    std::string vector_text;
    for (const auto& [key, seq] : status["heads"].items()) {
      if (!seq.is_number_unsigned()) {
        return Status::Invalid("--for " + path + ": the head of device " + key + " is not a sequence number");
      }
      vector_text += (vector_text.empty() ? "" : ",") + key + ":" + std::to_string(seq.get<uint64_t>());
    }
    text = vector_text;
  }
  auto parsed = ParseVersionVector(text);
  if (!parsed.ok()) return parsed.status().WithContext("--for " + path);
  return parsed;
}

struct ExportOptions {
  std::string file, since, for_file;
  CLI::Option* since_option = nullptr;
};

int RunExport(Globals& g, const ExportOptions& o) {
  bool since = o.since_option->count() > 0;
  if (since && !o.for_file.empty()) return Fail(Status::Invalid("give --since or --for, not both"));
  VersionVector have;
  if (since) {
    auto parsed = ParseVersionVector(Trim(o.since));
    if (!parsed.ok()) return Fail(parsed.status().WithContext("--since"));
    have = std::move(parsed).value();
  } else if (!o.for_file.empty()) {
    auto read = ReadOtherHeads(o.for_file);
    if (!read.ok()) return Fail(read.status());
    have = std::move(read).value();
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto stats = (*store)->ExportBundle(o.file, have);
  if (!stats.ok()) return Fail(stats.status());
  std::string checkpoint = FormatVersionVector(stats->heads);
  if (g.json) {
    PrintJson({{"file", o.file},
               {"commits", stats->commits},
               {"ops", stats->ops},
               {"bytes", stats->bytes},
               {"checkpoint", checkpoint}});
    return 0;
  }
  std::cout << "wrote " << Plural(stats->commits, "commit", "commits") << " (" << Plural(stats->ops, "op", "ops")
            << ", " << Plural(stats->bytes, "byte", "bytes") << ") to " << o.file << '\n';
  if (stats->commits == 0) std::cout << "the other machine already holds every commit this one does\n";
  std::cout << "checkpoint: " << checkpoint << '\n'
            << "(once it is imported there, the next bundle for that machine: samsync bundle export FILE --since "
               "CHECKPOINT)\n";
  return 0;
}

int RunImport(Globals& g, const std::string& file) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto report = (*store)->ImportBundle(file);
  if (!report.ok()) {
    const Status& s = report.status();
    return Fail(s.message().find(file) == std::string::npos ? s.WithContext(file) : s);
  }
  const ImportReport& r = *report;
  if (g.json) {
    PrintJson({{"file", file},
               {"received", r.received},
               {"applied", r.applied},
               {"alreadyHeld", r.duplicates},
               {"waiting", r.waiting},
               {"ops", r.ops},
               {"conflicts", r.conflicts}});
    return 0;
  }
  std::cout << "imported " << file << ": " << Plural(r.received, "commit", "commits") << " received\n"
            << "  applied       " << r.applied << " (" << Plural(r.ops, "op", "ops") << ")\n"
            << "  already held  " << r.duplicates << '\n'
            << "  waiting       " << r.waiting;
  if (r.waiting > 0) std::cout << " (for earlier commits: import the bundle that holds them, an earlier export)";
  std::cout << "\n  conflicts     " << r.conflicts;
  if (r.conflicts > 0) std::cout << (r.conflicts == 1 ? " record" : " records") << " with unresolved conflicts: see samsync conflicts";
  std::cout << '\n';
  return 0;
}

}  // namespace

void RegisterMergeCommands(CLI::App& app, Globals& g, Handler& handler) {
  CLI::App* status = app.add_subcommand(
      "status", "this replica's position: state hash, commits held per device, unresolved conflicts, waiting commits");
  status->fallthrough();
  status->callback([&g, &handler] { handler = [&g] { return RunStatus(g); }; });

  CLI::App* conflicts =
      app.add_subcommand("conflicts", "concurrent edits from different machines that need a person to settle");
  conflicts->fallthrough();
  conflicts->callback([&g, &handler] { handler = [&g] { return RunConflicts(g); }; });

  auto ro = std::make_shared<ResolveOptions>();
  CLI::App* resolve = app.add_subcommand(
      "resolve", "settle a conflict: resolve ID FIELD VALUE (or --keep), or resolve ID --delete for a deleted record");
  resolve->fallthrough();
  resolve->add_option("id", ro->id, "the record's id (see samsync conflicts)")->required();
  resolve->add_option("field", ro->field, "the field in conflict");
  ro->value_option = resolve->add_option("value", ro->value, "the value to keep (\"\" clears the field)");
  resolve->add_flag("--keep", ro->keep, "keep the value shown now");
  resolve->add_flag("--delete", ro->delete_record, "delete the record again, settling the edits its delete discarded");
  resolve->callback([&g, &handler, ro] { handler = [&g, ro] { return RunResolve(g, *ro); }; });

  CLI::App* bundle = app.add_subcommand("bundle", "carry commits to another machine of the district on a file")
                         ->require_subcommand(1);
  bundle->fallthrough();

  auto eo = std::make_shared<ExportOptions>();
  CLI::App* exp = bundle->add_subcommand(
      "export", "write the commits another machine lacks to FILE (default: every commit); never overwrites FILE");
  exp->fallthrough();
  exp->add_option("file", eo->file, "the bundle file to write")->required();
  eo->since_option = exp->add_option("--since", eo->since,
                                     "the other machine holds this version vector: a checkpoint a previous export "
                                     "printed, or the text samsync status prints");
  exp->add_option("--for", eo->for_file,
                  "a file holding the other machine's `samsync status --json` (or its version vector text)");
  exp->callback([&g, &handler, eo] { handler = [&g, eo] { return RunExport(g, *eo); }; });

  auto import_file = std::make_shared<std::string>();
  CLI::App* imp = bundle->add_subcommand(
      "import", "merge a bundle's commits into this store: all of them, or on any problem none");
  imp->fallthrough();
  imp->add_option("file", *import_file, "the bundle file")->required();
  imp->callback([&g, &handler, import_file] { handler = [&g, import_file] { return RunImport(g, *import_file); }; });
}

}  // namespace samsync::cli
