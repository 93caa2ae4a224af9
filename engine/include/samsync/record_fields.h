// The fields of each record type, read from the schema at run time, and their
// conversions to and from text and JSON.
//
// Everything a person or program types about a record goes through here: command-line
// flags, JSON on stdin, CSV columns. So there is one rule for each field: a date is
// "YYYY-MM-DD", an id is its 26-character text, a list is comma-separated in text and
// an array in JSON, an enum is its schema name ("independent"), a bool is
// true/false (also ja/nej, yes/no, 1/0), a number is decimal (a comma works as the
// decimal point, as Swedish spreadsheets write it).
#ifndef SAMSYNC_RECORD_FIELDS_H_
#define SAMSYNC_RECORD_FIELDS_H_

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/date.h"
#include "samsync/ids.h"
#include "samsync/record.h"
#include "samsync/status.h"

namespace samsync {

enum class FieldKind {
  kText,
  kTextList,
  kBool,
  kUnsigned,
  kFloat,
  kDate,
  kDateList,
  kEnum,
  kEnumList,
  kRef,       // id of another record (refers_to says which type)
  kRefList,
  kChildRef,  // a child reference (pseudonym)
};

struct FieldInfo {
  RecordType type = RecordType::kSchool;  // the record type it belongs to
  uint16_t ordinal = 0;      // its position in FieldsOf(type): what commits name
  std::string name;          // the schema name: "fromDate"
  std::string flag;          // its command-line spelling: "from-date"
  FieldKind kind = FieldKind::kText;
  bool required = false;
  bool index_date = false;   // the record's principal date
  std::optional<RecordType> refers_to;
  std::vector<std::string> enumerants;  // for kEnum / kEnumList, in schema order
  unsigned max_value = 0;               // for kUnsigned: the largest value the type holds

  // One line for --help: "date YYYY-MM-DD", "one of: municipal, independent", ...
  std::string Describe() const;
};

// The fields of `type` in schema order. The reference stays valid for the program's life.
const std::vector<FieldInfo>& FieldsOf(RecordType type);
// Accepts the schema name or the flag spelling; nullptr when there is no such field.
const FieldInfo* FindField(RecordType type, std::string_view name);

// Sets a field from its text form. Empty text resets the field to its default (no
// date, empty list, false, 0). Fails with kInvalidInput naming the field.
Status SetFieldFromText(Record& record, const FieldInfo& field, std::string_view text);
// The text form of a field, as SetFieldFromText reads it ("" for no date).
std::string FieldToText(const Record& record, const FieldInfo& field);

// {"id": "...", "type": "school", "district": "...", <each field>: <value>}. Dates as
// "YYYY-MM-DD" or null, ids as text, lists as arrays, enums as names. Stable: fields
// are only ever added.
nlohmann::json RecordToJson(const Record& record);
// Sets the fields named in `object` (an object of field name → value, in the JSON form
// RecordToJson writes; "id", "type" and "district" are ignored). Unknown fields and
// values of the wrong form fail with kInvalidInput naming the field.
Status SetFieldsFromJson(Record& record, const nlohmann::json& object);

// Copies the value of `field` (one of FieldsOf(to.type())) from `from`, which must be
// of the same type.
void CopyField(const Record& from, Record& to, const FieldInfo& field);
// Copies the fields with these ordinals (valid for to.type()).
void CopyFields(const Record& from, Record& to, std::span<const uint16_t> ordinals);
// As above, from a record held in another message (a commit's op); its type must be
// known (see Record::CopyOf).
void CopyFields(schema::Record::Reader from, Record& to, std::span<const uint16_t> ordinals);
// CopyFields with every field of the type, into a record `to` of the same type that
// holds no field yet (a new record): one copy of the whole body instead of a copy per
// field. The result encodes as CopyFields would make it.
void CopyAllFields(schema::Record::Reader from, Record& to);

// Field-level checks that need nothing but the record: required fields, value ranges,
// date order rules. Reference checks need the store (store.h).
Status ValidateRecord(const Record& record);

// What the store indexes and checks of a record.
Date IndexDateOf(const Record& record);  // empty if the type has none
std::vector<RecordId> ReferencedIds(const Record& record, RecordType target);
// The ids a reference or child-reference field holds (none when it is unset).
std::vector<Id16> IdsIn(const Record& record, const FieldInfo& field);
std::vector<ChildRef> ChildRefsOf(const Record& record);

}  // namespace samsync

#endif  // SAMSYNC_RECORD_FIELDS_H_
