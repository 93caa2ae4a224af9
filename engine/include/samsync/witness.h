// samsync's use of the C2SP formats (note.h) for its transparency log (tlog.h): the
// log's origin and key, witness names, the state statement, and the checks a witness
// (every machine that syncs) and an auditor make of a checkpoint.
//
// - The log of city C has origin "C/samsync" (e.g. "stockholm.se/samsync"), and its
//   checkpoints are signed under that name by the signing key of a roster entry of
//   role server (the server's store's device key).
// - A witness is a roster entry; its cosignatures use the name
//   "<origin>/witness/<first 16 hex of its signing key>" and its signing key.
// - The state statement is a note signed by the log key whose text is
//   "<origin> state\n<tree size>\n<state hash, 64 hex>\n": the hash (merge.h) of the
//   city view derived from the log's first <tree size> commits.
//
// Pure functions; any thread.
#ifndef SAMSYNC_WITNESS_H_
#define SAMSYNC_WITNESS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/keys.h"
#include "samsync/note.h"
#include "samsync/roster.h"
#include "samsync/status.h"

namespace samsync {

std::string LogOrigin(std::string_view city);
std::string WitnessName(std::string_view origin, const PublicKey& witness);

// A checkpoint note whose log signature was checked.
struct OpenedCheckpoint {
  Checkpoint checkpoint;
  std::string text;                 // the signed text (the checkpoint body)
  const RosterEntry* log = nullptr;  // the server entry whose key signed it
};

// Checks that `note` is a checkpoint of the roster's city's log signed by one of the
// roster's server keys that was not revoked. kBadSignature when no server key's
// signature verifies, kInvalidInput when the note does not parse or its origin is
// another log's, kUnauthorised when the roster names no server.
Result<OpenedCheckpoint> OpenCheckpoint(std::string_view note, const Roster& roster);

// Checks that `next` extends `seen` by `proof` (an RFC 6962 consistency proof); a
// log that shrank, or whose roots do not follow from each other, fails with
// kBadSignature and the message "the server's history is inconsistent with what this
// machine saw: ..." naming both sizes.
Status CheckExtends(const Checkpoint& seen, const Checkpoint& next, std::span<const Hash> proof);

// The cosignatures on `note` (an opened checkpoint) that verify by roster entries:
// one entry per witness, in the note's order. Lines that are not cosignatures of a
// roster entry are ignored (the log's own signature, unknown witnesses).
struct Cosigner {
  const RosterEntry* entry = nullptr;
  uint64_t timestamp = 0;  // seconds since the epoch, as the witness wrote it
};
std::vector<Cosigner> VerifiedCosigners(std::string_view note, const OpenedCheckpoint& opened,
                                        const Roster& roster);

// The state statement.
struct StateStatement {
  std::string origin;
  uint64_t size = 0;
  Hash state_hash;
};
std::string FormatStateStatement(const StateStatement& statement);
// Checks the statement's log signature as OpenCheckpoint does and parses it.
Result<StateStatement> OpenStateStatement(std::string_view note, const Roster& roster);

}  // namespace samsync

#endif  // SAMSYNC_WITNESS_H_
