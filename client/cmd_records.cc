// add, update, delete, show, list, import, export: working with records.
#include <filesystem>
#include <iostream>
#include <map>

#include "cli.h"
#include "samsync/csv.h"
#include "samsync/record_fields.h"

namespace samsync::cli {
namespace {

constexpr size_t kCellWidth = 40;

std::string Cell(std::string value) {
  size_t width = 0, cut = std::string::npos;
  for (size_t i = 0; i < value.size(); ++i) {
    if ((static_cast<unsigned char>(value[i]) & 0xC0) == 0x80) continue;
    if (++width == kCellWidth) cut = i;
  }
  if (width > kCellWidth) value = value.substr(0, cut) + "…";
  return value;
}

void PrintRecords(RecordType type, const std::vector<Record>& records, bool json, const SchoolNames& names) {
  if (json) {
    nlohmann::json array = nlohmann::json::array();
    for (const Record& r : records) array.push_back(RecordToJson(r));
    PrintJson(array);
    return;
  }
  std::vector<std::string> headers = {"id"};
  for (const FieldInfo& field : FieldsOf(type)) headers.push_back(field.name);
  std::vector<std::vector<std::string>> rows;
  for (const Record& r : records) {
    std::vector<std::string> row = {r.id().ToText()};
    for (const FieldInfo& field : FieldsOf(type)) row.push_back(Cell(DisplayText(r, field, names)));
    rows.push_back(std::move(row));
  }
  PrintTable(headers, rows);
  std::cout << records.size() << " " << RecordTypeName(type) << (records.size() == 1 ? "" : "s") << '\n';
}

void PrintRecord(const Record& record, bool json, const SchoolNames& names) {
  if (json) {
    PrintJson(RecordToJson(record));
    return;
  }
  std::vector<std::vector<std::string>> rows = {{"id", record.id().ToText()},
                                                {"type", std::string(RecordTypeName(record.type()))},
                                                {"district", record.district()}};
  for (const FieldInfo& field : FieldsOf(record.type())) rows.push_back({field.name, DisplayText(record, field, names)});
  PrintTable({"field", "value"}, rows);
}

// Reads a JSON object from stdin into `record`'s fields.
Status SetFieldsFromStdin(Record& record) {
  SAMSYNC_ASSIGN_OR_RETURN(std::string text, ReadFile("-"));
  nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return Status::Invalid("stdin does not hold valid JSON");
  return SetFieldsFromJson(record, object);
}

// Parses "--flag value" / "--flag=value" pairs against the fields of `record`.
Status SetFieldsFromArgs(Record& record, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg.rfind("--", 0) != 0) return Status::Invalid("unexpected argument '" + arg + "' (fields are given as --field value)");
    std::string name = arg.substr(2), value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status::Invalid("--" + name + " needs a value");
    }
    const FieldInfo* field = FindField(record.type(), name);
    if (field == nullptr) {
      return Status::Invalid("a " + std::string(RecordTypeName(record.type())) + " has no field --" + name);
    }
    SAMSYNC_RETURN_IF_ERROR(SetFieldFromText(record, *field, value));
  }
  return Status::Ok();
}

Result<RecordId> ApplyOne(Store& store, WriteBatch batch) {
  SAMSYNC_ASSIGN_OR_RETURN(ApplyResult result, store.Apply(batch));
  return result.ids.at(0);
}

struct ListOptions {
  std::string school, child, from, to, term;
  size_t limit = 0;
  bool csv = false;
};

Result<ListFilter> BuildFilter(const ListOptions& o) {
  ListFilter filter;
  if (!o.school.empty()) {
    SAMSYNC_ASSIGN_OR_RETURN(filter.school, Id16::Parse(o.school, "--school"));
  }
  if (!o.child.empty()) {
    SAMSYNC_ASSIGN_OR_RETURN(filter.child, Id16::Parse(o.child, "--child"));
  }
  if (!o.term.empty()) {
    SAMSYNC_ASSIGN_OR_RETURN(Term term, Term::Parse(o.term));
    filter.from = term.Start();
    filter.to = term.End();
  }
  if (!o.from.empty()) {
    auto from = Date::Parse(o.from);
    if (!from.ok()) return from.status().WithContext("--from");
    filter.from = *from;
  }
  if (!o.to.empty()) {
    auto to = Date::Parse(o.to);
    if (!to.ok()) return to.status().WithContext("--to");
    filter.to = *to;
  }
  return filter;
}

std::string TypeList() {
  std::string list;
  for (RecordType t : AllRecordTypes()) list += (list.empty() ? "" : " ") + std::string(RecordTypeName(t));
  return list;
}

// What --help shows in place of a flag's value.
std::string ValueName(FieldKind kind) {
  switch (kind) {
    case FieldKind::kDate: return "DATE";
    case FieldKind::kDateList: return "DATES";
    case FieldKind::kRef: return "ID";
    case FieldKind::kRefList: return "IDS";
    case FieldKind::kChildRef: return "CHILD";
    case FieldKind::kBool: return "BOOL";
    case FieldKind::kUnsigned:
    case FieldKind::kFloat: return "NUMBER";
    case FieldKind::kEnum: return "NAME";
    case FieldKind::kEnumList: return "NAMES";
    case FieldKind::kText: return "TEXT";
    case FieldKind::kTextList: return "TEXTS";
  }
  return "VALUE";
}

}  // namespace

void RegisterRecordCommands(CLI::App& app, Globals& g, Handler& handler) {
  // add TYPE --field value ... | add TYPE - (JSON object on stdin)
  CLI::App* add = app.add_subcommand("add", "add a record (prints its id)")->require_subcommand(1);
  add->fallthrough();
  for (RecordType type : AllRecordTypes()) {
    CLI::App* sub = add->add_subcommand(std::string(RecordTypeName(type)), "add a " + std::string(RecordTypeName(type)));
    sub->fallthrough();
    auto values = std::make_shared<std::map<std::string, std::pair<CLI::Option*, std::string>>>();
    for (const FieldInfo& field : FieldsOf(type)) {
      auto& slot = (*values)[field.name];
      slot.first = sub->add_option("--" + field.flag, slot.second, field.Describe())->type_name(ValueName(field.kind));
    }
    auto from_stdin = std::make_shared<std::string>();
    sub->add_option("json", *from_stdin, "- to read the fields as a JSON object from stdin");
    sub->callback([&g, &handler, type, values, from_stdin] {
      handler = [&g, type, values, from_stdin] {
        Record record(type);
        if (*from_stdin == "-") {
          if (Status s = SetFieldsFromStdin(record); !s.ok()) return Fail(s);
        } else if (!from_stdin->empty()) {
          return Fail(Status::Invalid("unexpected argument '" + *from_stdin + "' (use - to read JSON from stdin)"));
        }
        for (const FieldInfo& field : FieldsOf(type)) {
          const auto& [option, value] = values->at(field.name);
          if (option->count() == 0) continue;
          if (Status s = SetFieldFromText(record, field, value); !s.ok()) return Fail(s);
        }
        auto store = OpenStore(g);
        if (!store.ok()) return Fail(store.status());
        WriteBatch batch;
        batch.set_note("add " + std::string(RecordTypeName(type)));
        batch.Put(std::move(record));
        auto id = ApplyOne(**store, std::move(batch));
        if (!id.ok()) return Fail(id.status());
        if (g.json) {
          PrintJson(RecordToJson((*store)->Get(*id).value()));
        } else {
          std::cout << id->ToText() << '\n';
        }
        return 0;
      };
    });
  }

  // update ID --field value ... | update ID - (JSON on stdin)
  CLI::App* update = app.add_subcommand("update", "change fields of a record: update ID --field value ... (the flags of `add TYPE`), or update ID - to read a JSON object from stdin");
  // The fields are parsed once the record's type is known, so they arrive as extras;
  // global options go before `update`, except --json which is recognised here too.
  update->allow_extras();
  auto update_id = std::make_shared<std::string>();
  update->add_option("id", *update_id, "the record's id")->required();
  update->callback([&g, &handler, update, update_id] {
    handler = [&g, update, update_id] {
      auto id = Id16::Parse(*update_id, "id");
      if (!id.ok()) return Fail(id.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto record = (*store)->Get(*id);
      if (!record.ok()) return Fail(record.status());
      std::vector<std::string> args = update->remaining();
      std::erase_if(args, [&g](const std::string& arg) { return arg == "--json" && (g.json = true); });
      Status set = (args.size() == 1 && args[0] == "-") ? SetFieldsFromStdin(*record) : SetFieldsFromArgs(*record, args);
      if (!set.ok()) return Fail(set);
      WriteBatch batch;
      batch.set_note("update " + std::string(RecordTypeName(record->type())) + " " + id->ToText());
      batch.Put(std::move(*record));
      auto applied = ApplyOne(**store, std::move(batch));
      if (!applied.ok()) return Fail(applied.status());
      if (g.json) {
        PrintJson(RecordToJson((*store)->Get(*id).value()));
      } else {
        std::cout << "updated " << id->ToText() << '\n';
      }
      return 0;
    };
  });

  CLI::App* del = app.add_subcommand("delete", "delete a record");
  del->fallthrough();
  auto delete_id = std::make_shared<std::string>();
  del->add_option("id", *delete_id, "the record's id")->required();
  del->callback([&g, &handler, delete_id] {
    handler = [&g, delete_id] {
      auto id = Id16::Parse(*delete_id, "id");
      if (!id.ok()) return Fail(id.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      WriteBatch batch;
      batch.set_note("delete " + id->ToText());
      batch.Delete(*id);
      auto applied = ApplyOne(**store, std::move(batch));
      if (!applied.ok()) return Fail(applied.status());
      std::cout << "deleted " << id->ToText() << '\n';
      return 0;
    };
  });

  CLI::App* show = app.add_subcommand("show", "show one record");
  show->fallthrough();
  auto show_id = std::make_shared<std::string>();
  show->add_option("id", *show_id, "the record's id")->required();
  show->callback([&g, &handler, show_id] {
    handler = [&g, show_id] {
      auto id = Id16::Parse(*show_id, "id");
      if (!id.ok()) return Fail(id.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto record = (*store)->Get(*id);
      if (!record.ok()) return Fail(record.status());
      PrintRecord(*record, g.json, g.json ? SchoolNames() : LoadSchoolNames(**store));
      return 0;
    };
  });

  CLI::App* list = app.add_subcommand("list", "list records of a type: " + TypeList());
  list->fallthrough();
  auto list_type = std::make_shared<std::string>();
  auto lo = std::make_shared<ListOptions>();
  list->add_option("type", *list_type, "record type: " + TypeList())->required();
  list->add_option("--school", lo->school, "only records about this school (id)");
  list->add_option("--child", lo->child, "only records about this child (child reference)");
  list->add_option("--from", lo->from, "principal date on or after YYYY-MM-DD");
  list->add_option("--to", lo->to, "principal date on or before YYYY-MM-DD");
  list->add_option("--term", lo->term, "principal date within a term, e.g. 2016HT");
  list->add_option("--limit", lo->limit, "at most this many records");
  list->add_flag("--csv", lo->csv, "CSV output (as export)");
  list->callback([&g, &handler, list_type, lo] {
    handler = [&g, list_type, lo] {
      auto type = ParseRecordType(*list_type);
      if (!type.ok()) return Fail(type.status());
      auto filter = BuildFilter(*lo);
      if (!filter.ok()) return Fail(filter.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      std::vector<Record> records;
      Status listed = (*store)->List(*type, *filter, [&](const Record& r) {
        records.push_back(r.Clone());
        return lo->limit == 0 || records.size() < lo->limit;
      });
      if (!listed.ok()) return Fail(listed);
      if (lo->csv) {
        std::cout << RecordsToCsv(*type, records);
      } else {
        PrintRecords(*type, records, g.json, g.json ? SchoolNames() : LoadSchoolNames(**store));
      }
      return 0;
    };
  });

  CLI::App* import = app.add_subcommand("import", "import records from a CSV file: all rows or none");
  import->fallthrough();
  auto import_type = std::make_shared<std::string>();
  auto import_file = std::make_shared<std::string>();
  import->add_option("type", *import_type, "record type: " + TypeList())->required();
  import->add_option("file", *import_file, "the CSV file (UTF-8, header row, ; or , separated); - for stdin")->required();
  import->callback([&g, &handler, import_type, import_file] {
    handler = [&g, import_type, import_file] {
      auto type = ParseRecordType(*import_type);
      if (!type.ok()) return Fail(type.status());
      auto contents = ReadFile(*import_file);
      if (!contents.ok()) return Fail(contents.status());
      auto batch = ParseCsv(*type, *contents);
      if (!batch.ok()) return Fail(batch.status().WithContext(*import_file));
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      batch->set_note("import " + *import_type + " " + std::filesystem::path(*import_file).filename().string());
      auto applied = (*store)->Apply(*batch);
      if (!applied.ok()) return Fail(applied.status().WithContext(*import_file));
      if (g.json) {
        nlohmann::json ids = nlohmann::json::array();
        for (const RecordId& id : applied->ids) ids.push_back(id.ToText());
        PrintJson({{"imported", applied->ids.size()}, {"type", *import_type}, {"ids", ids}});
      } else {
        std::cout << "imported " << applied->ids.size() << " " << *import_type
                  << (applied->ids.size() == 1 ? "" : "s") << " from " << *import_file << '\n';
      }
      return 0;
    };
  });

  CLI::App* exp = app.add_subcommand("export", "export every record of a type as CSV (UTF-8 with BOM, ; separated: what Swedish Excel opens)");
  exp->fallthrough();
  auto export_type = std::make_shared<std::string>();
  auto export_comma = std::make_shared<bool>(false);
  auto export_no_bom = std::make_shared<bool>(false);
  exp->add_option("type", *export_type, "record type: " + TypeList())->required();
  auto export_csv = std::make_shared<bool>(true);
  exp->add_flag("--csv", *export_csv, "CSV output (the default)");
  exp->add_flag("--comma", *export_comma, "separate fields with , instead of ;");
  exp->add_flag("--no-bom", *export_no_bom, "leave out the UTF-8 byte order mark");
  exp->callback([&g, &handler, export_type, export_comma, export_no_bom, export_csv] {
    handler = [&g, export_type, export_comma, export_no_bom] {
      auto type = ParseRecordType(*export_type);
      if (!type.ok()) return Fail(type.status());
      auto store = OpenStore(g);
      if (!store.ok()) return Fail(store.status());
      auto records = (*store)->ListAll(*type);
      if (!records.ok()) return Fail(records.status());
      if (g.json) {
        PrintRecords(*type, *records, true, {});
        return 0;
      }
      CsvWriteOptions options;
      options.separator = *export_comma ? ',' : ';';
      options.byte_order_mark = !*export_no_bom;
      std::cout << RecordsToCsv(*type, *records, options);
      return 0;
    };
  });
}

}  // namespace samsync::cli
