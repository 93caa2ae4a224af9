#include "samsync/witness.h"

#include "samsync/tlog.h"

namespace samsync {
namespace {

// The roster's server entries, each as the verifier of its log signatures.
std::vector<std::pair<const RosterEntry*, NoteVerifierKey>> LogKeys(const Roster& roster, std::string_view origin) {
  std::vector<std::pair<const RosterEntry*, NoteVerifierKey>> keys;
  for (const RosterEntry& entry : roster.entries()) {
    if (entry.role != Role::kServer) continue;
    auto key = NoteVerifierKey::Ed25519(origin, entry.signing_key);
    if (key.ok()) keys.emplace_back(&entry, *key);
  }
  return keys;
}

// Parses `note` and finds the server entry whose signature on it verifies.
Result<std::pair<Note, const RosterEntry*>> OpenLogNote(std::string_view note_bytes, const Roster& roster,
                                                        std::string_view what) {
  SAMSYNC_ASSIGN_OR_RETURN(Note note, ParseNote(note_bytes));
  std::string origin = LogOrigin(roster.city());
  auto keys = LogKeys(roster, origin);
  if (keys.empty()) {
    return Status::Unauthorised("the roster names no sync server, so no " + std::string(what) +
                                " can be checked: the city's admin enrols the server with `samsync roster add "
                                "--role server` (its log key and transport key, from samsync-server init)");
  }
  for (const auto& [entry, key] : keys) {
    if (!VerifyNote(note, key).ok()) continue;
    return std::make_pair(std::move(note), entry);
  }
  return Status::BadSignature("the " + std::string(what) + " is not signed by the log key of any sync server the roster names (origin " +
                              origin + ")");
}

std::string Digits(uint64_t n) { return std::to_string(n); }

}  // namespace

std::string LogOrigin(std::string_view city) { return std::string(city) + "/samsync"; }

std::string WitnessName(std::string_view origin, const PublicKey& witness) {
  return std::string(origin) + "/witness/" + witness.ToHex().substr(0, 16);
}

Result<OpenedCheckpoint> OpenCheckpoint(std::string_view note_bytes, const Roster& roster) {
  SAMSYNC_ASSIGN_OR_RETURN(auto opened, OpenLogNote(note_bytes, roster, "checkpoint"));
  SAMSYNC_ASSIGN_OR_RETURN(Checkpoint checkpoint, ParseCheckpoint(opened.first.text));
  if (checkpoint.origin != LogOrigin(roster.city())) {
    return Status::Invalid("the checkpoint is of the log '" + checkpoint.origin + "', not '" +
                           LogOrigin(roster.city()) + "'");
  }
  return OpenedCheckpoint{std::move(checkpoint), std::move(opened.first.text), opened.second};
}

Status CheckExtends(const Checkpoint& seen, const Checkpoint& next, std::span<const Hash> proof) {
  const std::string inconsistent = "the server's history is inconsistent with what this machine saw: ";
  if (seen.origin != next.origin) {
    return Status::BadSignature(inconsistent + "the checkpoints are of two logs, '" + seen.origin + "' and '" +
                                next.origin + "'");
  }
  if (next.size < seen.size) {
    return Status::BadSignature(inconsistent + "its log has " + Digits(next.size) + " entries now, " +
                                Digits(seen.size) + " before: entries were removed");
  }
  if (seen.size == 0) return Status::Ok();  // every log extends the empty one
  Status consistent = VerifyConsistency(seen.size, next.size, seen.root, next.root, proof);
  if (!consistent.ok()) {
    return Status::BadSignature(inconsistent + "the log of " + Digits(next.size) +
                                " entries does not extend the one of " + Digits(seen.size) + " (" +
                                consistent.message() + ")");
  }
  return Status::Ok();
}

std::vector<Cosigner> VerifiedCosigners(std::string_view note_bytes, const OpenedCheckpoint& opened,
                                        const Roster& roster) {
  std::vector<Cosigner> cosigners;
  auto note = ParseNote(note_bytes);
  if (!note.ok()) return cosigners;
  for (const NoteSignature& signature : note->signatures) {
    for (const RosterEntry& entry : roster.entries()) {
      std::string name = WitnessName(opened.checkpoint.origin, entry.signing_key);
      if (signature.name != name) continue;
      auto key = NoteVerifierKey::Cosigner(name, entry.signing_key);
      if (!key.ok() || key->key_id != signature.key_id) continue;
      auto timestamp = VerifyCosignature(opened.text, signature, *key);
      if (!timestamp.ok()) continue;
      bool seen = false;
      for (const Cosigner& c : cosigners) seen = seen || c.entry == &entry;
      if (!seen) cosigners.push_back(Cosigner{&entry, *timestamp});
      break;
    }
  }
  return cosigners;
}

std::string FormatStateStatement(const StateStatement& statement) {
  return statement.origin + " state\n" + Digits(statement.size) + "\n" + statement.state_hash.ToHex() + "\n";
}

Result<StateStatement> OpenStateStatement(std::string_view note_bytes, const Roster& roster) {
  SAMSYNC_ASSIGN_OR_RETURN(auto opened, OpenLogNote(note_bytes, roster, "state statement"));
  const std::string& text = opened.first.text;
  std::string origin = LogOrigin(roster.city());
  std::string head = origin + " state\n";
  auto malformed = [] { return Status::Corruption("the state statement is malformed"); };
  if (text.compare(0, head.size(), head) != 0) return malformed();
  size_t eol = text.find('\n', head.size());
  if (eol == std::string::npos || eol == head.size() || eol - head.size() > 20) return malformed();
  StateStatement statement;
  statement.origin = origin;
  std::string digits = text.substr(head.size(), eol - head.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos || (digits.size() > 1 && digits[0] == '0')) {
    return malformed();
  }
  try {
    statement.size = std::stoull(digits);
  } catch (...) {
    return malformed();
  }
  std::string hash = text.substr(eol + 1);
  if (hash.size() != 65 || hash.back() != '\n') return malformed();
  auto parsed = Bytes32::FromHex(std::string_view(hash).substr(0, 64), "state hash");
  if (!parsed.ok()) return malformed();
  statement.state_hash = *parsed;
  return statement;
}

}  // namespace samsync
