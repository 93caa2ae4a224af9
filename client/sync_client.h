// The client side of the sync protocol (schema/sync.capnp), shared by `samsync sync`,
// `samsync proof` and `samsync audit fetch`: one connection to the sync server, and
// the witness step every sync ends with.
#ifndef SAMSYNC_CLIENT_SYNC_CLIENT_H_
#define SAMSYNC_CLIENT_SYNC_CLIENT_H_

#include <CLI/CLI.hpp>
#include <capnp/message.h>

#include <functional>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "samsync/store.h"
#include "samsync/sync_protocol.h"
#include "samsync/witness.h"

namespace samsync::cli {

struct ServerOptions {
  std::string server;      // tcp://HOST:PORT
  std::string server_key;  // its CURVE public key, 64 hex
  int timeout_s = 30;
};

// Adds --server, --server-key and --timeout (with their SAMSYNC_ environment names).
void AddServerOptions(CLI::App& command, ServerOptions& options);

// One request, one reply, over a DEALER socket with CURVE.
class Connection {
 public:
  // Fails with kInvalidInput on a malformed address or key.
  static Result<std::unique_ptr<Connection>> Open(const Store& store, const ServerOptions& options);

  // Sends `request` (built with NewRequest) and waits for the reply: at most the
  // timeout to hand it to a connection, and the timeout again for the answer. A refusal
  // becomes kUnauthorised with the server's reason; no answer in time, kDisconnected.
  // `while_waiting`, when given, runs once the request is sent, while the server works
  // on it; the reply is still read when it fails, and its failure is then the result.
  Result<SyncMessage<schema::SyncReply>> Ask(capnp::MallocMessageBuilder& request,
                                             const std::function<Status()>& while_waiting = nullptr);

  const std::string& endpoint() const { return endpoint_; }
  const PublicKey& server_key() const { return server_key_; }

 private:
  Connection(const Store& store, const ServerOptions& options, const PublicKey& server_key);
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  PublicKey server_key_;
  int timeout_s_;
};

// A SyncRequest root with the protocol version set.
schema::SyncRequest::Builder NewRequest(capnp::MallocMessageBuilder& message);

// What the witness step saw.
struct Witnessed {
  Checkpoint checkpoint;           // checked: the last seen
  std::string note;                // as the server sent it
  std::string text;                // its signed text, what a cosignature signs
  uint64_t previous_size = 0;      // of the checkpoint this machine saw before (0: none)
  size_t cosigners = 0;            // roster entries whose cosignatures it carried
};

// The witness step every sync ends with: the checkpoint of the city's log the server
// serves must be signed by the roster's server key and extend the checkpoint this
// machine saw last. Read the seen one (Load) before asking the server, so that the
// request can name its size (seen_size), check the answer with Check, and save it
// with Save before cosigning it: a witness that forgot a checkpoint it cosigned could
// be shown a fork of it and cosign that too.
class Witness {
 public:
  // `last`, when given, is this store's witness of an earlier round (sync --every): if
  // the roster and the checkpoint saved since are still the ones it holds, it is
  // reused rather than the saved checkpoint's signature checked again (and it keeps
  // a checkpoint checked but not saved yet).
  static Result<Witness> Load(const Store& store, const Witness* last = nullptr);
  // The size of the checkpoint this machine saw last (0: none), saved or not.
  uint64_t seen_size() const { return seen_ ? seen_->size : 0; }
  // Checks `served` (the reply to checkpoint or exchange). If it does not extend the
  // one seen, both checkpoints and the proof are saved as evidence in
  // `evidence_dir`/<time>/ and the error (kBadSignature) says so. Otherwise it becomes
  // the last seen, for Save to write.
  Result<Witnessed> Check(schema::CheckpointReply::Reader served, const std::string& evidence_dir);
  // Saves the last seen checkpoint in `store` when it moved on since the last save (a
  // durable write), so that it may be cosigned.
  Status Save(Store& store);
  // Whether the last seen checkpoint is saved.
  bool saved() const { return saved_note_ == seen_note_; }
  // Whether `checkpoint` is the last seen and saved: then it may be cosigned.
  bool SavedAs(const Checkpoint& checkpoint) const {
    return saved() && seen_ && seen_->size == checkpoint.size && seen_->root == checkpoint.root;
  }

 private:
  Witness(Roster roster, std::optional<std::string> seen_note, std::optional<Checkpoint> seen)
      : roster_(std::move(roster)), saved_note_(seen_note), seen_note_(std::move(seen_note)), seen_(std::move(seen)) {}
  Roster roster_;
  std::optional<std::string> saved_note_;  // as the store holds it
  std::optional<std::string> seen_note_;
  std::optional<Checkpoint> seen_;
};

// A witness's cosignature of a checkpoint it checked, for the server to keep.
struct Cosignature {
  uint64_t size = 0;
  std::string line;  // a tlog-cosignature line
};
void SetCosign(schema::Cosign::Builder out, const Cosignature& cosignature);
// Sends `cosignature` alone (a cosign request) and waits for the server to keep it.
Status SendCosignature(Connection& connection, const Cosignature& cosignature);

// Reads a proof's hashes from the wire (each 32 bytes; kCorruption otherwise).
Result<std::vector<Hash>> ReadHashes(capnp::List<capnp::Data>::Reader list);

}  // namespace samsync::cli

#endif  // SAMSYNC_CLIENT_SYNC_CLIENT_H_
