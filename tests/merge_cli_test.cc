// Offline merge end to end: real `samsync` processes, one store folder per machine of
// one district, all enrolled in a city roster, carrying bundles between them the way
// a social worker carries a USB stick between two laptops and an office desktop.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ExpectOneLineError;
using testing::RunSamsync;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A refusal: a non-zero exit (the process did exit), one "samsync: " line on stderr,
// nothing on stdout.
void ExpectRefused(const CommandResult& r, const std::string& what) {
  EXPECT_GT(r.exit_code, 0) << what << ": " << r.out;
  EXPECT_EQ(r.out, "") << what;
  EXPECT_EQ(r.err.rfind("samsync: ", 0), 0u) << what << ": " << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << what << ": more than one line: " << r.err;
}

// Conflicts as listed, without the device names (each machine calls itself
// "(this device)").
nlohmann::json WithoutDeviceNames(nlohmann::json conflicts) {
  for (auto& conflict : conflicts) {
    for (auto& write : conflict["writes"]) write.erase("deviceName");
    if (conflict["deletedBy"].is_object()) conflict["deletedBy"].erase("deviceName");
  }
  return conflicts;
}

class MergeCliTest : public ::testing::Test {
 protected:
  // One machine: its store folder and key file.
  struct Machine {
    std::string name;
    std::vector<std::string> env;
  };

  MergeCliTest() {
    admin_ = {"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")};
    for (const char* name : {"A", "B", "C"}) {
      machines_.push_back({name, {"SAMSYNC_STORE=" + dir_.Sub(std::string("store-") + name),
                                  "SAMSYNC_KEY_FILE=" + dir_.Sub(std::string("store-") + name + ".key")}});
    }
  }

  // The city, and the district's three machines (A the office desktop, B and C
  // laptops) enrolled as writers of Farsta, each with the roster installed.
  void SetUp() override {
    ASSERT_EQ(RunSamsync({"city", "init", City(), "--kdf", "interactive"}, admin_).exit_code, 0);
    for (Machine& m : machines_) {
      Ok(m, {"init", "--district", "Farsta"});
      nlohmann::json me = Json(m, {"whoami"});
      keys_[m.name] = me["deviceKey"];
      CommandResult added = RunSamsync({"roster", "add", "--city", City(), "--device-key", me["deviceKey"],
                                        "--transport-key", me["transportKey"], "--district", "Farsta", "--role",
                                        "writer", "--label", "Farsta " + m.name},
                                       admin_);
      ASSERT_EQ(added.exit_code, 0) << added.err;
    }
    for (Machine& m : machines_) Ok(m, {"roster", "import", City() + "/roster.latest"});
  }

  std::string City() const { return dir_.Sub("city"); }
  Machine& A() { return machines_[0]; }
  Machine& B() { return machines_[1]; }
  Machine& C() { return machines_[2]; }

  CommandResult Run(const Machine& m, const std::vector<std::string>& args) { return RunSamsync(args, m.env); }
  // A command that must succeed; its stdout without the final newline.
  std::string Ok(const Machine& m, const std::vector<std::string>& args) {
    CommandResult r = Run(m, args);
    EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
    EXPECT_EQ(r.err, "") << m.name << " " << args[0];
    if (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
  nlohmann::json Json(const Machine& m, std::vector<std::string> args) {
    args.push_back("--json");
    std::string out = Ok(m, args);
    auto parsed = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << out;
    return parsed;
  }
  nlohmann::json Status(const Machine& m) { return Json(m, {"status"}); }

  // A bundle file name not used before in this test.
  std::string NewBundle() { return dir_.Sub("bundle-" + std::to_string(++bundles_)); }
  // Exports from `from` everything `to` lacks, handing over `to`'s status as a file
  // (--for), and imports it into `to`. Returns the import's report.
  nlohmann::json Carry(const Machine& from, const Machine& to) {
    std::string status_file = dir_.Sub(to.name + "-status-" + std::to_string(bundles_) + ".json");
    Spit(status_file, Ok(to, {"status", "--json"}));
    std::string bundle = NewBundle();
    Json(from, {"bundle", "export", bundle, "--for", status_file});
    return Json(to, {"bundle", "import", bundle});
  }

  std::string AddSchool(const Machine& m, const std::string& name) {
    return Ok(m, {"add", "school", "--name", name, "--principal", "municipal", "--forms", "compulsory"});
  }

  TempDir dir_;
  std::vector<std::string> admin_;
  std::vector<Machine> machines_;
  std::map<std::string, std::string> keys_;  // machine name → device key (hex)
  int bundles_ = 0;
};

TEST_F(MergeCliTest, TwoMachinesEditOneFieldOfflineSeeTheConflictSettleItAndConverge) {
  std::string school = AddSchool(A(), "Farstaskolan");
  std::string first = NewBundle();
  nlohmann::json exported = Json(A(), {"bundle", "export", first});
  EXPECT_EQ(exported["commits"], 1);
  EXPECT_EQ(exported["ops"], 1);
  EXPECT_EQ(exported["bytes"].get<uint64_t>(), fs::file_size(first));
  EXPECT_EQ(exported["checkpoint"], keys_["A"] + ":1");
  nlohmann::json imported = Json(B(), {"bundle", "import", first});
  EXPECT_EQ(imported["received"], 1);
  EXPECT_EQ(imported["applied"], 1);
  EXPECT_EQ(imported["conflicts"], 0);
  EXPECT_EQ(Json(B(), {"show", school})["name"], "Farstaskolan");

  // Offline, each machine renames the school and changes its forms.
  Ok(A(), {"update", school, "--name", "Farstaskolan A", "--forms", "compulsory,preschoolClass"});
  Ok(B(), {"update", school, "--name", "Farstaskolan B", "--forms", "preschool"});

  // A → B: A is handed B's `status --json` on the stick, and sends only what B lacks.
  std::string b_status = dir_.Sub("b-status.json");
  Spit(b_status, Ok(B(), {"status", "--json"}));
  std::string to_b = NewBundle();
  exported = Json(A(), {"bundle", "export", to_b, "--for", b_status});
  EXPECT_EQ(exported["commits"], 1) << exported.dump();
  imported = Json(B(), {"bundle", "import", to_b});
  EXPECT_EQ(imported["applied"], 1);
  EXPECT_EQ(imported["conflicts"], 1);

  // B → A: B is given the version vector A's status prints.
  std::string a_vector = Status(A())["versionVector"];
  std::string to_a = NewBundle();
  exported = Json(B(), {"bundle", "export", to_a, "--since", a_vector});
  EXPECT_EQ(exported["commits"], 1) << exported.dump();
  std::string checkpoint = exported["checkpoint"];  // what A holds once it imports to_a
  imported = Json(A(), {"bundle", "import", to_a});
  EXPECT_EQ(imported["applied"], 1);
  EXPECT_EQ(imported["conflicts"], 1);

  nlohmann::json a = Status(A()), b = Status(B());
  EXPECT_EQ(a["stateHash"], b["stateHash"]);
  EXPECT_EQ(a["stateHash"].get<std::string>().size(), 64u);
  EXPECT_EQ(a["heads"], b["heads"]);
  EXPECT_EQ(a["heads"][keys_["A"]], 2);
  EXPECT_EQ(a["heads"][keys_["B"]], 1);
  EXPECT_EQ(a["conflicts"], 1);
  EXPECT_EQ(a["records"], 1);
  EXPECT_EQ(a["commits"], 3);
  EXPECT_EQ(a["waiting"], 0);
  EXPECT_EQ(a["versionVector"], checkpoint);
  std::string text = Ok(A(), {"status"});
  EXPECT_NE(text.find("state hash  " + a["stateHash"].get<std::string>()), std::string::npos) << text;
  EXPECT_NE(text.find("Farsta A (this device)"), std::string::npos) << text;
  EXPECT_NE(text.find("Farsta B"), std::string::npos) << text;

  // Both list both values of both fields; both show the same winner.
  std::vector<nlohmann::json> lists;
  for (Machine* m : {&A(), &B()}) {
    nlohmann::json conflicts = Json(*m, {"conflicts"});
    ASSERT_EQ(conflicts.size(), 2u) << conflicts.dump();
    nlohmann::json name = conflicts[0]["field"] == "name" ? conflicts[0] : conflicts[1];
    EXPECT_EQ(name["type"], "school");
    EXPECT_EQ(name["id"], school);
    EXPECT_EQ(name["deleted"], false);
    EXPECT_EQ(name["deletedBy"], nullptr);
    ASSERT_EQ(name["writes"].size(), 2u);
    std::set<std::string> values = {name["writes"][0]["value"], name["writes"][1]["value"]};
    EXPECT_EQ(values, (std::set<std::string>{"Farstaskolan A", "Farstaskolan B"}));
    std::set<std::string> devices = {name["writes"][0]["device"], name["writes"][1]["device"]};
    EXPECT_EQ(devices, (std::set<std::string>{keys_["A"], keys_["B"]}));
    EXPECT_EQ(name["shown"], name["writes"][0]["value"]);
    EXPECT_EQ(name["shown"], Json(*m, {"show", school})["name"]);
    EXPECT_EQ(name["writes"][0]["commit"].get<std::string>().size(), 64u);
    lists.push_back(WithoutDeviceNames(conflicts));
  }
  EXPECT_EQ(lists[0], lists[1]) << "A and B list the same conflicts";
  std::string listed = Ok(B(), {"conflicts"});
  EXPECT_NE(listed.find("field name has 2 concurrent values"), std::string::npos) << listed;
  EXPECT_NE(listed.find("Farstaskolan A"), std::string::npos) << listed;
  EXPECT_NE(listed.find("Farstaskolan B"), std::string::npos) << listed;
  EXPECT_NE(listed.find("samsync resolve ID FIELD VALUE"), std::string::npos) << listed;

  // The follow-up rests on them, and says so.
  EXPECT_EQ(Json(B(), {"report"})["unresolvedConflicts"], 2);
  EXPECT_NE(Ok(B(), {"report"}).find("Rests on 2 unresolved conflicts: see samsync conflicts"), std::string::npos);

  // Mistakes are one line, exit 2, and change nothing.
  nlohmann::json before = Status(B());
  ExpectOneLineError(Run(B(), {"resolve", school, "principal", "independent"}), 2,
                     "record " + school + " has no conflict on field principal; see samsync conflicts");
  ExpectOneLineError(Run(B(), {"resolve", school, "nmae", "X"}), 2, "has no field 'nmae' (fields: name, principal");
  ExpectOneLineError(Run(B(), {"resolve", school, "forms", "kindergarten"}), 2, "forms");
  ExpectOneLineError(Run(B(), {"resolve", school, "name"}), 2, "--keep");
  ExpectOneLineError(Run(B(), {"resolve", school, "name", "X", "--keep"}), 2, "not both");
  ExpectOneLineError(Run(B(), {"resolve", school, "--delete"}), 2, "has no conflict with a delete");
  ExpectOneLineError(Run(B(), {"resolve", "01M83V3D5CWHZ1P416TVF4CJY8", "name", "X"}), 3, "no record");
  EXPECT_EQ(Status(B()), before);

  // B settles both: one value typed, one kept.
  std::string settled = Ok(B(), {"resolve", school, "name", "Farstaskolan F-9"});
  EXPECT_NE(settled.find("settled name of school " + school + ": Farstaskolan F-9"), std::string::npos) << settled;
  EXPECT_NE(settled.find("commit "), std::string::npos) << settled;
  std::string shown_forms = Json(B(), {"show", school})["forms"].dump();
  nlohmann::json kept = Json(B(), {"resolve", school, "forms", "--keep"});
  EXPECT_EQ(kept["field"], "forms");
  EXPECT_EQ(kept["commit"].get<std::string>().size(), 64u);
  EXPECT_EQ(Json(B(), {"show", school})["forms"].dump(), shown_forms);
  EXPECT_EQ(Json(B(), {"conflicts"}), nlohmann::json::array());

  // B → A with the checkpoint of the last export to A.
  std::string settle_bundle = NewBundle();
  exported = Json(B(), {"bundle", "export", settle_bundle, "--since", checkpoint});
  EXPECT_EQ(exported["commits"], 2);
  imported = Json(A(), {"bundle", "import", settle_bundle});
  EXPECT_EQ(imported["applied"], 2);
  EXPECT_EQ(imported["conflicts"], 0);
  for (Machine* m : {&A(), &B()}) {
    EXPECT_EQ(Ok(*m, {"conflicts"}), "no unresolved conflicts");
    EXPECT_EQ(Json(*m, {"report"})["unresolvedConflicts"], 0);
    EXPECT_EQ(Json(*m, {"show", school})["name"], "Farstaskolan F-9");
  }
  a = Status(A());
  EXPECT_EQ(a, Status(B()));
  EXPECT_EQ(a["conflicts"], 0);

  // The same bundle again, and the first one again: nothing changes.
  imported = Json(A(), {"bundle", "import", settle_bundle});
  EXPECT_EQ(imported["received"], 2);
  EXPECT_EQ(imported["applied"], 0);
  EXPECT_EQ(imported["alreadyHeld"], 2);
  EXPECT_EQ(Status(A()), a);
  imported = Json(B(), {"bundle", "import", first});
  EXPECT_EQ(imported["applied"], 0);
  EXPECT_EQ(imported["alreadyHeld"], 1);
  EXPECT_EQ(Status(B()), a);
}

TEST_F(MergeCliTest, BundlesImportedInReverseOrderWaitThenConverge) {
  std::string school = AddSchool(A(), "Fagersjöskolan");
  std::string earlier = NewBundle();
  nlohmann::json exported = Json(A(), {"bundle", "export", earlier});
  std::string checkpoint = exported["checkpoint"];
  AddSchool(A(), "Sköndalsskolan");
  Ok(A(), {"update", school, "--ppss-focus", "true"});
  std::string later = NewBundle();
  exported = Json(A(), {"bundle", "export", later, "--since", checkpoint});
  EXPECT_EQ(exported["commits"], 2);

  // C gets the later bundle first: its commits follow one C lacks, so they wait.
  nlohmann::json imported = Json(C(), {"bundle", "import", later});
  EXPECT_EQ(imported["received"], 2);
  EXPECT_EQ(imported["applied"], 0);
  EXPECT_EQ(imported["waiting"], 2);
  nlohmann::json c = Status(C());
  EXPECT_EQ(c["waiting"], 2);
  EXPECT_EQ(c["records"], 0);
  EXPECT_EQ(c["commits"], 0);
  EXPECT_NE(Ok(C(), {"status"}).find("2 commits wait for earlier ones"), std::string::npos);

  imported = Json(C(), {"bundle", "import", earlier});
  EXPECT_EQ(imported["received"], 1);
  EXPECT_EQ(imported["applied"], 3);
  EXPECT_EQ(imported["waiting"], 0);
  c = Status(C());
  nlohmann::json a = Status(A());
  EXPECT_EQ(c["stateHash"], a["stateHash"]);
  EXPECT_EQ(c, a);
  EXPECT_EQ(c["records"], 2);
  EXPECT_EQ(Json(C(), {"show", school})["ppssFocus"], true);
}

TEST_F(MergeCliTest, ACutOrAlteredBundleIsRefusedAndChangesNothing) {
  std::string school = AddSchool(A(), "Hökarängsskolan");
  Carry(A(), B());
  Ok(A(), {"update", school, "--name", "Hökarängsskolan F-6"});
  AddSchool(A(), "Farsta strands skola");
  std::string bundle = NewBundle();
  Json(A(), {"bundle", "export", bundle, "--for", [&] {
               std::string f = dir_.Sub("b-status.json");
               Spit(f, Ok(B(), {"status", "--json"}));
               return f;
             }()});
  std::string bytes = Slurp(bundle);
  ASSERT_GT(bytes.size(), 500u);
  ASSERT_LT(bytes.size(), 4096u);
  nlohmann::json before = Status(B());
  std::string copy = dir_.Sub("damaged");

  // Cut at every length (one process run each: about 15 s for this ~1.5 KB bundle).
  for (size_t length = 0; length < bytes.size(); ++length) {
    Spit(copy, bytes.substr(0, length));
    ExpectRefused(Run(B(), {"bundle", "import", copy}), "cut at " + std::to_string(length));
  }

  // One byte flipped: a byte in each 16, at a position that moves, and the last.
  for (size_t at = 0; at < bytes.size(); at += 16 + at % 3) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x20);
    Spit(copy, flipped);
    ExpectRefused(Run(B(), {"bundle", "import", copy}), "byte flipped at " + std::to_string(at));
  }
  std::string flipped = bytes;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x01);
  Spit(copy, flipped);
  CommandResult last = Run(B(), {"bundle", "import", copy});
  ExpectOneLineError(last, 4, "altered");

  EXPECT_EQ(Status(B()), before);
  // The bundle itself was good all along.
  nlohmann::json imported = Json(B(), {"bundle", "import", bundle});
  EXPECT_EQ(imported["applied"], 2);
  EXPECT_EQ(Status(B()), Status(A()));
}

TEST_F(MergeCliTest, ADeleteRacingAnEditIsListedWithTheDiscardedEditAndSettledByDeletingAgain) {
  std::string school = AddSchool(A(), "Larsbodaskolan");
  AddSchool(A(), "Farstaskolan");
  Carry(A(), B());
  Ok(A(), {"delete", school});
  Ok(B(), {"update", school, "--name", "Larsbodaskolan F-9", "--ppss-focus", "true"});
  Carry(A(), B());
  Carry(B(), A());
  EXPECT_EQ(Status(A())["stateHash"], Status(B())["stateHash"]);

  for (Machine* m : {&A(), &B()}) {
    ExpectOneLineError(Run(*m, {"show", school}), 3, "no record " + school);
    nlohmann::json conflicts = Json(*m, {"conflicts"});
    ASSERT_EQ(conflicts.size(), 1u) << conflicts.dump();
    const nlohmann::json& c = conflicts[0];
    EXPECT_EQ(c["type"], "school");
    EXPECT_EQ(c["id"], school);
    EXPECT_EQ(c["deleted"], true);
    EXPECT_EQ(c["field"], nullptr);
    EXPECT_EQ(c["deletedBy"]["device"], keys_["A"]);
    ASSERT_EQ(c["writes"].size(), 1u);
    EXPECT_EQ(c["writes"][0]["device"], keys_["B"]);
    EXPECT_EQ(c["writes"][0]["fields"]["name"], "Larsbodaskolan F-9");
    EXPECT_EQ(c["writes"][0]["fields"]["ppssFocus"], "true");
    EXPECT_EQ(Json(*m, {"report"})["unresolvedConflicts"], 1);
  }
  std::string listed = Ok(B(), {"conflicts"});
  EXPECT_NE(listed.find("school " + school + " (Larsbodaskolan F-9): deleted by Farsta A at "), std::string::npos)
      << listed;
  EXPECT_NE(listed.find("edits it discarded:"), std::string::npos) << listed;
  EXPECT_NE(listed.find("name = Larsbodaskolan F-9, ppssFocus = true"), std::string::npos) << listed;
  EXPECT_NE(listed.find("samsync resolve ID --delete"), std::string::npos) << listed;

  ExpectOneLineError(Run(B(), {"resolve", school, "name", "X"}), 2, "was deleted; settle with samsync resolve");
  std::string resolved = Ok(B(), {"resolve", school, "--delete"});
  EXPECT_NE(resolved.find("deleted school " + school + " again"), std::string::npos) << resolved;
  EXPECT_EQ(Ok(B(), {"conflicts"}), "no unresolved conflicts");
  ExpectOneLineError(Run(B(), {"resolve", school, "--delete"}), 2, "has no conflict with a delete");
  Carry(B(), A());
  EXPECT_EQ(Ok(A(), {"conflicts"}), "no unresolved conflicts");
  EXPECT_EQ(Json(A(), {"report"})["unresolvedConflicts"], 0);
  EXPECT_EQ(Status(A()), Status(B()));
}

TEST_F(MergeCliTest, ARecordOfASchoolDeletedOnAnotherMachineStillListsShowsAndReports) {
  std::string gone = AddSchool(A(), "Nedlagda skolan");
  std::string kept = AddSchool(A(), "Farstaskolan");
  Carry(A(), B());
  Ok(A(), {"delete", gone});  // nothing refers to it on A
  std::string child = Ok(B(), {"person", "add", "--personnummer", "20080215-1233", "--name", "Anna"});
  std::string concern = Ok(B(), {"add", "concern", "--school-id", gone, "--received-date", "2016-09-01",
                                 "--child-ref", child});
  Ok(B(), {"add", "concern", "--school-id", kept, "--received-date", "2016-09-02", "--child-ref", child});
  Carry(A(), B());
  Carry(B(), A());
  EXPECT_EQ(Status(A()), Status(B()));

  for (Machine* m : {&A(), &B()}) {
    std::string table = Ok(*m, {"list", "concern"});
    EXPECT_NE(table.find("(deleted school)"), std::string::npos) << table;
    EXPECT_NE(table.find("Farstaskolan"), std::string::npos) << table;
    EXPECT_NE(table.find("2 concerns"), std::string::npos) << table;
    std::string shown = Ok(*m, {"show", concern});
    EXPECT_NE(shown.find("schoolId      (deleted school)"), std::string::npos) << shown;
    EXPECT_EQ(Json(*m, {"show", concern})["schoolId"], gone);  // programs get the id
    EXPECT_EQ(Json(*m, {"list", "concern", "--school", gone}).size(), 1u);
    EXPECT_NE(Ok(*m, {"report", "--term", "2016HT"}).find("Follow-up Farsta 2016HT"), std::string::npos);
    nlohmann::json report = Json(*m, {"report", "--term", "2016HT"});
    EXPECT_EQ(report["unresolvedConflicts"], 0);
  }
}

TEST_F(MergeCliTest, ABundleFromADeviceNotInTheRosterIsRefusedAsACheckFailure) {
  Machine stranger{"D", {"SAMSYNC_STORE=" + dir_.Sub("store-D"), "SAMSYNC_KEY_FILE=" + dir_.Sub("store-D.key")}};
  Ok(stranger, {"init", "--district", "Farsta"});
  AddSchool(stranger, "Okänd skola");
  std::string bundle = NewBundle();
  Json(stranger, {"bundle", "export", bundle});
  nlohmann::json before = Status(B());
  ExpectOneLineError(Run(B(), {"bundle", "import", bundle}), 1, "not");
  EXPECT_EQ(Status(B()), before);

  // Another district's bundle, and a store without a roster, are refused too.
  Machine bromma{"E", {"SAMSYNC_STORE=" + dir_.Sub("store-E"), "SAMSYNC_KEY_FILE=" + dir_.Sub("store-E.key")}};
  Ok(bromma, {"init", "--district", "Bromma"});
  AddSchool(A(), "Farstaskolan");
  std::string farsta = NewBundle();
  Json(A(), {"bundle", "export", farsta});
  ExpectOneLineError(Run(bromma, {"bundle", "import", farsta}), 2, "the bundle is of Farsta; this store holds Bromma");
  ExpectOneLineError(Run(stranger, {"bundle", "import", farsta}), 2, "samsync roster import");
}

TEST_F(MergeCliTest, BundleMistakesAreOneLineAndWriteNothing) {
  AddSchool(A(), "Farstaskolan");
  std::string bundle = NewBundle();
  Json(A(), {"bundle", "export", bundle});
  std::string before = Slurp(bundle);
  ExpectOneLineError(Run(A(), {"bundle", "export", bundle}), 2, "already exists");
  EXPECT_EQ(Slurp(bundle), before);
  std::string other = NewBundle();
  ExpectOneLineError(Run(A(), {"bundle", "export", other, "--since", "abc:1"}), 2, "--since");
  std::string not_status = dir_.Sub("not-status.json");
  Spit(not_status, "{\"records\": 3}");
  ExpectOneLineError(Run(A(), {"bundle", "export", other, "--for", not_status}), 2, "\"heads\"");
  ExpectOneLineError(Run(A(), {"bundle", "export", other, "--for", dir_.Sub("nowhere.json")}), 3, "nowhere.json");
  ExpectOneLineError(Run(A(), {"bundle", "export", other, "--for", not_status, "--since", ""}), 2, "not both");
  EXPECT_FALSE(fs::exists(other));
  ExpectOneLineError(Run(B(), {"bundle", "import", dir_.Sub("nowhere")}), 3, "nowhere");

  // --for also takes plain version vector text, and an empty --since means everything.
  std::string vector_file = dir_.Sub("vector.txt");
  Spit(vector_file, Status(A())["versionVector"].get<std::string>() + "\n");
  EXPECT_EQ(Json(A(), {"bundle", "export", other, "--for", vector_file})["commits"], 0);
  EXPECT_EQ(Json(A(), {"bundle", "export", NewBundle(), "--since", ""})["commits"], 1);
}

TEST_F(MergeCliTest, EveryNewCommandHasHelp) {
  for (std::vector<std::string> command : std::vector<std::vector<std::string>>{
           {"status"}, {"conflicts"}, {"resolve"}, {"bundle"}, {"bundle", "export"}, {"bundle", "import"}}) {
    command.push_back("--help");
    CommandResult r = Run(A(), command);
    EXPECT_EQ(r.exit_code, 0) << command[0];
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << command[0] << ": " << r.out;
  }
  std::string help = Run(A(), {"resolve", "--help"}).out;
  EXPECT_NE(help.find("--delete"), std::string::npos) << help;
  EXPECT_NE(help.find("--keep"), std::string::npos) << help;
  help = Run(A(), {"bundle", "export", "--help"}).out;
  EXPECT_NE(help.find("--since"), std::string::npos) << help;
  EXPECT_NE(help.find("--for"), std::string::npos) << help;
}

}  // namespace
}  // namespace samsync
