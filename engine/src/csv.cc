#include "samsync/csv.h"

#include <csv.h>

#include <map>
#include <set>

#include "samsync/record_fields.h"

namespace samsync {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr size_t kMaxRows = 1'000'000;

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates).
bool IsUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3Fu);
    }
    static constexpr uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

char DetectSeparator(std::string_view text) {
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '\n' || c == '\r') break;
    if (c == ';') return ';';
  }
  return ',';
}

struct Rows {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> current;
};

void OnField(void* data, size_t len, void* rows) {
  static_cast<Rows*>(rows)->current.emplace_back(static_cast<const char*>(data), len);
}

void OnRowEnd(int, void* rows) {
  auto* r = static_cast<Rows*>(rows);
  r->rows.push_back(std::move(r->current));
  r->current.clear();
}

std::string Quote(std::string_view value, char separator) {
  if (value.find_first_of(std::string{separator, '"', '\n', '\r'}) == std::string_view::npos) {
    return std::string(value);
  }
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<WriteBatch> ParseCsv(RecordType type, std::string_view contents) {
  if (contents.substr(0, kBom.size()) == kBom) contents.remove_prefix(kBom.size());
  if (!IsUtf8(contents)) {
    return Status::Invalid("the file is not UTF-8 (in Excel: Save As, \"CSV UTF-8\")");
  }
  csv_parser parser{};
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) return Status::Io("cannot start the CSV parser");
  csv_set_delim(&parser, static_cast<unsigned char>(DetectSeparator(contents)));
  Rows rows;
  size_t parsed = csv_parse(&parser, contents.data(), contents.size(), OnField, OnRowEnd, &rows);
  bool failed = parsed != contents.size() || csv_fini(&parser, OnField, OnRowEnd, &rows) != 0;
  csv_free(&parser);
  if (failed) {
    return Status::Invalid("row " + std::to_string(rows.rows.size() + 1) +
                           ": malformed CSV (a quote is not closed or stands inside a field)");
  }
  if (rows.rows.empty()) return Status::Invalid("the file is empty: expected a header row naming the fields");
  if (rows.rows.size() > kMaxRows) return Status::Invalid("the file has more than 1,000,000 rows; split it");

  // Header: map each column to a field (or id / ignored).
  const std::vector<std::string>& header = rows.rows[0];
  std::vector<const FieldInfo*> columns;
  int id_column = -1;
  std::set<std::string> seen;
  for (size_t c = 0; c < header.size(); ++c) {
    std::string name = header[c];
    while (!name.empty() && name.back() == ' ') name.pop_back();
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    const FieldInfo* field = FindField(type, name);
    std::string canonical = field ? field->name : name;
    if (!seen.insert(canonical).second) {
      return Status::Invalid("row 1, column " + name + ": named twice in the header");
    }
    if (name == "id") {
      id_column = static_cast<int>(c);
    } else if (field == nullptr && name != "type" && name != "district") {
      return Status::Invalid("row 1, column " + name + ": a " + std::string(RecordTypeName(type)) +
                             " has no such field");
    }
    columns.push_back(field);
  }
  for (const FieldInfo& field : FieldsOf(type)) {
    if (field.required && !seen.count(field.name)) {
      return Status::Invalid("row 1: the header lacks the required column " + field.name);
    }
  }

  WriteBatch batch;
  // A row with an id replaces that record, so two rows naming one id are a mistake
  // (a row copied, say): the second would silently replace the first.
  std::map<Id16, size_t> id_rows;
  for (size_t r = 1; r < rows.rows.size(); ++r) {
    const std::vector<std::string>& row = rows.rows[r];
    std::string label = "row " + std::to_string(r + 1);
    if (row.size() != header.size()) {
      return Status::Invalid(label + ": has " + std::to_string(row.size()) + " fields, the header has " +
                             std::to_string(header.size()));
    }
    Record record(type);
    for (size_t c = 0; c < row.size(); ++c) {
      if (static_cast<int>(c) == id_column) {
        if (row[c].empty()) continue;
        auto id = Id16::Parse(row[c], "id");
        if (!id.ok()) return id.status().WithContext(label + ", column id");
        auto [first, added] = id_rows.emplace(*id, r + 1);
        if (!added) {
          return Status::Invalid(label + ", column id: " + row[c] + " is on row " + std::to_string(first->second) +
                                 " too (a file names each record once)");
        }
        record.set_id(*id);
        continue;
      }
      if (columns[c] == nullptr) continue;
      Status set = SetFieldFromText(record, *columns[c], row[c]);
      if (!set.ok()) {
        // Field errors start with the field's name; the column names it already.
        std::string reason = set.message();
        if (reason.rfind(columns[c]->name + ": ", 0) == 0) reason.erase(0, columns[c]->name.size() + 2);
        return Status::Invalid(label + ", column " + header[c] + ": " + reason);
      }
    }
    Status valid = ValidateRecord(record);
    if (!valid.ok()) {
      // Validation messages start with the field name, which is the column's name.
      return Status::Invalid(label + ", column " + valid.message());
    }
    batch.Put(std::move(record), label);
  }
  return batch;
}

std::string RecordsToCsv(RecordType type, const std::vector<Record>& records, CsvWriteOptions options) {
  std::string out;
  if (options.byte_order_mark) out += kBom;
  const std::string sep(1, options.separator);
  out += "id" + sep + "district";
  for (const FieldInfo& field : FieldsOf(type)) out += sep + field.name;
  out += "\r\n";
  for (const Record& record : records) {
    out += record.id().ToText() + sep + Quote(record.district(), options.separator);
    for (const FieldInfo& field : FieldsOf(type)) out += sep + Quote(FieldToText(record, field), options.separator);
    out += "\r\n";
  }
  return out;
}

}  // namespace samsync
