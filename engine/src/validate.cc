// ValidateRecord: the checks that need nothing but the record itself. The generic
// part follows the schema's annotations; the rules after it are the domain's.
#include <capnp/dynamic.h>

#include <set>

#include "samsync/record_fields.h"
#include "record_dynamic.h"

namespace samsync {
namespace {

Status Invalid(std::string_view field, std::string message) {
  return Status::Invalid(std::string(field) + ": " + message);
}

Status CheckGeneric(const Record& record) {
  auto body = BodyOf(record);
  for (const FieldInfo& field : FieldsOf(record.type())) {
    auto value = body.get(SchemaFieldOf(field));
    bool given = true;
    switch (field.kind) {
      case FieldKind::kText: {
        std::string_view text = value.as<capnp::Text>().cStr();
        given = text.find_first_not_of(" \t") != std::string_view::npos;
        if (text.size() > 500) return Invalid(field.name, "is longer than 500 characters");
        break;
      }
      case FieldKind::kUnsigned: given = value.as<uint64_t>() != 0; break;
      case FieldKind::kBool:
      case FieldKind::kFloat: break;
      case FieldKind::kDate: {
        uint32_t n = value.as<uint32_t>();
        given = n != 0;
        if (!Date::FromNumber(n).ok()) return Invalid(field.name, "is not a valid date");
        break;
      }
      case FieldKind::kEnum: {
        auto e = value.as<capnp::DynamicEnum>();
        given = field.enumerants.at(0) != "unspecified" || e.getRaw() != 0;
        if (e.getRaw() >= field.enumerants.size()) return Invalid(field.name, "has an unknown value");
        break;
      }
      case FieldKind::kRef:
      case FieldKind::kChildRef: {
        size_t size = value.as<capnp::Data>().size();
        given = size != 0;
        if (size != 0 && size != 16) return Invalid(field.name, "is not a 16-byte id");
        break;
      }
      case FieldKind::kTextList:
      case FieldKind::kDateList:
      case FieldKind::kEnumList:
      case FieldKind::kRefList: {
        auto list = value.as<capnp::DynamicList>();
        given = list.size() != 0;
        std::set<std::string> seen;
        for (auto element : list) {
          if (field.kind == FieldKind::kDateList &&
              (element.as<uint32_t>() == 0 || !Date::FromNumber(element.as<uint32_t>()).ok())) {
            return Invalid(field.name, "holds an invalid date");
          }
          if (field.kind == FieldKind::kRefList) {
            auto data = element.as<capnp::Data>();
            if (data.size() != 16) return Invalid(field.name, "holds an id that is not 16 bytes");
            if (!seen.insert(std::string(data.asChars().begin(), data.size())).second) {
              return Invalid(field.name, "lists the same " + std::string(RecordTypeName(*field.refers_to)) + " twice");
            }
          }
          if (field.kind == FieldKind::kEnumList &&
              element.as<capnp::DynamicEnum>().getRaw() >= field.enumerants.size()) {
            return Invalid(field.name, "holds an unknown value");
          }
        }
        break;
      }
    }
    if (field.required && !given) return Invalid(field.name, "is required");
  }
  return Status::Ok();
}

// `later` must not be before `earlier` when both are given.
Status CheckOrder(uint32_t earlier, std::string_view earlier_name, uint32_t later,
                  std::string_view later_name) {
  if (earlier != 0 && later != 0 && later < earlier) {
    return Invalid(later_name, "is before " + std::string(earlier_name));
  }
  return Status::Ok();
}

Status CheckPercent(float value, std::string_view name) {
  if (!(value >= 0.0f && value <= 100.0f)) return Invalid(name, "must be from 0 to 100");
  return Status::Ok();
}

Status CheckDomainRules(const Record& record) {
  auto body = record.reader().getBody();
  switch (record.type()) {
    case RecordType::kSchool:
      return Status::Ok();
    case RecordType::kContact: {
      auto c = body.getContact();
      SAMSYNC_RETURN_IF_ERROR(CheckOrder(c.getFromDate(), "fromDate", c.getToDate(), "toDate"));
      // The rule: the school cannot have been told before the change was made.
      return CheckOrder(c.getFromDate(), "fromDate", c.getInformedDate(), "informedDate");
    }
    case RecordType::kAgreement: {
      auto a = body.getAgreement();
      for (uint32_t revision : a.getRevisionDates()) {
        SAMSYNC_RETURN_IF_ERROR(CheckOrder(a.getAdoptedDate(), "adoptedDate", revision, "revisionDates"));
      }
      return Status::Ok();
    }
    case RecordType::kMaterial:
      return Status::Ok();
    case RecordType::kForum: {
      auto f = body.getForum();
      std::set<std::string> invited;
      for (auto id : f.getInvitedSchoolIds()) invited.emplace(id.asChars().begin(), id.size());
      for (auto id : f.getAttendedSchoolIds()) {
        if (!invited.count(std::string(id.asChars().begin(), id.size()))) {
          return Invalid("attendedSchoolIds", "lists a school that was not invited");
        }
      }
      if (f.getCancelled() && f.getAttendedSchoolIds().size() > 0) {
        return Invalid("attendedSchoolIds", "must be empty for a cancelled meeting");
      }
      return Status::Ok();
    }
    case RecordType::kConcern: {
      auto c = body.getConcern();
      SAMSYNC_RETURN_IF_ERROR(CheckOrder(c.getReceivedDate(), "receivedDate", c.getFeedbackDate(), "feedbackDate"));
      bool has_form = c.getFeedbackForm() != schema::FeedbackForm::NONE;
      if (has_form && c.getFeedbackDate() == 0) return Invalid("feedbackDate", "is required when feedbackForm is given");
      if (!has_form && c.getFeedbackDate() != 0) return Invalid("feedbackForm", "is required when feedbackDate is given");
      return Status::Ok();
    }
    case RecordType::kEnrolment: {
      auto e = body.getEnrolment();
      SAMSYNC_RETURN_IF_ERROR(CheckOrder(e.getStartDate(), "startDate", e.getEndDate(), "endDate"));
      if (e.getHasSchoolPlan() && e.getProgramme() != schema::Programme::PLACED) {
        return Invalid("hasSchoolPlan", "applies to placed children only (programme placed)");
      }
      return Status::Ok();
    }
    case RecordType::kFollowup: {
      auto f = body.getFollowup();
      SAMSYNC_RETURN_IF_ERROR(CheckPercent(f.getAttendancePct(), "attendancePct"));
      SAMSYNC_RETURN_IF_ERROR(CheckPercent(f.getSubjectsPassedPct(), "subjectsPassedPct"));
      if (f.getSchoolYear() > 12) return Invalid("schoolYear", "must be from 0 to 12");
      if (f.hasTerm() && f.getTerm().size() > 0) {
        auto term = Term::Parse(f.getTerm().cStr());
        if (!term.ok()) return term.status().WithContext("term");
      }
      return Status::Ok();
    }
    case RecordType::kAbsence: {
      auto a = body.getAbsence();
      return CheckOrder(a.getFlaggedDate(), "flaggedDate", a.getContactedDate(), "contactedDate");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateRecord(const Record& record) {
  SAMSYNC_RETURN_IF_ERROR(CheckGeneric(record));
  return CheckDomainRules(record);
}

}  // namespace samsync
