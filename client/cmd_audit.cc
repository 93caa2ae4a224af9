// proof: show that a commit is in the city's transparency log (an inclusion proof
// against a signed checkpoint). audit fetch: download the whole log as an audit
// bundle for `audit verify` (cmd_audit_verify.cc).
#include <unistd.h>

#include <iostream>

#include "cli.h"
#include "samsync/audit.h"
#include "samsync/tlog.h"
#include "sync_client.h"

namespace samsync::cli {
namespace {

// A commit named by its id or a prefix of it (as `samsync log` shows, 12 hex) that
// one commit held here has.
Result<Hash> ResolveCommit(const Store& store, const std::string& given) {
  std::string wanted;
  for (char c : given) wanted += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (wanted.size() < 8 || wanted.size() > 64 || wanted.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::Invalid("COMMIT must be a commit id, or at least its first 8 hex digits (samsync log shows 12)");
  }
  if (wanted.size() == 64) return Bytes32::FromHex(wanted, "commit id");
  std::vector<Hash> found;
  SAMSYNC_RETURN_IF_ERROR(store.History(std::nullopt, [&](const Commit& commit) {
    if (commit.id().ToHex().compare(0, wanted.size(), wanted) == 0) found.push_back(commit.id());
    return found.size() < 2;
  }));
  if (found.empty()) return Status::NotFound("no commit held here starts with " + wanted);
  if (found.size() > 1) return Status::Invalid("more than one commit starts with " + wanted + ": give more digits");
  return found.front();
}

int RunProof(Globals& g, const ServerOptions& o, const std::string& commit_given) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  Store& s = **store;
  auto commit = ResolveCommit(s, commit_given);
  if (!commit.ok()) return Fail(commit.status().WithContext("COMMIT"));
  auto roster = s.InstalledRoster();
  if (!roster.ok()) return Fail(roster.status());
  if (!*roster) return Fail(Status::Invalid("this store has no roster: install the city's (samsync roster import)"));
  auto seen_note = s.SeenCheckpoint();
  if (!seen_note.ok()) return Fail(seen_note.status());
  std::optional<OpenedCheckpoint> seen;
  if (*seen_note) {
    auto opened = OpenCheckpoint(**seen_note, **roster);
    if (!opened.ok()) return Fail(opened.status().WithContext("the checkpoint this machine saw last"));
    seen = std::move(opened).value();
  }
  auto connection = Connection::Open(s, o);
  if (!connection.ok()) return Fail(connection.status());

  capnp::MallocMessageBuilder request;
  auto prove = NewRequest(request).initProve();
  prove.setCommit(capnp::Data::Reader(commit->bytes.data(), 32));
  prove.setSeenSize(seen ? seen->checkpoint.size : 0);
  auto reply = (*connection)->Ask(request);
  if (!reply.ok()) return Fail(reply.status());
  if (!reply->root().isProof()) return Fail(Status::Corruption("the sync server answered a proof request with something else"));
  auto proof = reply->root().getProof();
  std::string note = proof.getCheckpoint().getNote().cStr();
  auto consistency = ReadHashes(proof.getCheckpoint().getConsistency());
  auto inclusion = ReadHashes(proof.getInclusion());
  if (!consistency.ok()) return Fail(consistency.status());
  if (!inclusion.ok()) return Fail(inclusion.status());
  auto opened = OpenCheckpoint(note, **roster);
  if (!opened.ok()) return Fail(opened.status().WithContext("the sync server's checkpoint"));
  if (seen) {
    if (Status extends = CheckExtends(seen->checkpoint, opened->checkpoint, *consistency); !extends.ok()) {
      return Fail(extends);
    }
  }
  const Checkpoint& checkpoint = opened->checkpoint;
  Status included = VerifyInclusion(MerkleLeafHash(commit->span()), proof.getIndex(), checkpoint.size, *inclusion,
                                    checkpoint.root);
  if (!included.ok()) {
    return Fail(Status::BadSignature("the server's inclusion proof for commit " + commit->ToHex().substr(0, 12) +
                                     " does not verify against its signed checkpoint: " + included.message()));
  }
  if (Status saved = s.SaveSeenCheckpoint(note); !saved.ok()) return Fail(saved);

  if (g.json) {
    nlohmann::json hashes = nlohmann::json::array();
    for (const Hash& hash : *inclusion) hashes.push_back(hash.ToHex());
    PrintJson({{"commit", commit->ToHex()},
               {"included", true},
               {"leafIndex", proof.getIndex()},
               {"treeSize", checkpoint.size},
               {"root", checkpoint.root.ToHex()},
               {"origin", checkpoint.origin},
               {"inclusionProof", hashes},
               {"checkpoint", note},
               {"consistentWithSize", seen ? seen->checkpoint.size : 0}});
  } else {
    std::cout << "commit " << commit->ToHex() << " is in the city's log\n"
              << "  log        " << checkpoint.origin << ", " << checkpoint.size << " entries, root "
              << checkpoint.root.ToHex() << "\n"
              << "  entry      " << proof.getIndex() << "\n"
              << "  proof      " << inclusion->size()
              << " hashes, checked against the checkpoint signed by the server's log key\n";
    if (seen) {
      std::cout << "  consistent with the checkpoint this machine saw before (" << seen->checkpoint.size
                << " entries)\n";
    }
  }
  return kExitOk;
}

// A progress line on a terminal, overwritten in place; nothing when not a terminal.
void Progress(const std::string& line) {
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (terminal) std::cerr << "\r" << line << "\x1b[K" << std::flush;
}

int RunAuditFetch(Globals& g, const ServerOptions& o, const std::string& path) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto connection = Connection::Open(**store, o);
  if (!connection.ok()) return Fail(connection.status());
  SystemClock clock;
  auto writer = AuditBundleWriter::Create(path, o.server, clock.NowMs());
  if (!writer.ok()) return Fail(writer.status());

  uint64_t from = 0, size = 0, bytes = 0;
  std::string note;
  while (true) {
    capnp::MallocMessageBuilder request;
    auto page = NewRequest(request).initAudit();
    page.setFrom(from);
    page.setSize(size);
    page.setMaxCommits(kMaxBatchCommits);
    page.setMaxBytes(kMaxBatchBytes);
    auto reply = (*connection)->Ask(request);
    if (!reply.ok()) return Fail(reply.status());
    if (!reply->root().isAudit()) return Fail(Status::Corruption("the sync server answered an audit fetch with something else"));
    auto audit = reply->root().getAudit();
    if (from == 0) {
      note = audit.getCheckpoint().cStr();
      auto checkpoint_note = ParseNote(note);
      if (!checkpoint_note.ok()) return Fail(checkpoint_note.status().WithContext("the sync server's checkpoint"));
      auto checkpoint = ParseCheckpoint(checkpoint_note->text);
      if (!checkpoint.ok()) return Fail(checkpoint.status().WithContext("the sync server's checkpoint"));
      size = checkpoint->size;
      for (auto roster : audit.getRosters()) {
        if (Status added = writer->AddRoster({roster.begin(), roster.size()}); !added.ok()) return Fail(added);
      }
      if (Status set = writer->SetCheckpoint(note, audit.getPublished().cStr()); !set.ok()) return Fail(set);
    }
    for (auto commit : audit.getCommits()) {
      if (Status added = writer->AddCommit({commit.begin(), commit.size()}); !added.ok()) return Fail(added);
      bytes += commit.size();
      ++from;
    }
    Progress("fetched " + std::to_string(from) + " of " + std::to_string(size) + " commits");
    if (!audit.getMore()) break;
    if (audit.getCommits().size() == 0) return Fail(Status::Corruption("the sync server said there was more but sent nothing"));
  }
  Progress("");
  if (::isatty(STDERR_FILENO) == 1) std::cerr << "\r";
  if (from != size) {
    return Fail(Status::Corruption("the sync server sent " + std::to_string(from) + " commits for a log of " +
                                   std::to_string(size) + "; nothing was written"));
  }
  if (Status finished = writer->Finish(); !finished.ok()) return Fail(finished);
  if (g.json) {
    PrintJson({{"file", path}, {"server", o.server}, {"commits", from}, {"bytes", bytes}, {"treeSize", size}});
  } else {
    std::cout << "fetched the city's log from " << o.server << ": " << from << " commits ("
              << (bytes + 524288) / 1048576 << " MiB) with its signed checkpoint, its cosignatures, the state statement and "
              << "every roster version\n"
              << "written to " << path << "; check it offline with: samsync audit verify " << path << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, Globals& globals, Handler& handler) {
  auto proof_options = std::make_shared<ServerOptions>();
  auto commit = std::make_shared<std::string>();
  CLI::App* proof = app.add_subcommand(
      "proof", "show that a commit is in the city's transparency log: an inclusion proof, checked here");
  proof->fallthrough();
  proof->add_option("COMMIT", *commit, "the commit's id, or its first 8 or more hex digits (samsync log)")->required();
  AddServerOptions(*proof, *proof_options);
  proof->callback([&globals, &handler, proof_options, commit] {
    handler = [&globals, proof_options, commit] { return RunProof(globals, *proof_options, *commit); };
  });

  // Shared with `audit verify` and `audit compare` (cmd_audit_verify.cc): whichever
  // registers first adds the group.
  CLI::App* audit = Subcommand(app, "audit", "for the city's auditors: fetch and verify the whole signed history");
  auto fetch_options = std::make_shared<ServerOptions>();
  auto file = std::make_shared<std::string>();
  CLI::App* fetch = audit->add_subcommand(
      "fetch", "download the city's log (every commit, the rosters, the signed checkpoint) as an audit bundle");
  fetch->fallthrough();
  fetch->add_option("FILE", *file, "the audit bundle to write (must not exist)")->required();
  AddServerOptions(*fetch, *fetch_options);
  fetch->callback([&globals, &handler, fetch_options, file] {
    handler = [&globals, fetch_options, file] { return RunAuditFetch(globals, *fetch_options, *file); };
  });
}

}  // namespace samsync::cli
