// The `samsync` binary end to end: real processes, real LMDB files.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace samsync {
namespace {

using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::TempDir;

class CliTest : public ::testing::Test {
 protected:
  CliTest() : env_({"SAMSYNC_STORE=" + dir_.Sub("store"), "SAMSYNC_KEY_FILE=" + dir_.Sub("store.key")}) {}

  CommandResult Run(std::vector<std::string> args, const std::string& input = "") {
    return RunSamsync(args, env_, input);
  }
  // Runs a command that must succeed and returns its stdout without the final newline.
  std::string Ok(std::vector<std::string> args, const std::string& input = "") {
    CommandResult r = Run(args, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
  nlohmann::json Json(std::vector<std::string> args) {
    args.push_back("--json");
    return nlohmann::json::parse(Ok(args));
  }
  void Init() { Ok({"init", "--district", "Skarpnäck"}); }
  std::string Write(const std::string& name, const std::string& contents) {
    std::ofstream(dir_.Sub(name), std::ios::binary) << contents;
    return dir_.Sub(name);
  }

  TempDir dir_;
  std::vector<std::string> env_;
};


// A store written before stored commits and clocks were packed (tests/fixtures/README.md)
// opens, verifies, and takes new commits and clocks beside its old ones.
TEST_F(CliTest, AStoreFromBeforeCommitsWerePackedReadsAndGrows) {
  namespace fs = std::filesystem;
  const fs::path fixture = fs::path(SAMSYNC_SOURCE_DIR) / "tests/fixtures/store-flat-commits";
  fs::create_directory(dir_.Sub("store"));
  fs::permissions(dir_.Sub("store"), fs::perms::owner_all);
  fs::copy_file(fixture / "data.mdb", dir_.Sub("store") + "/data.mdb");
  fs::copy_file(fixture / "store.key", dir_.Sub("store.key"));
  for (const std::string& file : {dir_.Sub("store") + "/data.mdb", dir_.Sub("store.key")}) {
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
  nlohmann::json before = Json({"verify"});
  EXPECT_EQ(before["ok"], true);
  EXPECT_EQ(before["commits"], 3);
  EXPECT_EQ(before["stateHash"], "4740721cf4d62a7b24bf7e3aaa2bd97d0f6d1f676506138cdd967c6e32a41e3e");
  EXPECT_NE(Ok({"list", "school"}).find("Ängsskolan"), std::string::npos);

  std::string school = Ok({"add", "school", "--name", "Nyskolan", "--principal", "municipal"});
  const std::string old_school = "01M94QQAYCN28EEQD9QCHEX0R1";  // Skogsskolan: its clock is stored flat
  Ok({"update", old_school, "--ppss-focus", "true"});
  nlohmann::json after = Json({"verify"});
  EXPECT_EQ(after["ok"], true);
  EXPECT_EQ(after["commits"], 5);
  EXPECT_EQ(after["records"], 4);
  EXPECT_EQ(Json({"show", old_school})["ppssFocus"], true);
  EXPECT_EQ(Json({"show", old_school})["name"], "Skogsskolan");
  nlohmann::json log = Json({"log"});
  ASSERT_EQ(log.size(), 5u);
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i]["seq"], i + 1);
  EXPECT_EQ(Json({"show", school})["name"], "Nyskolan");
}

TEST_F(CliTest, ADistrictRecordsSchoolsAChildAndAReportOfConcern) {
  Init();
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("store.key")));
  std::string school = Ok({"add", "school", "--name", "Skarpnäcksskolan", "--principal", "municipal", "--forms",
                           "compulsory,preschoolClass"});
  EXPECT_EQ(school.size(), 26u);
  std::string child = Ok({"person", "add", "--personnummer", "20080215-1233", "--name", "Anna Andersson"});
  std::string concern = Ok({"add", "concern", "--school-id", school, "--received-date", "2016-09-01", "--child-ref", child});
  Ok({"update", concern, "--feedback-date", "2016-09-12", "--feedback-form=meeting"});

  nlohmann::json shown = Json({"show", concern});
  EXPECT_EQ(shown["feedbackDate"], "2016-09-12");
  EXPECT_EQ(shown["feedbackForm"], "meeting");
  EXPECT_EQ(shown["district"], "Skarpnäck");

  nlohmann::json listed = Json({"list", "concern", "--school", school, "--term", "2016HT"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["id"], concern);
  EXPECT_EQ(Json({"list", "concern", "--term", "2016VT"}).size(), 0u);

  std::string table = Ok({"list", "school"});
  EXPECT_NE(table.find("Skarpnäcksskolan"), std::string::npos);
  EXPECT_NE(table.find("1 school"), std::string::npos);

  nlohmann::json person = Json({"person", "show", child});
  EXPECT_EQ(person["name"], "Anna Andersson");

  // A JSON object on stdin works as well as flags.
  std::string from_json = Ok({"add", "school", "-"}, R"({"name": "Kunskapsskolan", "principal": "independent"})");
  EXPECT_EQ(Json({"show", from_json})["principal"], "independent");

  Ok({"delete", from_json});
  EXPECT_EQ(Run({"show", from_json}).exit_code, 3);
}

TEST_F(CliTest, BadInputIsOneLineANonZeroExitAndNothingWritten) {
  Init();
  std::string school = Ok({"add", "school", "--name", "Ett", "--principal", "municipal"});
  ExpectOneLineError(Run({"add", "school", "--name", "Två"}), 2, "principal: is required");
  ExpectOneLineError(Run({"add", "school", "--name", "Två", "--principal", "private"}), 2,
                     "'private' is not one of: municipal, independent");
  ExpectOneLineError(Run({"add", "contact", "--school-id", school, "--social-worker", "AB", "--from-date",
                          "2016-08-01", "--informed-date", "2016-07-01"}),
                     2, "informedDate: is before fromDate");
  ExpectOneLineError(Run({"add", "contact", "--school-id", "01M83V3D7JKHD2A6GRD0W3RHJ7", "--social-worker", "AB",
                          "--from-date", "2016-08-01"}),
                     2, "schoolId: no school 01M83V3D7JKHD2A6GRD0W3RHJ7");
  ExpectOneLineError(Run({"add", "school", "--colour", "red"}), 2, "--colour");
  ExpectOneLineError(Run({"list", "pupils"}), 2, "unknown record type 'pupils'");
  ExpectOneLineError(Run({"list", "concern", "--term", "2016X"}), 2, "is not a term");
  ExpectOneLineError(Run({"person", "add", "--personnummer", "20080215-1234", "--name", "X"}), 2,
                     "check digit is wrong");
  ExpectOneLineError(Run({"update", school, "--nope", "1"}), 2, "a school has no field --nope");
  ExpectOneLineError(Run({"add", "school", "-"}, "{not json"), 2, "stdin does not hold valid JSON");
  ExpectOneLineError(Run({"frobnicate"}), 2, "frobnicate");
  ExpectOneLineError(Run({"init", "--district", "Gamla stan"}), 2, "unknown district 'Gamla stan'");
  EXPECT_EQ(Json({"list", "school"}).size(), 1u);
  EXPECT_EQ(Json({"list", "contact"}).size(), 0u);
}

TEST_F(CliTest, WrongPassphraseSaysSoWithExitCodeTwo) {
  std::vector<std::string> env = {"SAMSYNC_STORE=" + dir_.Sub("p"), "SAMSYNC_PASSPHRASE=korrekt häst batteri"};
  ASSERT_EQ(RunSamsync({"init", "--district", "Farsta"}, env).exit_code, 0);
  ASSERT_EQ(RunSamsync({"add", "school", "--name", "A", "--principal", "municipal"}, env).exit_code, 0);
  CommandResult wrong = RunSamsync({"list", "school"}, {"SAMSYNC_STORE=" + dir_.Sub("p"), "SAMSYNC_PASSPHRASE=fel"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_EQ(wrong.err, "samsync: wrong passphrase, or not a samsync store\n");
  // No terminal and no passphrase: a clear error rather than a hang.
  CommandResult none = RunSamsync({"list", "school"}, {"SAMSYNC_STORE=" + dir_.Sub("p")});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no passphrase"), std::string::npos) << none.err;
  CommandResult missing = RunSamsync({"list", "school"}, {"SAMSYNC_STORE=" + dir_.Sub("nowhere"), "SAMSYNC_PASSPHRASE=x"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("samsync init"), std::string::npos);
}

TEST_F(CliTest, CsvImportIsAllOrNothingAndExportOpensInExcel) {
  Init();
  std::string good = Write("schools.csv", "\xEF\xBB\xBFname;principal;forms\r\nÅrstaskolan;municipal;compulsory\r\n"
                                          "Vittra Södermalm;independent;compulsory,preschoolClass\r\n");
  EXPECT_EQ(Ok({"import", "school", good}), "imported 2 schools from " + good);
  std::string bad = Write("bad.csv", "name;principal\nTre;municipal\nFyra;kommunal\n");
  ExpectOneLineError(Run({"import", "school", bad}), 2, "row 3, column principal");
  EXPECT_EQ(Json({"list", "school"}).size(), 2u);

  CommandResult exported = Run({"export", "school", "--csv"});
  ASSERT_EQ(exported.exit_code, 0);
  EXPECT_EQ(exported.out.substr(0, 3), "\xEF\xBB\xBF");
  EXPECT_NE(exported.out.find("id;district;name;principal"), std::string::npos);
  EXPECT_NE(exported.out.find("Vittra Södermalm"), std::string::npos);
  std::string round = Write("round.csv", exported.out);
  EXPECT_EQ(Ok({"import", "school", round}), "imported 2 schools from " + round);
  EXPECT_EQ(Json({"list", "school"}).size(), 2u);  // the id column updated, nothing was added
}

TEST_F(CliTest, HelpListsTheFieldsOfEachType) {
  CommandResult help = Run({"add", "forum", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--invited-school-ids"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("steeringGroup"), std::string::npos);
  CommandResult top = Run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command : {"init", "add", "update", "delete", "show", "list", "import", "export", "person"}) {
    EXPECT_NE(top.out.find(command), std::string::npos) << command;
  }
}

TEST_F(CliTest, MdbDumpOfAStoreShowsNoPlaintext) {
  Init();
  std::string school = Ok({"add", "school", "--name", "Hemliga skolan", "--principal", "municipal"});
  std::string child = Ok({"person", "add", "--personnummer", "20080215-1233", "--name", "Anna Hemligsson"});
  Ok({"add", "concern", "--school-id", school, "--received-date", "2016-09-01", "--child-ref", child});
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/mdb_dump")) << "lmdb-utils is a dependency (scripts/deps)";
  std::string dump_path = dir_.Sub("dump.txt");
  std::string command = "/usr/bin/mdb_dump -a -p " + dir_.Sub("store") + " > " + dump_path;
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ifstream in(dump_path);
  std::string dump((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(dump.find("database=records"), std::string::npos);  // it really dumped the tables
  for (const char* secret : {"Hemliga", "Hemligsson", "20080215", "1233", "Skarpn", "Skarpn\\c3\\a4ck"}) {
    EXPECT_EQ(dump.find(secret), std::string::npos) << secret;
  }
}

}  // namespace
}  // namespace samsync
