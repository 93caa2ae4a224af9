// The `samsync` binary end to end: real processes, real LMDB files.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "samsync/schema/local.capnp.h"
#include "test_support.h"

namespace samsync {
namespace {

using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RawLmdb;
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


// Stores written by earlier versions (tests/fixtures/README.md): each opens, verifies,
// and takes new commits and clocks beside its old ones. Both fixtures hold two schools
// and a contact person in three commits.
struct OldStore {
  const char* folder;
  const char* state_hash;
  const char* old_school;  // Skogsskolan, whose clock is stored the old way
};

void CopyFixture(const OldStore& old, const std::string& store, const std::string& key) {
  namespace fs = std::filesystem;
  const fs::path fixture = fs::path(SAMSYNC_SOURCE_DIR) / "tests/fixtures" / old.folder;
  fs::create_directory(store);
  fs::permissions(store, fs::perms::owner_all);
  fs::copy_file(fixture / "data.mdb", store + "/data.mdb");
  fs::copy_file(fixture / "store.key", key);
  for (const std::string& file : {store + "/data.mdb", key}) {
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
}

// The format version in the header of the store in folder `store`, read raw.
uint32_t StoredFormatVersion(const std::string& store) {
  std::string bytes = RawLmdb(store).Get("meta", "header");
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
  capnp::FlatArrayMessageReader reader(words);
  return reader.getRoot<schema::StoreHeader>().getFormatVersion();
}

// Rewrites that version, the rest of the header unchanged.
void SetStoredFormatVersion(const std::string& store, uint32_t version) {
  RawLmdb(store).EditValue("meta", "header", [&](std::string& bytes) {
    auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
    capnp::FlatArrayMessageReader reader(words);
    capnp::MallocMessageBuilder message;
    message.setRoot(reader.getRoot<schema::StoreHeader>());
    message.getRoot<schema::StoreHeader>().setFormatVersion(version);
    auto flat = capnp::messageToFlatArray(message);
    bytes.assign(reinterpret_cast<const char*>(flat.asBytes().begin()), flat.asBytes().size());
  });
}

class OldStoreTest : public CliTest, public ::testing::WithParamInterface<OldStore> {};

TEST_P(OldStoreTest, ReadsAndGrows) {
  const OldStore& old = GetParam();
  CopyFixture(old, dir_.Sub("store"), dir_.Sub("store.key"));
  nlohmann::json before = Json({"verify"});
  EXPECT_EQ(before["ok"], true);
  EXPECT_EQ(before["commits"], 3);
  EXPECT_EQ(before["stateHash"], old.state_hash);
  EXPECT_NE(Ok({"list", "school"}).find("Ängsskolan"), std::string::npos);
  EXPECT_EQ(Json({"log"}).size(), 3u);  // every old commit opens

  // Written to, it is marked with this format's version: an older samsync refuses it
  // by its version rather than taking its compressed commits for altered ones.
  std::string school = Ok({"add", "school", "--name", "Nyskolan", "--principal", "municipal"});
  EXPECT_EQ(StoredFormatVersion(dir_.Sub("store")), 2u);
  Ok({"update", old.old_school, "--ppss-focus", "true"});
  nlohmann::json after = Json({"verify"});
  EXPECT_EQ(after["ok"], true);
  EXPECT_EQ(after["commits"], 5);
  EXPECT_EQ(after["records"], 4);
  EXPECT_EQ(Json({"show", old.old_school})["ppssFocus"], true);
  EXPECT_EQ(Json({"show", old.old_school})["name"], "Skogsskolan");
  nlohmann::json log = Json({"log"});
  ASSERT_EQ(log.size(), 5u);
  for (size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i]["seq"], i + 1);
  EXPECT_EQ(Json({"show", school})["name"], "Nyskolan");
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, OldStoreTest,
    ::testing::Values(
        // Before stored commits and clocks were packed: flat values.
        OldStore{"store-flat-commits", "4740721cf4d62a7b24bf7e3aaa2bd97d0f6d1f676506138cdd967c6e32a41e3e",
                 "01M94QQAYCN28EEQD9QCHEX0R1"},
        // Before stored commits were compressed: packed commits and clocks.
        OldStore{"store-packed-commits", "0ab88d38853f3f89b754908c8a4cc2aad56ade3f17978b165c73b0c29ed1b4d2",
                 "01M95P56K46GCDS4MY67WCQQN2"}),
    [](const ::testing::TestParamInfo<OldStore>& fixture) {
      return std::string(fixture.param.folder) == "store-flat-commits" ? "FlatCommits" : "PackedCommits";
    });

TEST_F(CliTest, AStoreOfANewerFormatIsRefusedByItsVersionAndLeftAlone) {
  Init();
  Ok({"add", "school", "--name", "Ett", "--principal", "municipal"});
  EXPECT_EQ(StoredFormatVersion(dir_.Sub("store")), 2u);
  SetStoredFormatVersion(dir_.Sub("store"), 3);
  std::ifstream file(dir_.Sub("store") + "/data.mdb", std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (std::vector<std::string> args : {std::vector<std::string>{"list", "school"},
                                        std::vector<std::string>{"add", "school", "--name", "Två", "--principal", "municipal"}}) {
    CommandResult refused = Run(args);
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("store format version 3 is not one this samsync reads (1 to 2): a newer samsync wrote it"),
              std::string::npos)
        << refused.err;
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  }
  std::ifstream again(dir_.Sub("store") + "/data.mdb", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()), before);
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
