// audit verify, audit compare: the auditor's offline checks of an audit bundle (what
// `audit fetch`, cmd_audit.cc, downloads) and of two checkpoints of the city's log.
//
// Exit codes: 0 everything holds (verify) / consistent (compare); 1 a check fails /
// split view; 2 bad input (no such file, not an audit bundle, no trust anchor).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli.h"
#include "samsync/audit.h"
#include "samsync/note.h"
#include "samsync/witness.h"

namespace samsync::cli {
namespace {

// As Fail, but a missing file is bad input here (exit 2), like any other.
int AuditFail(const Status& status) {
  int code = Fail(status);
  return status.code() == Code::kNotFound ? kExitInvalid : code;
}

// The trust anchor: --root-key, else the root key of the roster installed in the
// local store (when --store names one that opens).
Result<PublicKey> ResolveRootKey(Globals& g, const std::string& given, std::optional<Roster>* installed = nullptr) {
  if (!given.empty()) return Bytes32::FromHex(given, "--root-key");
  Status why = Status::Invalid(
      "no trust anchor: pass --root-key HEX (the city's root key, as `samsync city init` printed it), or --store "
      "with a store that has the city's roster installed");
  if (g.store_dir.empty()) return why;
  auto store = OpenStore(g);
  if (!store.ok()) return store.status().WithContext(why.message() + "; the store did not open");
  auto roster = (*store)->InstalledRoster();
  if (!roster.ok()) return roster.status();
  if (!*roster) return why;
  if (installed != nullptr) *installed = **roster;
  return (*roster)->root_key();
}

std::string Seconds(double s) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(s < 10 ? 2 : 1) << s;
  return out.str();
}

uint64_t Rate(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<uint64_t>(static_cast<double>(n) / seconds) : 0;
}

// "12 345 678": figures people read.
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

// A progress line on stderr when it is a terminal, at most a few times a second.
class ProgressLine {
 public:
  ProgressLine() : terminal_(::isatty(STDERR_FILENO) == 1) {}
  void Show(const AuditProgress& p) {
    if (!terminal_) return;
    auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(250)) return;
    shown_ = true;
    last_ = now;
    std::cerr << "\rchecked " << Grouped(p.commits) << (p.tree_size != 0 ? " of " + Grouped(p.tree_size) : "")
              << " commits ("
              << Grouped(Rate(p.ops, p.elapsed_seconds)) << " ops/s)\x1b[K" << std::flush;
  }
  void Clear() {
    if (terminal_ && shown_) std::cerr << "\r\x1b[K" << std::flush;
  }

 private:
  bool terminal_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_;
};

nlohmann::json ReportJson(const AuditReport& r) {
  nlohmann::json checks = nlohmann::json::array();
  for (const AuditCheck& c : r.checks) {
    checks.push_back({{"name", AuditCheckName(c.id)}, {"outcome", AuditOutcomeName(c.outcome)}, {"detail", c.detail}});
  }
  nlohmann::json cosigners = nlohmann::json::array();
  for (const AuditCosigner& c : r.cosigners) {
    cosigners.push_back({{"key", c.key.ToHex()},
                         {"label", c.label},
                         {"district", c.district},
                         {"role", RoleName(c.role)},
                         {"timestamp", c.timestamp}});
  }
  nlohmann::json failure = nullptr;
  if (r.failure) {
    const AuditFailure& f = *r.failure;
    failure = {{"check", AuditCheckName(f.check)},
               {"leaf", f.leaf ? nlohmann::json(*f.leaf) : nlohmann::json(nullptr)},
               {"commit", f.commit ? nlohmann::json(f.commit->ToHex()) : nlohmann::json(nullptr)},
               {"author", f.author ? nlohmann::json(f.author->ToHex()) : nlohmann::json(nullptr)},
               {"seq", f.seq != 0 ? nlohmann::json(f.seq) : nlohmann::json(nullptr)},
               {"authorName", f.author_name},
               {"reason", f.reason},
               {"description", f.Describe()}};
  }
  auto hash = [](const std::optional<Hash>& h) { return h ? nlohmann::json(h->ToHex()) : nlohmann::json(nullptr); };
  return {{"file", r.file},
          {"ok", r.ok()},
          {"server", r.server},
          {"fetchedMs", r.fetched_ms},
          {"city", r.city},
          {"origin", r.origin},
          {"rootKey", r.root_key.ToHex()},
          {"rosters", r.rosters},
          {"rosterVersion", r.roster_version},
          {"treeSize", r.tree_size},
          {"root", r.root.ToHex()},
          {"computedRoot", r.computed_root.ToHex()},
          {"logKey", r.log_key_label},
          {"commits", r.commits},
          {"ops", r.ops},
          {"stateHash", hash(r.state_hash)},
          {"statedStateHash", hash(r.stated_hash)},
          {"cosigners", cosigners},
          {"writerDistricts", r.writer_districts},
          {"otherSignatureLines", r.other_signature_lines},
          {"checks", checks},
          {"failure", failure},
          {"bytes", r.bytes},
          {"elapsedSeconds", r.elapsed_seconds},
          {"commitsPerSecond", Rate(r.commits, r.elapsed_seconds)},
          {"opsPerSecond", Rate(r.ops, r.elapsed_seconds)}};
}

void PrintReport(const AuditReport& r) {
  std::cout << "audit of " << r.file;
  if (!r.server.empty()) std::cout << ", fetched from " << r.server << " at " << FormatTime(r.fetched_ms);
  std::cout << " (as the bundle says)\n";
  if (!r.origin.empty()) {
    std::cout << "  log          " << r.origin << ": " << Grouped(r.tree_size) << " entries, root " << r.root.ToHex()
              << "\n";
  }
  if (r.roster_version != 0) {
    std::cout << "  trust        the city's root key " << r.root_key.ToHex() << "\n"
              << "               roster version " << r.roster_version << " (" << r.rosters << " in the bundle)\n";
  }
  std::cout << "  read         " << Grouped(r.commits) << " commits, " << Grouped(r.ops) << " ops, "
            << Grouped(r.bytes) << " bytes\n\n";

  std::vector<std::vector<std::string>> rows;
  for (const AuditCheck& c : r.checks) {
    std::string outcome = c.outcome == AuditOutcome::kFailed ? "FAILED" : std::string(AuditOutcomeName(c.outcome));
    rows.push_back({std::string(AuditCheckName(c.id)), outcome, c.detail});
  }
  PrintTable({"check", "outcome", "what was checked"}, rows, "  ");

  if (!r.origin.empty()) {
    std::cout << "\n";
    std::map<std::string, std::vector<const AuditCosigner*>> by_district;
    for (const AuditCosigner& c : r.cosigners) {
      by_district[c.district.empty() ? "(" + std::string(RoleName(c.role)) + ")" : c.district].push_back(&c);
    }
    std::string lead = "  cosigned by  ";
    if (by_district.empty()) {
      std::cout << lead << "no witness\n";
      lead = "               ";
    }
    for (const auto& [district, cosigners] : by_district) {
      std::cout << lead << district << ": ";
      for (size_t i = 0; i < cosigners.size(); ++i) {
        const AuditCosigner& c = *cosigners[i];
        std::cout << (i > 0 ? ", " : "") << (c.label.empty() ? c.key.ToHex().substr(0, 16) : c.label) << " ("
                  << FormatTime(static_cast<int64_t>(c.timestamp) * 1000, false) << ")";
      }
      std::cout << "\n";
      lead = "               ";
    }
    std::vector<std::string> missing;
    for (const std::string& d : r.writer_districts) {
      if (!by_district.contains(d)) missing.push_back(d);
    }
    if (!missing.empty()) {
      std::cout << lead << "not by: ";
      for (size_t i = 0; i < missing.size(); ++i) std::cout << (i > 0 ? ", " : "") << missing[i];
      std::cout << "\n";
    }
  }
  std::cout << "  elapsed      " << Seconds(r.elapsed_seconds) << " s: " << Grouped(Rate(r.commits, r.elapsed_seconds))
            << " commits/s, " << Grouped(Rate(r.ops, r.elapsed_seconds)) << " ops/s\n";
  if (r.ok()) {
    std::cout << "audit verify: ok\n";
  } else {
    std::cout << "audit verify: FAILED — " << r.failure->Describe() << "\n";
  }
}

int RunVerify(Globals& g, const std::string& file, const std::string& root_key, const std::string& temp_dir) {
  auto root = ResolveRootKey(g, root_key);
  if (!root.ok()) return AuditFail(root.status());
  AuditOptions options;
  options.root_key = *root;
  options.temp_dir = temp_dir;
  ProgressLine progress;
  options.progress = [&progress](const AuditProgress& p) { progress.Show(p); };
  auto report = VerifyAuditBundle(file, options);
  progress.Clear();
  if (!report.ok()) return AuditFail(report.status());
  if (g.json) {
    PrintJson(ReportJson(*report));
  } else {
    PrintReport(*report);
  }
  return report->ok() ? kExitOk : kExitCheckFailed;
}

// One side of a comparison: a checkpoint file or an audit bundle.
struct Side {
  std::string file;
  bool bundle = false;
  std::string note;
  std::optional<AuditBundleHead> head;
  uint64_t claimed_size = 0;  // as the note says, before it is checked (to pick the leaves)
};

int RunCompare(Globals& g, const std::string& a_file, const std::string& b_file, std::string leaves,
               const std::string& root_key) {
  std::optional<Roster> installed;
  auto root = ResolveRootKey(g, root_key, &installed);
  if (!root.ok()) return AuditFail(root.status());
  if (installed && installed->root_key() != *root) installed.reset();  // another city's: not used

  Side sides[2];
  const std::string* files[2] = {&a_file, &b_file};
  std::optional<Roster> roster = installed;
  for (int i = 0; i < 2; ++i) {
    Side& side = sides[i];
    side.file = *files[i];
    auto bundle = IsAuditBundle(side.file);
    if (!bundle.ok()) return AuditFail(bundle.status());
    side.bundle = *bundle;
    if (side.bundle) {
      auto head = ReadAuditBundleHead(side.file, *root);
      if (!head.ok()) return AuditFail(head.status());
      side.note = head->checkpoint_note;
      side.head = std::move(head).value();
      if (!roster || side.head->roster.version() > roster->version()) roster = side.head->roster;
    } else {
      std::error_code error;
      if (std::filesystem::file_size(side.file, error) > kMaxNoteBytes && !error) {
        return AuditFail(Status::Invalid(side.file + " is neither an audit bundle nor a checkpoint (a signed note)"));
      }
      auto text = ReadFile(side.file);
      if (!text.ok()) return AuditFail(text.status());
      side.note = std::move(text).value();
    }
    auto parsed = ParseNote(side.note);
    if (!parsed.ok()) {
      return AuditFail(Status::Invalid(side.file + " is neither an audit bundle nor a checkpoint (a signed note): " +
                                       parsed.status().message()));
    }
    auto checkpoint = ParseCheckpoint(parsed->text);
    if (!checkpoint.ok()) {
      return AuditFail(Status::Invalid(side.file + " is a signed note but not a checkpoint: " +
                                       checkpoint.status().message()));
    }
    side.claimed_size = checkpoint->size;
  }
  if (!leaves.empty()) {
    auto head = ReadAuditBundleHead(leaves, *root);
    if (!head.ok()) return AuditFail(head.status().WithContext("--bundle"));
    if (!roster || head->roster.version() > roster->version()) roster = head->roster;
  } else {
    // The leaves of the larger checkpoint: an audit bundle given as A or B holding it.
    const Side& larger = sides[0].claimed_size >= sides[1].claimed_size ? sides[0] : sides[1];
    if (larger.bundle) leaves = larger.file;
  }
  if (!roster && !root_key.empty() && !g.store_dir.empty()) {
    // The trust anchor was given; the roster may still be the local store's.
    auto store = OpenStore(g);
    if (store.ok()) {
      auto held = (*store)->InstalledRoster();
      if (held.ok() && *held && (*held)->root_key() == *root) roster = **held;
    }
  }
  if (!roster) {
    return AuditFail(Status::Invalid(
        "no roster to check the checkpoints' signatures against: give an audit bundle (as A, B or --bundle), or "
        "--store with the city's roster installed"));
  }
  auto compared = CompareCheckpoints(sides[0].note, sides[1].note, *roster, leaves);
  if (!compared.ok()) return AuditFail(compared.status());
  const CheckpointComparison& c = *compared;

  if (g.json) {
    nlohmann::json proof = nlohmann::json::array();
    for (const Hash& h : c.proof) proof.push_back(h.ToHex());
    auto side_json = [](const Side& side, const Checkpoint& checkpoint, const std::string& note) {
      return nlohmann::json{{"file", side.file},
                            {"kind", side.bundle ? "audit bundle" : "checkpoint"},
                            {"size", checkpoint.size},
                            {"root", checkpoint.root.ToHex()},
                            {"note", note}};
    };
    PrintJson({{"consistent", c.consistent},
               {"verdict", c.consistent ? "consistent" : "split view"},
               {"origin", c.origin},
               {"rosterVersion", roster->version()},
               {"a", side_json(sides[0], c.a, c.a_note)},
               {"b", side_json(sides[1], c.b, c.b_note)},
               {"proof", proof},
               {"leavesFrom", leaves.empty() || c.a.size == c.b.size ? nlohmann::json(nullptr) : nlohmann::json(leaves)},
               {"explanation", c.explanation}});
  } else {
    std::cout << (c.consistent ? "consistent" : "split view") << ": " << c.origin << "\n"
              << "  A      " << Grouped(c.a.size) << " entries, root " << c.a.root.ToHex() << "  (" << sides[0].file
              << ")\n"
              << "  B      " << Grouped(c.b.size) << " entries, root " << c.b.root.ToHex() << "  (" << sides[1].file
              << ")\n"
              << "  both signed by the log key of roster version " << roster->version() << "\n"
              << "  " << c.explanation << "\n";
    if (!c.proof.empty()) {
      std::cout << "  proof  RFC 6962 consistency proof from " << std::min(c.a.size, c.b.size) << " to "
                << std::max(c.a.size, c.b.size) << ", computed from the leaves of " << leaves << ":\n";
      for (const Hash& h : c.proof) std::cout << "         " << h.ToHex() << "\n";
    }
    if (!c.consistent) {
      std::cout << "  evidence: the two signed checkpoints; keep them and show them to the city:\n"
                << "--- A (" << sides[0].file << ")\n"
                << c.a_note << "--- B (" << sides[1].file << ")\n"
                << c.b_note;
    }
  }
  return c.consistent ? kExitOk : kExitCheckFailed;
}

}  // namespace

void RegisterAuditVerifyCommands(CLI::App& app, Globals& globals, Handler& handler) {
  // Shared with `audit fetch` (cmd_audit.cc): whichever registers first adds the group.
  CLI::App* audit = Subcommand(app, "audit", "for the city's auditors: fetch and verify the whole signed history");
  audit->require_subcommand(1);

  struct VerifyArgs {
    std::string file, root_key, temp_dir;
  };
  auto v = std::make_shared<VerifyArgs>();
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "check an audit bundle offline: rosters, the log's signature and every cosignature, every commit, the Merkle "
      "root and the state statement");
  verify->fallthrough();
  verify->add_option("FILE", v->file, "the audit bundle (from samsync audit fetch)")->required();
  verify->add_option("--root-key", v->root_key,
                     "the city's root key, 64 hex (default: the root of the roster installed in --store)");
  verify->add_option("--temp-dir", v->temp_dir,
                     "where the temporary store the commits are merged into goes (default: $TMPDIR, else /tmp); "
                     "it needs about the space of the server's store and is removed afterwards");
  verify->callback([&globals, &handler, v] {
    handler = [&globals, v] { return RunVerify(globals, v->file, v->root_key, v->temp_dir); };
  });

  struct CompareArgs {
    std::string a, b, bundle, root_key;
  };
  auto c = std::make_shared<CompareArgs>();
  CLI::App* compare = audit->add_subcommand(
      "compare",
      "compare two checkpoints of the city's log: consistent (one extends the other, with the proof) or a split view");
  compare->fallthrough();
  compare->add_option("A", c->a, "a checkpoint file (a signed note, e.g. one `samsync sync` saved as evidence) or an "
                                 "audit bundle")
      ->required();
  compare->add_option("B", c->b, "the other checkpoint file or audit bundle")->required();
  compare->add_option("--bundle", c->bundle,
                      "an audit bundle holding the larger checkpoint's leaves, to prove consistency between "
                      "different sizes (default: A or B when it is that bundle)");
  compare->add_option("--root-key", c->root_key,
                      "the city's root key, 64 hex (default: the root of the roster installed in --store)");
  compare->callback([&globals, &handler, c] {
    handler = [&globals, c] { return RunCompare(globals, c->a, c->b, c->bundle, c->root_key); };
  });
}

}  // namespace samsync::cli
