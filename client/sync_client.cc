#include "sync_client.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "samsync/clock.h"
#include "samsync/tlog.h"

namespace samsync::cli {

void AddServerOptions(CLI::App& command, ServerOptions& o) {
  command.add_option("--server", o.server, "the server, tcp://HOST:PORT")->required()->envname("SAMSYNC_SERVER");
  command.add_option("--server-key", o.server_key, "the server's public key (64 hex characters, from the city's admin)")
      ->required()
      ->envname("SAMSYNC_SERVER_KEY");
  command.add_option("--timeout", o.timeout_s, "seconds to wait for each answer")->capture_default_str();
}

Result<std::unique_ptr<Connection>> Connection::Open(const Store& store, const ServerOptions& o) {
  auto server_key = Bytes32::FromHex(o.server_key, "server key");
  if (!server_key.ok()) return server_key.status().WithContext("--server-key");
  if (o.server.rfind("tcp://", 0) != 0) return Status::Invalid("--server must look like tcp://HOST:PORT");
  if (o.timeout_s <= 0) return Status::Invalid("--timeout must be a positive number of seconds");
  try {
    return std::unique_ptr<Connection>(new Connection(store, o, *server_key));
  } catch (const zmq::error_t& error) {
    return Status::Invalid("--server " + o.server + ": " + error.what());
  }
}

Connection::Connection(const Store& store, const ServerOptions& o, const PublicKey& server_key)
    : socket_(context_, zmq::socket_type::dealer), endpoint_(o.server), server_key_(server_key), timeout_s_(o.timeout_s) {
  const TransportKey& keys = store.transport_key_pair();
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server_key.bytes.data(), 32));
  socket_.set(zmq::sockopt::curve_publickey, zmq::const_buffer(keys.public_key().bytes.data(), 32));
  socket_.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret().data(), keys.secret().size()));
  socket_.set(zmq::sockopt::maxmsgsize, kMaxSyncMessageBytes);
  socket_.set(zmq::sockopt::rcvtimeo, timeout_s_ * 1000);
  // A send waits at most as long: a DEALER with no connection to send on blocks in send
  // until there is one, which may be never (seen after a duplicated chunk of a reply
  // made the next frame fail to decrypt: ZeroMQ dropped the connection and did not
  // make another). Found by tests/network_cli_test.cc.
  socket_.set(zmq::sockopt::sndtimeo, timeout_s_ * 1000);
  socket_.connect(endpoint_);
}

Result<SyncMessage<schema::SyncReply>> Connection::Ask(capnp::MallocMessageBuilder& request,
                                                       const std::function<Status()>& while_waiting) {
  std::vector<uint8_t> bytes = MessageBytes(request);
  try {
    Status no_answer(Code::kDisconnected,
                     "no answer from the sync server at " + endpoint_ + " within " + std::to_string(timeout_s_) +
                         " s: it is unreachable, or it does not admit this machine's key (is its roster up to date?); "
                         "nothing was lost, sync again later");
    if (!socket_.send(zmq::buffer(bytes), zmq::send_flags::none)) return no_answer;
    Status waited = while_waiting ? while_waiting() : Status::Ok();
    zmq::message_t reply;
    if (!socket_.recv(reply)) return no_answer;
    SAMSYNC_RETURN_IF_ERROR(waited);
    auto message = SyncMessage<schema::SyncReply>::Read({static_cast<const uint8_t*>(reply.data()), reply.size()});
    if (!message.ok()) return Status::Corruption("the sync server sent a malformed reply");
    if (message->root().getProtocol() != kSyncProtocol) {
      return Status::Invalid("the sync server speaks protocol " + std::to_string(message->root().getProtocol()) +
                             "; this samsync speaks " + std::to_string(kSyncProtocol) + ": update samsync");
    }
    if (message->root().isRefused()) {
      return Status::Unauthorised(std::string("the sync server refused: ") + message->root().getRefused().cStr());
    }
    return message;
  } catch (const zmq::error_t& error) {
    return Status(Code::kDisconnected, "cannot reach the sync server at " + endpoint_ + ": " + error.what());
  }
}

schema::SyncRequest::Builder NewRequest(capnp::MallocMessageBuilder& message) {
  auto request = message.initRoot<schema::SyncRequest>();
  request.setProtocol(kSyncProtocol);
  return request;
}

Result<std::vector<Hash>> ReadHashes(capnp::List<capnp::Data>::Reader list) {
  std::vector<Hash> hashes;
  if (list.size() > 128) return Status::Corruption("the sync server sent a proof of " + std::to_string(list.size()) + " hashes");
  for (auto data : list) {
    auto hash = Bytes32::FromBytes({data.begin(), data.size()}, "proof hash");
    if (!hash.ok()) return Status::Corruption("the sync server sent a proof hash that is not 32 bytes");
    hashes.push_back(*hash);
  }
  return hashes;
}

namespace {

// Saves what shows the server's log inconsistent: both signed checkpoints and the
// proof, in a new folder; returns its path.
std::string SaveEvidence(const std::string& evidence_dir, const std::string& seen, const std::string& served,
                         const std::vector<Hash>& proof) {
  namespace fs = std::filesystem;
  std::string stamp = FormatTime(SystemClock().NowMs());
  for (char& c : stamp) {
    if (c == ' ' || c == ':') c = '-';
  }
  fs::path dir = fs::path(evidence_dir) / stamp;
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::ofstream(dir / "seen.checkpoint") << seen;
  std::ofstream(dir / "served.checkpoint") << served;
  std::ofstream proof_file(dir / "consistency.proof");
  for (const Hash& hash : proof) proof_file << hash.ToHex() << '\n';
  return dir.string();
}

}  // namespace

Result<Witness> Witness::Load(const Store& store, const Witness* last) {
  SAMSYNC_ASSIGN_OR_RETURN(auto roster, store.InstalledRoster());
  if (!roster) return Status::Invalid("this store has no roster: install the city's (samsync roster import)");
  SAMSYNC_ASSIGN_OR_RETURN(auto seen_note, store.SeenCheckpoint());
  if (last != nullptr && last->saved_note_ == seen_note && last->roster_.signed_bytes() == roster->signed_bytes()) {
    return *last;
  }
  std::optional<Checkpoint> seen;
  if (seen_note) {
    auto opened = OpenCheckpoint(*seen_note, *roster);
    if (!opened.ok()) return opened.status().WithContext("the checkpoint this machine saw last");
    seen = opened->checkpoint;
  }
  return Witness(std::move(*roster), std::move(seen_note), std::move(seen));
}

Result<Witnessed> Witness::Check(schema::CheckpointReply::Reader served, const std::string& evidence_dir) {
  std::string note = served.getNote().cStr();
  SAMSYNC_ASSIGN_OR_RETURN(auto proof, ReadHashes(served.getConsistency()));
  auto opened = OpenCheckpoint(note, roster_);
  if (!opened.ok()) return opened.status().WithContext("the sync server's checkpoint");
  if (seen_) {
    Status extends = CheckExtends(*seen_, opened->checkpoint, proof);
    if (!extends.ok()) {
      std::string where = SaveEvidence(evidence_dir, *seen_note_, note, proof);
      return Status::BadSignature(extends.message() + "; nothing was cosigned; both checkpoints are saved in " + where +
                                  " (show them to the city's auditors: samsync audit compare)");
    }
  }
  // Taken (for Save) when it moved on: the same size and root as the one seen is the
  // same checkpoint (with other cosignatures), and a round that found nothing new
  // writes nothing durable.
  Witnessed witnessed;
  witnessed.previous_size = seen_size();
  if (!seen_ || seen_->size != opened->checkpoint.size || seen_->root != opened->checkpoint.root) {
    seen_note_ = note;
    seen_ = opened->checkpoint;
  }
  witnessed.cosigners = VerifiedCosigners(note, *opened, roster_).size();
  witnessed.checkpoint = opened->checkpoint;
  witnessed.text = opened->text;
  witnessed.note = std::move(note);
  return witnessed;
}

Status Witness::Save(Store& store) {
  if (saved() || !seen_note_) return Status::Ok();
  SAMSYNC_RETURN_IF_ERROR(store.SaveSeenCheckpoint(*seen_note_));
  saved_note_ = seen_note_;  // what the store holds: the next Load may reuse this witness
  return Status::Ok();
}

void SetCosign(schema::Cosign::Builder out, const Cosignature& cosignature) {
  out.setSize(cosignature.size);
  out.setLine(cosignature.line);
}

Status SendCosignature(Connection& connection, const Cosignature& cosignature) {
  capnp::MallocMessageBuilder request;
  SetCosign(NewRequest(request).initCosign(), cosignature);
  SAMSYNC_ASSIGN_OR_RETURN(auto cosigned, connection.Ask(request));
  if (!cosigned.root().isCosigned()) return Status::Corruption("the sync server answered a cosignature with something else");
  return Status::Ok();
}

}  // namespace samsync::cli
