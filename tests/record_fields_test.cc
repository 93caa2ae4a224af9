// Records, their fields' text and JSON forms, and the validation rules.
#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <nlohmann/json.hpp>

#include "samsync/districts.h"
#include "samsync/identity.h"
#include "samsync/record_fields.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::MakeRecord;
using testing::MakePersonnummer;

constexpr char kSchoolA[] = "01M83V3D5CWHZ1P416TVF4CJY8";
constexpr char kSchoolB[] = "01M83V3D7JKHD2A6GRD0W3RHJ7";
constexpr char kChild[] = "7Z64W2QWBP3PQYHD2C0ZYP2NK1";

Status Set(Record& r, const char* field, const char* value) {
  return SetFieldFromText(r, *FindField(r.type(), field), value);
}

std::string Validate(const Record& r) { return ValidateRecord(r).message(); }

TEST(IdsTest, TextFormRoundTripsAndRejectsJunk) {
  auto id = Id16::Parse(kSchoolA);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->ToText(), kSchoolA);
  EXPECT_EQ(Id16::Parse("01m83v3d5cwhz1p416tvf4cjy8")->ToText(), kSchoolA);  // case
  EXPECT_FALSE(Id16::Parse("01M83V3D5CWHZ1P416TVF4CJY").ok());                 // short
  EXPECT_FALSE(Id16::Parse("81M83V3D5CWHZ1P416TVF4CJY8").ok());                // > 128 bits
  EXPECT_FALSE(Id16::Parse("01M83V3D5CWHZ1P416TVF4CJU8").ok());                // U is not base32
}

TEST(DateTest, ParsesOnlyRealDatesAndKnowsTerms) {
  EXPECT_EQ(Date::Parse("2016-02-29")->number(), 20160229u);
  EXPECT_FALSE(Date::Parse("2015-02-29").ok());
  EXPECT_FALSE(Date::Parse("2016-13-01").ok());
  EXPECT_FALSE(Date::Parse("16-01-01").ok());
  EXPECT_FALSE(Date::Parse("2016/01/01").ok());
  EXPECT_EQ(DaysBetween(Date::Parse("2016-02-28").value(), Date::Parse("2016-03-01").value()), 2);
  EXPECT_EQ(Date::Parse("2016-12-31")->AddDays(1).ToString(), "2017-01-01");
  Term ht = Term::Parse("ht2016").value();
  EXPECT_EQ(ht.ToString(), "2016HT");
  EXPECT_EQ(ht.Start().ToString(), "2016-07-01");
  EXPECT_EQ(ht.End().ToString(), "2016-12-31");
  EXPECT_EQ(ht.Previous().ToString(), "2016VT");
  EXPECT_EQ(Term::Of(Date::Parse("2016-06-30").value()).ToString(), "2016VT");
  EXPECT_FALSE(Term::Parse("2016XT").ok());
}

TEST(IdentityTest, PersonnummerNeedsAValidDateAndLuhnDigit) {
  EXPECT_EQ(NormalisePersonnummer("20080215-1233").value(), "200802151233");
  EXPECT_EQ(NormalisePersonnummer("200802151233").value(), "200802151233");
  EXPECT_EQ(NormalisePersonnummer("20080275-1230").status().code(), Code::kOk);  // samordningsnummer
  auto wrong_digit = NormalisePersonnummer("20080215-1234");
  EXPECT_EQ(wrong_digit.status().message(), "personnummer check digit is wrong");
  EXPECT_FALSE(NormalisePersonnummer("20080230-1233").ok());
  EXPECT_FALSE(NormalisePersonnummer("080215-1233").ok());
  EXPECT_FALSE(NormalisePersonnummer("2008021a-1233").ok());
  // Errors never echo the number back.
  EXPECT_EQ(wrong_digit.status().message().find("0215"), std::string::npos);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(NormalisePersonnummer(MakePersonnummer("20100101", i)).ok());
}

TEST(DistrictTest, MatchesCaseInsensitivelyIncludingSwedishLetters) {
  EXPECT_EQ(CanonicalDistrict("östermalm").value(), "Östermalm");
  EXPECT_EQ(CanonicalDistrict("ENSKEDE-ÅRSTA-VANTÖR").value(), "Enskede-Årsta-Vantör");
  EXPECT_EQ(Districts().size(), 14u);
  EXPECT_FALSE(CanonicalDistrict("Gamla stan").ok());
}

TEST(FieldsTest, SchemaAnnotationsBecomeFieldInfo) {
  const FieldInfo* from = FindField(RecordType::kContact, "from-date");
  ASSERT_NE(from, nullptr);
  EXPECT_EQ(from->name, "fromDate");
  EXPECT_EQ(from->kind, FieldKind::kDate);
  EXPECT_TRUE(from->required);
  EXPECT_TRUE(from->index_date);
  const FieldInfo* invited = FindField(RecordType::kForum, "invitedSchoolIds");
  EXPECT_EQ(invited->kind, FieldKind::kRefList);
  EXPECT_EQ(invited->refers_to, RecordType::kSchool);
  EXPECT_EQ(FindField(RecordType::kConcern, "childRef")->kind, FieldKind::kChildRef);
  EXPECT_EQ(FindField(RecordType::kSchool, "principal")->Describe(), "one of: municipal, independent (required)");
  EXPECT_EQ(FindField(RecordType::kSchool, "nope"), nullptr);
  for (RecordType type : AllRecordTypes()) EXPECT_FALSE(FieldsOf(type).empty());
}

TEST(FieldsTest, TextFormsParseAndPrint) {
  Record r(RecordType::kFollowup);
  ASSERT_TRUE(Set(r, "attendancePct", "93,5").ok());  // Swedish decimal comma
  EXPECT_EQ(FieldToText(r, *FindField(r.type(), "attendancePct")), "93.5");
  ASSERT_TRUE(Set(r, "eligibleUpperSecondary", "ja").ok());
  EXPECT_EQ(FieldToText(r, *FindField(r.type(), "eligibleUpperSecondary")), "true");
  EXPECT_EQ(Set(r, "schoolYear", "300").message(), "schoolYear: '300' is not a whole number from 0 to 255");
  EXPECT_EQ(Set(r, "date", "2016-02-30").message(),
            "date: '2016-02-30' is not a date (expected YYYY-MM-DD)");
  EXPECT_FALSE(Set(r, "attendancePct", "mycket").ok());
  Record s(RecordType::kSchool);
  EXPECT_EQ(Set(s, "principal", "private").message(), "principal: 'private' is not one of: municipal, independent");
  ASSERT_TRUE(Set(s, "forms", "compulsory, preschool-class").ok());  // flag spelling of an enumerant
  EXPECT_EQ(FieldToText(s, *FindField(s.type(), "forms")), "compulsory,preschoolClass");
  ASSERT_TRUE(Set(s, "forms", "").ok());
  EXPECT_EQ(FieldToText(s, *FindField(s.type(), "forms")), "");
}

TEST(FieldsTest, JsonRoundTripsAndRejectsUnknownFields) {
  Record r = MakeRecord(RecordType::kForum, {{"kind", "steeringGroup"},
                                             {"date", "2016-09-01"},
                                             {"invitedSchoolIds", std::string(kSchoolA) + "," + kSchoolB},
                                             {"attendedSchoolIds", kSchoolA}});
  nlohmann::json j = RecordToJson(r);
  EXPECT_EQ(j["kind"], "steeringGroup");
  EXPECT_EQ(j["date"], "2016-09-01");
  EXPECT_EQ(j["invitedSchoolIds"].size(), 2u);
  EXPECT_EQ(j["cancelled"], false);
  Record back(RecordType::kForum);
  ASSERT_TRUE(SetFieldsFromJson(back, j).ok());
  EXPECT_EQ(RecordToJson(back).dump(), RecordToJson(r).dump());

  EXPECT_EQ(SetFieldsFromJson(back, {{"colour", "red"}}).message(), "a forum has no field 'colour'");
  EXPECT_EQ(SetFieldsFromJson(back, {{"date", 20160901}}).message(),
            "date: has a JSON value of the wrong kind (number)");
  EXPECT_FALSE(SetFieldsFromJson(back, {{"invitedSchoolIds", kSchoolA}}).ok());
  EXPECT_TRUE(SetFieldsFromJson(back, {{"date", nullptr}}).ok());
  EXPECT_EQ(RecordToJson(back)["date"], nullptr);
}

TEST(FieldsTest, EncodeDecodeRoundTripsAndRejectsGarbage) {
  Record r = MakeRecord(RecordType::kSchool, {{"name", "Åsö grundskola"}, {"principal", "municipal"}});
  r.set_id(Id16::Parse(kSchoolA).value());
  auto bytes = r.Encode();
  auto back = Record::Decode(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(RecordToJson(*back).dump(), RecordToJson(r).dump());
  std::vector<uint8_t> junk(40, 0xff);
  EXPECT_EQ(Record::Decode(junk).status().code(), Code::kCorruption);
  EXPECT_EQ(Record::Decode({}).status().code(), Code::kCorruption);
  std::vector<uint8_t> odd(bytes.begin(), bytes.end() - 3);
  EXPECT_EQ(Record::Decode(odd).status().code(), Code::kCorruption);
}

// A decoded record is read in place until it changes (record.h): it must read, encode
// and change exactly as a record built here does, whatever layout the bytes had.
TEST(FieldsTest, ADecodedRecordReadsEncodesAndChangesAsABuiltOne) {
  Record built = MakeRecord(RecordType::kSchool, {{"name", "Åsö grundskola"}, {"principal", "municipal"}});
  built.set_id(Id16::Parse(kSchoolA).value());
  built.set_district("Södermalm");
  const std::vector<uint8_t> canonical = built.Encode();

  // The same record laid out in one-word segments: every pointer a far pointer, which a
  // reader without bounds checks could not follow. Decode lays it out afresh.
  capnp::MallocMessageBuilder scattered(1, capnp::AllocationStrategy::FIXED_SIZE);
  scattered.setRoot(built.reader());
  ASSERT_GT(scattered.getSegmentsForOutput().size(), 1u);
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(scattered);
  auto bytes = flat.asBytes();
  ASSERT_NE(std::vector<uint8_t>(bytes.begin(), bytes.end()), canonical);

  auto decoded = Record::Decode({bytes.begin(), bytes.size()});
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(decoded->Encode(), canonical);
  EXPECT_EQ(decoded->EncodeCanonical(), built.EncodeCanonical());
  EXPECT_EQ(RecordToJson(*decoded).dump(), RecordToJson(built).dump());

  // Changed: the change reads back and encodes; a reader taken before still reads the
  // record as decoded.
  schema::Record::Reader before = decoded->reader();
  decoded->set_district("Skarpnäck");
  ASSERT_TRUE(Set(*decoded, "name", "Ängsskolan").ok());
  EXPECT_EQ(decoded->district(), "Skarpnäck");
  EXPECT_STREQ(before.getDistrict().cStr(), "Södermalm");
  auto again = Record::Decode(decoded->Encode());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->district(), "Skarpnäck");
  EXPECT_EQ(RecordToJson(*again)["name"], "Ängsskolan");
  EXPECT_EQ(again->id(), built.id());
}

// A record with every field of its type copied one by one (CopyFields).
Record CopiedFieldByField(const Record& from) {
  Record to(from.type());
  std::vector<uint16_t> all(FieldsOf(from.type()).size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  CopyFields(from, to, all);
  return to;
}

TEST(FieldsTest, CopyingAWholeNewRecordEncodesAsCopyingEachField) {
  Record from = MakeRecord(RecordType::kSchool, {{"name", "Åsö grundskola"}, {"principal", "independent"}});
  ASSERT_TRUE(Set(from, "ppssFocus", "true").ok());
  from.builder().getBody().getSchool().initForms(0);  // an empty list: no value at all once copied
  Record whole(RecordType::kSchool);
  CopyAllFields(from.reader(), whole);
  EXPECT_EQ(whole.EncodeCanonical(), CopiedFieldByField(from).EncodeCanonical());
  EXPECT_FALSE(whole.reader().getBody().getSchool().hasForms());
  EXPECT_EQ(RecordToJson(whole)["name"], "Åsö grundskola");
  EXPECT_EQ(RecordToJson(whole)["ppssFocus"], true);

  Record contact = MakeRecord(RecordType::kContact, {{"schoolId", kSchoolA}, {"fromDate", "2016-08-15"}});
  contact.builder().getBody().getContact().setSocialWorker("");  // an empty text: no value either
  Record contact_whole(RecordType::kContact);
  CopyAllFields(contact.reader(), contact_whole);
  EXPECT_EQ(contact_whole.EncodeCanonical(), CopiedFieldByField(contact).EncodeCanonical());
  EXPECT_FALSE(contact_whole.reader().getBody().getContact().hasSocialWorker());
}

TEST(FieldsTest, CopyingAWholeRecordDropsWhatNoFieldNames) {
  // A body struct larger than the schema's, with a byte set where no field is: what a
  // newer writer or a forger could send in a commit.
  Record from = MakeRecord(RecordType::kSchool, {{"principal", "municipal"}});
  capnp::AnyStruct::Builder record(from.builder());
  auto size = capnp::Schema::from<schema::School>().getProto().getStruct();
  auto larger = record.getPointerSection()[2].initAsAnyStruct(size.getDataWordCount() + 1, size.getPointerCount() + 1);
  larger.getDataSection()[size.getDataWordCount() * 8] = 0x55;
  from.builder().getBody().getSchool().setName("Åsö grundskola");
  ASSERT_EQ(from.type(), RecordType::kSchool);
  Record whole(RecordType::kSchool);
  CopyAllFields(from.reader(), whole);
  Record by_field = CopiedFieldByField(from);
  EXPECT_EQ(whole.EncodeCanonical(), by_field.EncodeCanonical());
  EXPECT_EQ(RecordToJson(whole)["name"], "Åsö grundskola");
  // The copy is smaller than the body it came from: the stray byte stayed behind.
  EXPECT_LT(whole.EncodeCanonical().size(), from.EncodeCanonical().size());
}

TEST(ValidateTest, RequiredFieldsAreNamed) {
  EXPECT_EQ(Validate(Record(RecordType::kSchool)), "name: is required");
  EXPECT_EQ(Validate(MakeRecord(RecordType::kSchool, {{"name", "X"}})), "principal: is required");
  EXPECT_EQ(Validate(MakeRecord(RecordType::kSchool, {{"name", "   "}, {"principal", "municipal"}})), "name: is required");
  EXPECT_EQ(Validate(MakeRecord(RecordType::kAgreement, {{"version", "1"}, {"adoptedDate", "2016-01-01"}})),
            "parties: is required");
  EXPECT_EQ(Validate(MakeRecord(RecordType::kSchool, {{"name", "X"}, {"principal", "independent"}})), "");
}

TEST(ValidateTest, DomainRules) {
  auto contact = [](const char* from, const char* informed) {
    return MakeRecord(RecordType::kContact, {{"schoolId", kSchoolA}, {"socialWorker", "AB"}, {"fromDate", from},
                                             {"informedDate", informed}});
  };
  EXPECT_EQ(Validate(contact("2016-08-01", "2016-07-20")), "informedDate: is before fromDate");
  EXPECT_EQ(Validate(contact("2016-08-01", "2016-08-01")), "");

  Record forum = MakeRecord(RecordType::kForum, {{"kind", "localForum"}, {"date", "2016-09-01"},
                                                 {"invitedSchoolIds", kSchoolA}, {"attendedSchoolIds", kSchoolB}});
  EXPECT_EQ(Validate(forum), "attendedSchoolIds: lists a school that was not invited");
  Record twice = MakeRecord(RecordType::kForum, {{"kind", "localForum"}, {"date", "2016-09-01"},
                                                 {"invitedSchoolIds", std::string(kSchoolA) + "," + kSchoolA}});
  EXPECT_EQ(Validate(twice), "invitedSchoolIds: lists the same school twice");
  Record cancelled = MakeRecord(RecordType::kForum, {{"kind", "managers"}, {"date", "2016-09-01"}, {"cancelled", "true"},
                                                     {"invitedSchoolIds", kSchoolA}, {"attendedSchoolIds", kSchoolA}});
  EXPECT_EQ(Validate(cancelled), "attendedSchoolIds: must be empty for a cancelled meeting");

  auto concern = [](const char* feedback, const char* form) {
    return MakeRecord(RecordType::kConcern, {{"schoolId", kSchoolA}, {"receivedDate", "2016-09-01"}, {"childRef", kChild},
                                             {"feedbackDate", feedback}, {"feedbackForm", form}});
  };
  EXPECT_EQ(Validate(concern("2016-08-31", "phone")), "feedbackDate: is before receivedDate");
  EXPECT_EQ(Validate(concern("2016-09-10", "none")), "feedbackForm: is required when feedbackDate is given");
  EXPECT_EQ(Validate(concern("", "letter")), "feedbackDate: is required when feedbackForm is given");
  EXPECT_EQ(Validate(concern("2016-09-10", "meeting")), "");

  Record plan = MakeRecord(RecordType::kEnrolment, {{"childRef", kChild}, {"schoolId", kSchoolA}, {"programme", "ppss"},
                                                    {"startDate", "2016-01-10"}, {"hasSchoolPlan", "true"}});
  EXPECT_EQ(Validate(plan), "hasSchoolPlan: applies to placed children only (programme placed)");
  Record followup = MakeRecord(RecordType::kFollowup, {{"childRef", kChild}, {"date", "2016-01-10"}, {"attendancePct", "101"}});
  EXPECT_EQ(Validate(followup), "attendancePct: must be from 0 to 100");
  Record term = MakeRecord(RecordType::kFollowup, {{"childRef", kChild}, {"date", "2016-01-10"}, {"term", "våren"}});
  EXPECT_EQ(Validate(term), "term: 'våren' is not a term (expected e.g. 2016HT or 2016VT)");
  Record agreement = MakeRecord(RecordType::kAgreement, {{"version", "2"}, {"parties", "A,B"}, {"adoptedDate", "2016-01-01"},
                                                         {"revisionDates", "2015-12-01"}});
  EXPECT_EQ(Validate(agreement), "revisionDates: is before adoptedDate");
  Record absence = MakeRecord(RecordType::kAbsence, {{"childRef", kChild}, {"schoolId", kSchoolA},
                                                     {"flaggedDate", "2016-10-01"}, {"contactedDate", "2016-09-01"}});
  EXPECT_EQ(Validate(absence), "contactedDate: is before flaggedDate");
}

}  // namespace
}  // namespace samsync
