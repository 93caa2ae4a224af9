// The client side of the sync protocol (schema/sync.capnp), shared by `samsync sync`,
// `samsync proof` and `samsync audit fetch`: one connection to the sync server, and
// the witness step every sync ends with.
#ifndef SAMSYNC_CLIENT_SYNC_CLIENT_H_
#define SAMSYNC_CLIENT_SYNC_CLIENT_H_

#include <CLI/CLI.hpp>
#include <capnp/message.h>

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
  Result<SyncMessage<schema::SyncReply>> Ask(capnp::MallocMessageBuilder& request);

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
  Checkpoint checkpoint;           // checked, saved as the last seen, and cosigned
  std::string note;                // as the server sent it
  uint64_t previous_size = 0;      // of the checkpoint this machine saw before (0: none)
  size_t cosigners = 0;            // roster entries whose cosignatures it carried
};

// Asks for the latest checkpoint of the city's log and checks it: signed by the
// roster's server key, and consistent with the checkpoint this machine saw last. If
// it is not, both checkpoints and the proof are saved as evidence in
// `evidence_dir`/<time>/ and the error (kBadSignature) says so; nothing is cosigned.
// Otherwise saves it as the last seen, and cosigns it (the server keeps the
// cosignature).
Result<Witnessed> Witness(Store& store, Connection& connection, const std::string& evidence_dir);

// Reads a proof's hashes from the wire (each 32 bytes; kCorruption otherwise).
Result<std::vector<Hash>> ReadHashes(capnp::List<capnp::Data>::Reader list);

}  // namespace samsync::cli

#endif  // SAMSYNC_CLIENT_SYNC_CLIENT_H_
