// Field metadata comes from the compiled schema (capnp reflection) and its annotations,
// so adding a field to schema/records.capnp is all it takes for flags, JSON, CSV and
// the generic checks to know it.
#include "samsync/record_fields.h"

#include "record_dynamic.h"

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

namespace samsync {
namespace {

// Ids of the annotations declared in schema/records.capnp.
constexpr uint64_t kRequiredAnnotation = 0xb3f1207baa7e9f50;
constexpr uint64_t kDateAnnotation = 0xe36c8f8320f8a099;
constexpr uint64_t kIndexDateAnnotation = 0xa9e38b36b9b35b01;
constexpr uint64_t kRefersToAnnotation = 0xe6dcf11630d01f03;
constexpr uint64_t kChildRefAnnotation = 0xc67241c9992d8f24;

using nlohmann::json;

std::string FlagSpelling(std::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (c >= 'A' && c <= 'Z') {
      out += '-';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

capnp::StructSchema BodyMemberSchema(RecordType type) {
  auto body = capnp::Schema::from<schema::Record::Body>();
  auto member = body.getFieldByName(std::string(RecordTypeName(type)).c_str());
  return member.getType().asStruct();
}

FieldInfo BuildFieldInfo(capnp::StructSchema::Field field) {
  FieldInfo info;
  auto proto = field.getProto();
  info.name = proto.getName().cStr();
  info.flag = FlagSpelling(info.name);
  bool is_date = false, is_child = false;
  for (auto annotation : proto.getAnnotations()) {
    switch (annotation.getId()) {
      case kRequiredAnnotation: info.required = true; break;
      case kDateAnnotation: is_date = true; break;
      case kIndexDateAnnotation: info.index_date = true; break;
      case kChildRefAnnotation: is_child = true; break;
      case kRefersToAnnotation: {
        auto target = ParseRecordType(annotation.getValue().getText().cStr());
        if (target.ok()) info.refers_to = *target;
        break;
      }
      default: break;
    }
  }
  capnp::Type type = field.getType();
  auto enumerants_of = [&](capnp::EnumSchema schema) {
    for (auto e : schema.getEnumerants()) info.enumerants.emplace_back(e.getProto().getName().cStr());
  };
  if (type.isList()) {
    capnp::Type element = type.asList().getElementType();
    if (element.isText()) {
      info.kind = FieldKind::kTextList;
    } else if (element.isData()) {
      info.kind = FieldKind::kRefList;
    } else if (element.isEnum()) {
      info.kind = FieldKind::kEnumList;
      enumerants_of(element.asEnum());
    } else {
      info.kind = FieldKind::kDateList;  // List(UInt32) $date is the only other list
    }
  } else if (type.isText()) {
    info.kind = FieldKind::kText;
  } else if (type.isData()) {
    info.kind = is_child ? FieldKind::kChildRef : FieldKind::kRef;
  } else if (type.isBool()) {
    info.kind = FieldKind::kBool;
  } else if (type.isFloat32() || type.isFloat64()) {
    info.kind = FieldKind::kFloat;
  } else if (type.isEnum()) {
    info.kind = FieldKind::kEnum;
    enumerants_of(type.asEnum());
  } else if (is_date) {
    info.kind = FieldKind::kDate;
  } else {
    info.kind = FieldKind::kUnsigned;
    info.max_value = type.isUInt8() ? 255u : type.isUInt16() ? 65535u : 4294967295u;
  }
  return info;
}

capnp::DynamicStruct::Reader BodyReader(const Record& record) { return BodyOf(record); }
capnp::DynamicStruct::Builder BodyBuilder(Record& record) { return BodyOf(record); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

Status FieldError(const FieldInfo& field, std::string message) {
  return Status::Invalid(field.name + ": " + message);
}

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

Result<uint32_t> ParseEnum(const FieldInfo& field, std::string_view text) {
  for (size_t i = 0; i < field.enumerants.size(); ++i) {
    if (field.enumerants[i] == text || FlagSpelling(field.enumerants[i]) == text) {
      return static_cast<uint32_t>(i);
    }
  }
  std::string list;
  for (const auto& e : field.enumerants) {
    if (e != "unspecified") list += (list.empty() ? "" : ", ") + e;
  }
  return FieldError(field, Quoted(text) + " is not one of: " + list);
}

Result<Id16> ParseId(const FieldInfo& field, std::string_view text) {
  auto id = Id16::Parse(text, field.name);
  if (!id.ok()) return id.status();
  return id;
}

Result<uint32_t> ParseDate(const FieldInfo& field, std::string_view text) {
  auto date = Date::Parse(text);
  if (!date.ok()) return date.status().WithContext(field.name);
  return date->number();
}

Result<bool> ParseBool(const FieldInfo& field, std::string_view text) {
  static const std::set<std::string_view> kTrue = {"true", "yes", "ja", "1", "x", "TRUE", "Ja", "JA", "Yes"};
  static const std::set<std::string_view> kFalse = {"false", "no", "nej", "0", "FALSE", "Nej", "NEJ", "No"};
  if (kTrue.count(text)) return true;
  if (kFalse.count(text)) return false;
  return FieldError(field, Quoted(text) + " is not true or false");
}

// Sets one scalar field from non-empty text.
Status SetScalar(capnp::DynamicStruct::Builder body, const FieldInfo& field, std::string_view text) {
  capnp::StructSchema::Field name = SchemaFieldOf(field);
  switch (field.kind) {
    case FieldKind::kText: {
      std::string terminated(text);  // Text::Reader needs a NUL after the text
      body.set(name, capnp::Text::Reader(terminated.data(), terminated.size()));
      break;
    }
    case FieldKind::kBool: {
      SAMSYNC_ASSIGN_OR_RETURN(bool value, ParseBool(field, text));
      body.set(name, value);
      break;
    }
    case FieldKind::kUnsigned: {
      uint64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size() || value > field.max_value) {
        return FieldError(field, Quoted(text) + " is not a whole number from 0 to " +
                                     std::to_string(field.max_value));
      }
      body.set(name, value);
      break;
    }
    case FieldKind::kFloat: {
      std::string normalised(text);
      std::replace(normalised.begin(), normalised.end(), ',', '.');
      double value = 0;
      auto [end, ec] = std::from_chars(normalised.data(), normalised.data() + normalised.size(), value);
      if (ec != std::errc() || end != normalised.data() + normalised.size() || !std::isfinite(value)) {
        return FieldError(field, Quoted(text) + " is not a number");
      }
      body.set(name, value);
      break;
    }
    case FieldKind::kDate: {
      SAMSYNC_ASSIGN_OR_RETURN(uint32_t value, ParseDate(field, text));
      body.set(name, value);
      break;
    }
    case FieldKind::kEnum: {
      SAMSYNC_ASSIGN_OR_RETURN(uint32_t index, ParseEnum(field, text));
      auto schema = name.getType().asEnum();
      body.set(name, capnp::DynamicEnum(schema.getEnumerants()[index]));
      break;
    }
    case FieldKind::kRef:
    case FieldKind::kChildRef: {
      SAMSYNC_ASSIGN_OR_RETURN(Id16 id, ParseId(field, text));
      body.set(name, capnp::Data::Reader(id.bytes.data(), id.bytes.size()));
      break;
    }
    default: return FieldError(field, "is a list");
  }
  return Status::Ok();
}

Status SetList(capnp::DynamicStruct::Builder body, const FieldInfo& field,
               const std::vector<std::string>& elements) {
  capnp::StructSchema::Field name = SchemaFieldOf(field);
  // Parse everything first so a bad element leaves the record untouched.
  std::vector<uint32_t> numbers;
  std::vector<Id16> ids;
  for (const std::string& element : elements) {
    switch (field.kind) {
      case FieldKind::kDateList: {
        SAMSYNC_ASSIGN_OR_RETURN(uint32_t d, ParseDate(field, element));
        numbers.push_back(d);
        break;
      }
      case FieldKind::kEnumList: {
        SAMSYNC_ASSIGN_OR_RETURN(uint32_t e, ParseEnum(field, element));
        numbers.push_back(e);
        break;
      }
      case FieldKind::kRefList: {
        SAMSYNC_ASSIGN_OR_RETURN(Id16 id, ParseId(field, element));
        ids.push_back(id);
        break;
      }
      case FieldKind::kTextList:
        if (element.empty()) return FieldError(field, "has an empty entry");
        break;
      default: return FieldError(field, "is not a list");
    }
  }
  if (elements.empty()) {
    body.clear(name);  // see CopyField: empty is stored as no value
    return Status::Ok();
  }
  auto list = body.init(name, static_cast<unsigned>(elements.size())).as<capnp::DynamicList>();
  for (unsigned i = 0; i < elements.size(); ++i) {
    switch (field.kind) {
      case FieldKind::kDateList: list.set(i, numbers[i]); break;
      case FieldKind::kEnumList: {
        auto schema = list.getSchema().getElementType().asEnum();
        list.set(i, capnp::DynamicEnum(schema.getEnumerants()[numbers[i]]));
        break;
      }
      case FieldKind::kRefList: list.set(i, capnp::Data::Reader(ids[i].bytes.data(), 16)); break;
      default: list.set(i, capnp::Text::Reader(elements[i].data(), elements[i].size())); break;
    }
  }
  return Status::Ok();
}

bool IsList(FieldKind kind);

// Whether a field of this kind is a pointer (text, id, list), not a number in the data section.
bool IsPointerKind(FieldKind kind) {
  return kind == FieldKind::kText || kind == FieldKind::kRef || kind == FieldKind::kChildRef || IsList(kind);
}

// True for a pointer field holding an empty text, list or data.
bool IsEmptyPointer(const FieldInfo& field, capnp::DynamicValue::Reader value) {
  if (!IsPointerKind(field.kind)) return false;
  if (field.kind == FieldKind::kText) return value.as<capnp::Text>().size() == 0;
  if (IsList(field.kind)) return value.as<capnp::DynamicList>().size() == 0;
  return value.as<capnp::Data>().size() == 0;  // a reference
}

bool IsList(FieldKind kind) {
  return kind == FieldKind::kTextList || kind == FieldKind::kDateList ||
         kind == FieldKind::kEnumList || kind == FieldKind::kRefList;
}

std::string DataText(capnp::Data::Reader data) {
  if (data.size() == 0) return "";
  auto id = Id16::FromBytes({data.begin(), data.size()});
  return id.ok() ? id->ToText() : "<malformed>";
}

std::string DateText(uint32_t number) {
  auto date = Date::FromNumber(number);
  return date.ok() ? date->ToString() : "<invalid " + std::to_string(number) + ">";
}

std::string FloatText(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<float>(value));
  return ec == std::errc() ? std::string(buf, end) : "0";
}

std::string EnumText(capnp::DynamicEnum value) {
  KJ_IF_MAYBE(e, value.getEnumerant()) { return e->getProto().getName().cStr(); }
  return std::to_string(value.getRaw());
}

// The text of one list element or scalar value.
std::string ValueText(const FieldInfo& field, capnp::DynamicValue::Reader value) {
  switch (field.kind) {
    case FieldKind::kText:
    case FieldKind::kTextList: return value.as<capnp::Text>().cStr();
    case FieldKind::kBool: return value.as<bool>() ? "true" : "false";
    case FieldKind::kUnsigned: return std::to_string(value.as<uint64_t>());
    case FieldKind::kFloat: return FloatText(value.as<double>());
    case FieldKind::kDate:
    case FieldKind::kDateList: {
      uint32_t n = value.as<uint32_t>();
      return n == 0 ? "" : DateText(n);
    }
    case FieldKind::kEnum:
    case FieldKind::kEnumList: return EnumText(value.as<capnp::DynamicEnum>());
    case FieldKind::kRef:
    case FieldKind::kRefList:
    case FieldKind::kChildRef: return DataText(value.as<capnp::Data>());
  }
  return "";
}

json ValueJson(const FieldInfo& field, capnp::DynamicValue::Reader value) {
  switch (field.kind) {
    case FieldKind::kBool: return value.as<bool>();
    case FieldKind::kUnsigned: return value.as<uint64_t>();
    case FieldKind::kFloat: return std::stod(FloatText(value.as<double>()));
    default: {
      std::string text = ValueText(field, value);
      if (text.empty() && field.kind != FieldKind::kText && field.kind != FieldKind::kTextList) {
        return nullptr;
      }
      return text;
    }
  }
}

// The text form of a JSON scalar, for fields whose text parser does the checking.
Result<std::string> JsonScalarText(const FieldInfo& field, const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean() && field.kind == FieldKind::kBool) return std::string(value.get<bool>() ? "true" : "false");
  if (value.is_number_unsigned() && field.kind == FieldKind::kUnsigned) return std::to_string(value.get<uint64_t>());
  if (value.is_number() && field.kind == FieldKind::kFloat) return FloatText(value.get<double>());
  return FieldError(field, "has a JSON value of the wrong kind (" + std::string(value.type_name()) + ")");
}

// Handles found once: each type's member of Record.body and each of its fields.
struct SchemaHandles {
  std::vector<capnp::StructSchema::Field> members;
  std::vector<std::vector<capnp::StructSchema::Field>> fields;
};

const SchemaHandles& Handles() {
  static const SchemaHandles kHandles = [] {
    SchemaHandles handles;
    auto body = capnp::Schema::from<schema::Record::Body>();
    for (RecordType t : AllRecordTypes()) {
      handles.members.push_back(body.getFieldByName(std::string(RecordTypeName(t)).c_str()));
      std::vector<capnp::StructSchema::Field> fields;
      for (auto field : handles.members.back().getType().asStruct().getFields()) fields.push_back(field);
      handles.fields.push_back(std::move(fields));
    }
    return handles;
  }();
  return kHandles;
}

}  // namespace

capnp::DynamicStruct::Reader BodyOf(schema::Record::Reader record) {
  return capnp::toDynamic(record.getBody())
      .get(Handles().members[static_cast<int>(record.getBody().which())])
      .as<capnp::DynamicStruct>();
}

capnp::DynamicStruct::Reader BodyOf(const Record& record) { return BodyOf(record.reader()); }

capnp::DynamicStruct::Builder BodyOf(Record& record) {
  return capnp::toDynamic(record.builder().getBody())
      .get(Handles().members[static_cast<int>(record.type())])
      .as<capnp::DynamicStruct>();
}

capnp::StructSchema::Field SchemaFieldOf(const FieldInfo& field) {
  return Handles().fields[static_cast<int>(field.type)][field.ordinal];
}

std::string FieldInfo::Describe() const {
  std::string what;
  switch (kind) {
    case FieldKind::kText: what = "text"; break;
    case FieldKind::kTextList: what = "comma-separated texts"; break;
    case FieldKind::kBool: what = "true or false"; break;
    case FieldKind::kUnsigned: what = "whole number"; break;
    case FieldKind::kFloat: what = "number"; break;
    case FieldKind::kDate: what = "date YYYY-MM-DD"; break;
    case FieldKind::kDateList: what = "comma-separated dates YYYY-MM-DD"; break;
    case FieldKind::kEnum:
    case FieldKind::kEnumList: {
      what = kind == FieldKind::kEnum ? "one of: " : "comma-separated, each one of: ";
      bool first = true;
      for (const auto& e : enumerants) {
        if (e == "unspecified") continue;
        what += (first ? "" : ", ") + e;
        first = false;
      }
      break;
    }
    case FieldKind::kRef: what = "id of a " + std::string(RecordTypeName(*refers_to)); break;
    case FieldKind::kRefList: what = "comma-separated ids of " + std::string(RecordTypeName(*refers_to)) + "s"; break;
    case FieldKind::kChildRef: what = "child reference (from `samsync person add`)"; break;
  }
  if (required) what += " (required)";
  return what;
}

const std::vector<FieldInfo>& FieldsOf(RecordType type) {
  static const std::vector<std::vector<FieldInfo>> kFields = [] {
    std::vector<std::vector<FieldInfo>> all;
    for (RecordType t : AllRecordTypes()) {
      std::vector<FieldInfo> fields;
      for (auto field : BodyMemberSchema(t).getFields()) {
        fields.push_back(BuildFieldInfo(field));
        fields.back().type = t;
        fields.back().ordinal = static_cast<uint16_t>(fields.size() - 1);
      }
      all.push_back(std::move(fields));
    }
    return all;
  }();
  return kFields[static_cast<int>(type)];
}

const FieldInfo* FindField(RecordType type, std::string_view name) {
  for (const FieldInfo& field : FieldsOf(type)) {
    if (field.name == name || field.flag == name) return &field;
  }
  return nullptr;
}

Status SetFieldFromText(Record& record, const FieldInfo& field, std::string_view text) {
  text = Trim(text);
  auto body = BodyBuilder(record);
  if (text.empty()) {
    body.clear(SchemaFieldOf(field));
    return Status::Ok();
  }
  if (!IsList(field.kind)) return SetScalar(body, field, text);
  std::vector<std::string> elements;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    elements.emplace_back(Trim(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return SetList(body, field, elements);
}

std::string FieldToText(const Record& record, const FieldInfo& field) {
  auto value = BodyReader(record).get(SchemaFieldOf(field));
  if (!IsList(field.kind)) return ValueText(field, value);
  std::string out;
  for (auto element : value.as<capnp::DynamicList>()) {
    out += (out.empty() ? "" : ",") + ValueText(field, element);
  }
  return out;
}

json RecordToJson(const Record& record) {
  json out = json::object();
  out["id"] = record.id().ToText();
  out["type"] = std::string(RecordTypeName(record.type()));
  out["district"] = record.district();
  auto body = BodyReader(record);
  for (const FieldInfo& field : FieldsOf(record.type())) {
    auto value = body.get(SchemaFieldOf(field));
    if (IsList(field.kind)) {
      json array = json::array();
      for (auto element : value.as<capnp::DynamicList>()) array.push_back(ValueJson(field, element));
      out[field.name] = std::move(array);
    } else {
      out[field.name] = ValueJson(field, value);
    }
  }
  return out;
}

Status SetFieldsFromJson(Record& record, const json& object) {
  if (!object.is_object()) return Status::Invalid("expected a JSON object of field names and values");
  for (const auto& [key, value] : object.items()) {
    if (key == "id" || key == "type" || key == "district") continue;
    const FieldInfo* field = FindField(record.type(), key);
    if (field == nullptr) {
      return Status::Invalid("a " + std::string(RecordTypeName(record.type())) + " has no field '" + key + "'");
    }
    if (value.is_null()) {
      BodyBuilder(record).clear(SchemaFieldOf(*field));
      continue;
    }
    if (IsList(field->kind)) {
      if (!value.is_array()) return FieldError(*field, "must be a JSON array");
      std::vector<std::string> elements;
      for (const json& element : value) {
        if (!element.is_string()) return FieldError(*field, "entries must be strings");
        elements.push_back(element.get<std::string>());
      }
      SAMSYNC_RETURN_IF_ERROR(SetList(BodyBuilder(record), *field, elements));
      continue;
    }
    SAMSYNC_ASSIGN_OR_RETURN(std::string text, JsonScalarText(*field, value));
    if (Trim(text).empty()) {
      BodyBuilder(record).clear(SchemaFieldOf(*field));
      continue;
    }
    SAMSYNC_RETURN_IF_ERROR(SetScalar(BodyBuilder(record), *field, Trim(text)));
  }
  return Status::Ok();
}

void CopyField(const Record& from, Record& to, const FieldInfo& field) {
  uint16_t ordinal = field.ordinal;
  CopyFields(from, to, {&ordinal, 1});
}

void CopyFields(const Record& from, Record& to, std::span<const uint16_t> ordinals) {
  CopyFields(from.reader(), to, ordinals);
}

void CopyFields(schema::Record::Reader from, Record& to, std::span<const uint16_t> ordinals) {
  if (ordinals.empty()) return;
  const auto& fields = FieldsOf(to.type());
  auto source = BodyOf(from);  // reflection lookups once per record, not per field
  auto target = BodyBuilder(to);
  for (uint16_t ordinal : ordinals) {
    const FieldInfo& field = fields[ordinal];
    auto schema_field = SchemaFieldOf(field);
    // An empty text, list or id is stored as no value at all, so that one value has
    // one encoding and equal records hash alike.
    if (!source.has(schema_field) || IsEmptyPointer(field, source.get(schema_field))) {
      target.clear(schema_field);
    } else {
      target.set(schema_field, source.get(schema_field));
    }
  }
}

void CopyAllFields(schema::Record::Reader from, Record& to) {
  auto source = BodyOf(from);
  // A body larger than this schema's (a newer writer's, or a forged one) may carry
  // data no field names; CopyFields drops it, and so must this.
  capnp::AnyStruct::Reader raw = source;
  auto size = source.getSchema().getProto().getStruct();
  if (raw.getDataSection().size() > size.getDataWordCount() * sizeof(capnp::word) ||
      raw.getPointerSection().size() > size.getPointerCount()) {
    std::vector<uint16_t> all(FieldsOf(to.type()).size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    CopyFields(from, to, all);
    return;
  }
  capnp::toDynamic(to.builder().getBody()).set(Handles().members[static_cast<int>(to.type())], source);
  // As CopyFields: an empty text, list or id is no value at all.
  auto target = BodyBuilder(to);
  for (const FieldInfo& field : FieldsOf(to.type())) {
    if (!IsPointerKind(field.kind)) continue;
    auto schema_field = SchemaFieldOf(field);
    if (target.has(schema_field) && IsEmptyPointer(field, target.asReader().get(schema_field))) {
      target.clear(schema_field);
    }
  }
}

Date IndexDateOf(const Record& record) {
  for (const FieldInfo& field : FieldsOf(record.type())) {
    if (!field.index_date) continue;
    auto date = Date::FromNumber(BodyReader(record).get(SchemaFieldOf(field)).as<uint32_t>());
    return date.ok() ? *date : Date();
  }
  return Date();
}

std::vector<Id16> IdsIn(const Record& record, const FieldInfo& field) {
  std::vector<Id16> ids;
  auto add = [&](capnp::Data::Reader data) {
    auto id = Id16::FromBytes({data.begin(), data.size()});
    if (id.ok()) ids.push_back(*id);
  };
  auto value = BodyReader(record).get(SchemaFieldOf(field));
  if (field.kind == FieldKind::kRef || field.kind == FieldKind::kChildRef) {
    add(value.as<capnp::Data>());
  } else if (field.kind == FieldKind::kRefList) {
    for (auto element : value.as<capnp::DynamicList>()) add(element.as<capnp::Data>());
  }
  return ids;
}

std::vector<RecordId> ReferencedIds(const Record& record, RecordType target) {
  std::vector<RecordId> ids;
  for (const FieldInfo& field : FieldsOf(record.type())) {
    if (field.refers_to != target) continue;
    for (const RecordId& id : IdsIn(record, field)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<ChildRef> ChildRefsOf(const Record& record) {
  std::vector<ChildRef> refs;
  for (const FieldInfo& field : FieldsOf(record.type())) {
    if (field.kind == FieldKind::kChildRef) {
      for (const ChildRef& ref : IdsIn(record, field)) refs.push_back(ref);
    }
  }
  return refs;
}

}  // namespace samsync
