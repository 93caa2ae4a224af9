// CSV import and export: the spreadsheets district staff keep today.
#include "samsync/csv.h"

#include <nlohmann/json.hpp>

#include "samsync/record_fields.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::AddChild;
using testing::AddSchool;
using testing::TestStore;

Status ImportInto(Store& store, RecordType type, std::string_view csv) {
  auto batch = ParseCsv(type, csv);
  if (!batch.ok()) return batch.status();
  auto applied = store.Apply(*batch);
  return applied.ok() ? Status::Ok() : applied.status();
}

TEST(CsvTest, ImportsSemicolonFilesWithBomAndSwedishLetters) {
  TestStore t;
  std::string csv =
      "\xEF\xBB\xBFname;principal;forms;ppssFocus\r\n"
      "Årstaskolan;municipal;compulsory,preschoolClass;ja\r\n"
      "Södra Latins gymnasium;municipal;upperSecondary;nej\r\n"
      "\"Kunskapsskolan; Skarpnäck\";independent;compulsory;\r\n";
  ASSERT_TRUE(ImportInto(t.store(), RecordType::kSchool, csv).ok());
  auto schools = t->ListAll(RecordType::kSchool);
  ASSERT_EQ(schools->size(), 3u);
  EXPECT_EQ(FieldToText((*schools)[0], *FindField(RecordType::kSchool, "name")), "Årstaskolan");
  EXPECT_EQ(FieldToText((*schools)[0], *FindField(RecordType::kSchool, "ppssFocus")), "true");
  EXPECT_EQ(FieldToText((*schools)[2], *FindField(RecordType::kSchool, "name")), "Kunskapsskolan; Skarpnäck");
}

TEST(CsvTest, ImportsCommaFilesWithFlagSpellingHeaders) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  std::string csv = "school-id,social-worker,from-date,informed-date\n" + school.ToText() +
                    ",AB,2016-08-01,2016-08-10\n" + school.ToText() + ",\"C, D\",2016-01-01,\n";
  ASSERT_TRUE(ImportInto(t.store(), RecordType::kContact, csv).ok());
  auto contacts = t->ListAll(RecordType::kContact);
  ASSERT_EQ(contacts->size(), 2u);
}

TEST(CsvTest, ABadRowRejectsTheWholeFileNamingRowAndColumn) {
  TestStore t;
  std::string csv =
      "name;principal\n"
      "Ett;municipal\n"
      "Två;kommunal\n";
  Status s = ImportInto(t.store(), RecordType::kSchool, csv);
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_EQ(s.message(), "row 3, column principal: 'kommunal' is not one of: municipal, independent");
  EXPECT_EQ(t->ListAll(RecordType::kSchool)->size(), 0u);
}

TEST(CsvTest, ValidationAndReferenceErrorsNameTheRow) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  ChildRef child = AddChild(t.store(), 1);
  std::string good = school.ToText() + ";2016-09-01;" + child.ToText() + ";;none\n";
  std::string early = school.ToText() + ";2016-09-01;" + child.ToText() + ";2016-08-01;phone\n";
  Status s = ImportInto(t.store(), RecordType::kConcern,
                        "schoolId;receivedDate;childRef;feedbackDate;feedbackForm\n" + good + good + early);
  EXPECT_EQ(s.message(), "row 4, column feedbackDate: is before receivedDate");

  std::string unknown_school = "01M83V3D5CWHZ1P416TVF4CJY8;2016-09-01;" + child.ToText() + ";;none\n";
  s = ImportInto(t.store(), RecordType::kConcern,
                 "schoolId;receivedDate;childRef;feedbackDate;feedbackForm\n" + good + unknown_school);
  EXPECT_EQ(s.message(), "row 3: schoolId: no school 01M83V3D5CWHZ1P416TVF4CJY8 in this store");
  EXPECT_EQ(t->ListAll(RecordType::kConcern)->size(), 0u);
}

TEST(CsvTest, MalformedFilesAreRefusedWithAReason) {
  auto message = [](std::string_view csv) { return ParseCsv(RecordType::kSchool, csv).status().message(); };
  EXPECT_EQ(message(""), "the file is empty: expected a header row naming the fields");
  EXPECT_EQ(message("name;colour\nX;red\n"), "row 1, column colour: a school has no such field");
  EXPECT_EQ(message("name\nX\n"), "row 1: the header lacks the required column principal");
  EXPECT_EQ(message("name;name;principal\n"), "row 1, column name: named twice in the header");
  EXPECT_EQ(message("name;principal\nX;municipal;extra\n"), "row 2: has 3 fields, the header has 2");
  EXPECT_EQ(message("name;principal\n\"X;municipal\n"),
            "row 2: malformed CSV (a quote is not closed or stands inside a field)");
  EXPECT_EQ(message("name;principal\nS\xF6" "dermalm;municipal\n"),  // Latin-1 ö
            "the file is not UTF-8 (in Excel: Save As, \"CSV UTF-8\")");
  EXPECT_EQ(message("name;principal\nX;municipal\n\nY;independent\n"), "");  // blank lines are skipped
}

TEST(CsvTest, ExportImportsAgainUnchangedAndTheIdColumnUpdates) {
  TestStore t;
  ASSERT_TRUE(ImportInto(t.store(), RecordType::kSchool,
                         "name;principal;forms\n\"Skola \"\"Ett\"\"\";municipal;compulsory,preschool\nTvå;independent;\n")
                  .ok());
  auto before = t->ListAll(RecordType::kSchool).value();
  std::string exported = RecordsToCsv(RecordType::kSchool, before);
  EXPECT_EQ(exported.substr(0, 3), "\xEF\xBB\xBF");
  EXPECT_NE(exported.find("id;district;name;principal;forms;ppssFocus;closedDate\r\n"), std::string::npos);

  // Importing the export replaces each record by itself: nothing changes, nothing is added.
  ASSERT_TRUE(ImportInto(t.store(), RecordType::kSchool, exported).ok());
  auto after = t->ListAll(RecordType::kSchool).value();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(RecordToJson(after[i]).dump(), RecordToJson(before[i]).dump());

  std::string edited = "id,name,principal,closedDate\n" + before[1].id().ToText() + ",Två,independent,2016-06-30\n";
  ASSERT_TRUE(ImportInto(t.store(), RecordType::kSchool, edited).ok());
  EXPECT_EQ(FieldToText(t->Get(before[1].id()).value(), *FindField(RecordType::kSchool, "closedDate")), "2016-06-30");

  CsvWriteOptions comma;
  comma.separator = ',';
  comma.byte_order_mark = false;
  std::string plain = RecordsToCsv(RecordType::kSchool, after, comma);
  EXPECT_EQ(plain.substr(0, 3), "id,");
  EXPECT_NE(plain.find("\"Skola \"\"Ett\"\"\""), std::string::npos);
  EXPECT_NE(plain.find("\"compulsory,preschool\""), std::string::npos);
}

TEST(CsvTest, AnIdOnTwoRowsRejectsTheFileNamingBothRows) {
  TestStore t;
  RecordId school = AddSchool(t.store(), "Ett");
  std::string csv = "id;name;principal\n" + school.ToText() + ";Ett;municipal\n;Två;independent\n" + school.ToText() +
                    ";Tre;independent\n";
  Status s = ImportInto(t.store(), RecordType::kSchool, csv);
  EXPECT_EQ(s.code(), Code::kInvalidInput);
  EXPECT_EQ(s.message(), "row 4, column id: " + school.ToText() + " is on row 2 too (a file names each record once)");
  auto schools = t->ListAll(RecordType::kSchool).value();
  ASSERT_EQ(schools.size(), 1u);
  EXPECT_EQ(FieldToText(schools[0], *FindField(RecordType::kSchool, "name")), "Ett");
}

TEST(CsvTest, AHundredThousandRowImportIsOneTransaction) {
  TestStore t;
  std::string csv = "unit;date;form\n";
  for (int i = 0; i < 100000; ++i) csv += "Enhet " + std::to_string(i % 40) + ";2016-0" + std::to_string(1 + i % 9) + "-15;groupMeeting\n";
  auto batch = ParseCsv(RecordType::kMaterial, csv);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  ASSERT_EQ(batch->size(), 100000u);
  ASSERT_TRUE(t->Apply(*batch).ok());
  EXPECT_EQ(t->Stats()->records_by_type[static_cast<int>(RecordType::kMaterial)], 100000u);
}

}  // namespace
}  // namespace samsync
