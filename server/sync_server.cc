#include "sync_server.h"

#include <kj/exception.h>

#include <cerrno>
#include <zmq_addon.hpp>

#include "samsync/clock.h"

namespace samsync::server {
namespace {

std::string Short(const PublicKey& key) { return key.ToHex().substr(0, 16); }

std::string Who(const RosterEntry& entry) {
  std::string who = entry.district.empty() ? std::string(RoleName(entry.role)) : entry.district;
  if (!entry.label.empty()) who += " '" + entry.label + "'";
  return who + " (" + Short(entry.signing_key) + ")";
}

schema::Role SchemaRole(Role role) { return static_cast<schema::Role>(static_cast<uint16_t>(role)); }

}  // namespace

SyncServer::SyncServer(Store& store, std::ostream& log) : store_(store), log_(log) {}

Status SyncServer::ReloadRoster() {
  SAMSYNC_ASSIGN_OR_RETURN(auto installed, store_.InstalledRoster());
  if (!installed) return Status::Invalid("the server's store has no roster");
  std::shared_ptr<const Roster> current = roster_.Get();
  if (current && current->version() == installed->version()) return Status::Ok();
  district_devices_.clear();
  for (const RosterEntry& entry : installed->entries()) {
    if (entry.role == Role::kWriter) district_devices_[entry.district].insert(entry.signing_key);
  }
  roster_.Set(std::make_shared<const Roster>(std::move(*installed)));
  return Status::Ok();
}

std::vector<uint8_t> SyncServer::Refuse(const std::string& reason) const {
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  reply.setRefused(reason);
  return MessageBytes(message);
}

const std::set<PublicKey>* SyncServer::Visible(const RosterEntry& entry) {
  if (entry.role != Role::kWriter) return nullptr;
  return &district_devices_[entry.district];
}

Result<VersionVector> SyncServer::VisibleHeads(const RosterEntry& entry) {
  SAMSYNC_ASSIGN_OR_RETURN(VersionVector heads, store_.Heads());
  if (const std::set<PublicKey>* visible = Visible(entry)) {
    std::erase_if(heads, [visible](const auto& head) { return !visible->contains(head.first); });
  }
  return heads;
}

const RosterEntry* SyncServer::Admitted(const PublicKey& client) {
  const RosterEntry* entry = roster_.Get()->FindTransportKey(client);
  if (entry == nullptr || (entry->revoked_ms != 0 && entry->revoked_ms <= SystemClock().NowMs())) return nullptr;
  return entry;
}

std::vector<uint8_t> SyncServer::Handle(const PublicKey& client, std::span<const uint8_t> bytes) {
  if (Status reloaded = ReloadRoster(); !reloaded.ok()) return Refuse(reloaded.message());
  const RosterEntry* entry = Admitted(client);
  if (entry == nullptr) return Refuse("this machine's key is not admitted by the roster");
  if (entry->role == Role::kServer) return Refuse("a sync server's key does not sync");
  auto request = SyncMessage<schema::SyncRequest>::Read(bytes);
  if (!request.ok()) return Refuse("a malformed request: " + request.status().message());
  auto root = request->root();
  if (root.getProtocol() != kSyncProtocol) {
    return Refuse("this server speaks sync protocol " + std::to_string(kSyncProtocol) + ", not " +
                  std::to_string(root.getProtocol()) + ": update samsync");
  }
  // A message that decodes may still hold a pointer of the wrong kind where the schema
  // wants another (a struct where a list belongs): Cap'n Proto throws when it is read.
  // Such a request is refused; nothing is written before the request is read whole.
  std::vector<uint8_t> reply;
  auto error = kj::runCatchingExceptions([&] { reply = Serve(*entry, root); });
  if (error != nullptr) return Refuse("a malformed request: its fields are not of the schema's kinds");
  return reply;
}

std::vector<uint8_t> SyncServer::Serve(const RosterEntry& entry, schema::SyncRequest::Reader root) {
  switch (root.which()) {
    case schema::SyncRequest::HELLO: return Hello(entry);
    case schema::SyncRequest::PUSH: return Push(entry, root.getPush());
    case schema::SyncRequest::PULL: return Pull(entry, root.getPull());
    case schema::SyncRequest::CHECKPOINT: return Checkpoint(root.getCheckpoint());
    case schema::SyncRequest::COSIGN: return Cosign(entry, root.getCosign());
    case schema::SyncRequest::PROVE: return Prove(root.getProve());
    case schema::SyncRequest::AUDIT: return Audit(entry, root.getAudit());
  }
  return Refuse("a request of a kind this server does not know");
}

std::vector<uint8_t> SyncServer::Hello(const RosterEntry& entry) {
  sessions_[entry.transport_key] = Session{std::chrono::steady_clock::now(), 0, 0, 0};
  auto heads = VisibleHeads(entry);
  if (!heads.ok()) return Refuse("the server cannot read its store: " + heads.status().message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto hello = reply.initHello();
  hello.setRole(SchemaRole(entry.role));
  hello.setDistrict(entry.district);
  WriteSeen(hello.initHeads(static_cast<unsigned>(heads->size())), *heads);
  hello.setRosterVersion(roster_.Get()->version());
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Push(const RosterEntry& entry, capnp::List<capnp::Data>::Reader list) {
  if (entry.role != Role::kWriter) {
    return Refuse("a " + std::string(RoleName(entry.role)) + " key may only pull: it writes no records");
  }
  if (list.size() > kMaxBatchCommits) {
    return Refuse("a push may hold at most " + std::to_string(kMaxBatchCommits) + " commits");
  }
  std::vector<std::pair<Hash, std::string>> rejected;
  std::vector<std::vector<uint8_t>> offered;
  for (auto data : list) {
    std::span<const uint8_t> bytes(data.begin(), data.size());
    auto commit = Commit::Decode(bytes);
    if (!commit.ok()) {
      rejected.emplace_back(Sha256(bytes), "does not decode: " + commit.status().message());
    } else if (commit->district() != entry.district) {
      rejected.emplace_back(commit->id(), commit->Name() + " writes records of " + commit->district() +
                                              "; this machine is a writer of " + entry.district);
    } else {
      offered.emplace_back(bytes.begin(), bytes.end());
    }
  }
  // Import all that pass; a refused commit is taken out (with the commits of its
  // device after it, which follow it) and the rest imported again. Each attempt is
  // one transaction, so what is acknowledged below is durable and nothing refused is in.
  ImportReport report;
  while (true) {
    size_t next = 0;
    Hash refused;
    auto imported = store_.ImportCommits(
        [&]() -> Result<std::optional<Commit>> {
          if (next == offered.size()) return std::optional<Commit>();
          SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode(offered[next++]));
          return std::optional<Commit>(std::move(commit));
        },
        &refused);
    if (imported.ok()) {
      report = *imported;
      break;
    }
    Code code = imported.status().code();
    if (refused.IsZero() || code == Code::kIoError || code == Code::kMapFull) {
      return Refuse("the server could not store the commits: " + imported.status().message());
    }
    std::optional<PublicKey> author;
    std::vector<std::vector<uint8_t>> kept;
    for (auto& bytes : offered) {
      auto commit = Commit::Decode(bytes);
      if (commit->id() == refused) {
        author = commit->author();
        rejected.emplace_back(refused, imported.status().message());
      } else if (author && commit->author() == *author) {
        rejected.emplace_back(commit->id(), commit->Name() + " follows a refused commit of its device");
      } else {
        kept.push_back(std::move(bytes));
      }
    }
    if (!author) return Refuse("the server could not store the commits: " + imported.status().message());
    offered = std::move(kept);
  }
  Session& session = sessions_[entry.transport_key];
  session.pushed += report.applied;
  session.rejected += rejected.size();
  auto heads = VisibleHeads(entry);
  if (!heads.ok()) return Refuse("the server cannot read its store: " + heads.status().message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto pushed = reply.initPushed();
  pushed.setAccepted(static_cast<uint32_t>(report.applied));
  pushed.setDuplicates(static_cast<uint32_t>(report.duplicates));
  pushed.setWaiting(static_cast<uint32_t>(report.waiting));
  auto out = pushed.initRejected(static_cast<unsigned>(rejected.size()));
  for (unsigned i = 0; i < rejected.size(); ++i) {
    out[i].setCommit(capnp::Data::Reader(rejected[i].first.bytes.data(), 32));
    out[i].setReason(rejected[i].second);
  }
  WriteSeen(pushed.initHeads(static_cast<unsigned>(heads->size())), *heads);
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Pull(const RosterEntry& entry, schema::Pull::Reader pull) {
  auto have = ReadSeen(pull.getHave());
  if (!have.ok()) return Refuse("a malformed pull: " + have.status().message());
  uint32_t max_commits = std::min(pull.getMaxCommits() == 0 ? kMaxBatchCommits : pull.getMaxCommits(), kMaxBatchCommits);
  uint64_t max_bytes = std::min(pull.getMaxBytes() == 0 ? kMaxBatchBytes : pull.getMaxBytes(), kMaxBatchBytes);
  std::vector<std::vector<uint8_t>> batch;
  uint64_t bytes = 0;
  bool more = false;
  Status walked = store_.CommitsAfter(
      *have,
      [&](const Commit& commit) {
        uint64_t size = commit.signed_bytes().size();
        if (batch.size() == max_commits || (!batch.empty() && bytes + size > max_bytes)) {
          more = true;
          return false;
        }
        batch.push_back(commit.signed_bytes());
        bytes += size;
        return true;
      },
      Visible(entry));
  if (!walked.ok()) return Refuse("the server cannot read its store: " + walked.message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto commits = reply.initCommits();
  auto out = commits.initCommits(static_cast<unsigned>(batch.size()));
  for (unsigned i = 0; i < batch.size(); ++i) out.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
  commits.setMore(more);
  sessions_[entry.transport_key].pulled += batch.size();
  if (!more) EndSession(entry);
  return MessageBytes(message);
}

namespace {

void SetHashes(capnp::List<capnp::Data>::Builder out, const std::vector<Hash>& hashes) {
  for (unsigned i = 0; i < hashes.size(); ++i) out.set(i, capnp::Data::Reader(hashes[i].bytes.data(), 32));
}

// Fills `out` with the latest checkpoint and, when the client saw a smaller one, the
// proof that the log grew from it. A client that saw a larger one gets no proof: it
// is looking at a log that shrank, and says so.
Status WriteCheckpoint(Store& store, uint64_t seen_size, schema::CheckpointReply::Builder out) {
  SAMSYNC_ASSIGN_OR_RETURN(Store::LogCheckpoint latest, store.SignCheckpoint());
  out.setNote(latest.note);
  if (seen_size > 0 && seen_size < latest.size) {
    SAMSYNC_ASSIGN_OR_RETURN(auto proof, store.LogConsistencyProof(seen_size, latest.size));
    SetHashes(out.initConsistency(static_cast<unsigned>(proof.size())), proof);
  }
  return Status::Ok();
}

}  // namespace

std::vector<uint8_t> SyncServer::Checkpoint(uint64_t seen_size) {
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  Status written = WriteCheckpoint(store_, seen_size, reply.initCheckpoint());
  if (!written.ok()) return Refuse("the server cannot sign its log's checkpoint: " + written.message());
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Cosign(const RosterEntry& entry, schema::Cosign::Reader cosign) {
  Status kept = store_.AddCosignature(cosign.getSize(), entry.signing_key, cosign.getLine().cStr());
  if (!kept.ok()) return Refuse("the cosignature is not kept: " + kept.message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  reply.setCosigned();
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Prove(schema::Prove::Reader prove) {
  auto commit = Bytes32::FromBytes({prove.getCommit().begin(), prove.getCommit().size()}, "commit id");
  if (!commit.ok()) return Refuse("a malformed proof request: " + commit.status().message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto out = reply.initProof();
  Status written = WriteCheckpoint(store_, prove.getSeenSize(), out.initCheckpoint());
  if (!written.ok()) return Refuse("the server cannot sign its log's checkpoint: " + written.message());
  auto size = store_.LogSize();
  if (!size.ok()) return Refuse("the server cannot read its log: " + size.status().message());
  auto inclusion = store_.LogInclusionProof(*commit, *size);
  if (!inclusion.ok()) return Refuse(inclusion.status().message());
  out.setIndex(inclusion->index);
  SetHashes(out.initInclusion(static_cast<unsigned>(inclusion->proof.size())), inclusion->proof);
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Audit(const RosterEntry& entry, schema::AuditPage::Reader page) {
  if (entry.role != Role::kAuditor) {
    return Refuse("only an auditor's key may fetch the whole log; this is a " + std::string(RoleName(entry.role)) +
                  " key");
  }
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto out = reply.initAudit();
  uint64_t size = page.getSize();
  if (page.getFrom() == 0) {
    auto latest = store_.SignCheckpoint();
    if (!latest.ok()) return Refuse("the server cannot sign its log's checkpoint: " + latest.status().message());
    auto published = store_.SignStateStatement();
    if (!published.ok()) return Refuse("the server cannot state its city view: " + published.status().message());
    auto rosters = store_.RosterHistory();
    if (!rosters.ok()) return Refuse("the server cannot read its store: " + rosters.status().message());
    size = latest->size;
    out.setCheckpoint(latest->note);
    out.setPublished(*published);
    auto list = out.initRosters(static_cast<unsigned>(rosters->size()));
    for (unsigned i = 0; i < rosters->size(); ++i) {
      list.set(i, capnp::Data::Reader((*rosters)[i].data(), (*rosters)[i].size()));
    }
  }
  std::vector<std::vector<uint8_t>> batch;
  uint64_t bytes = 0;
  bool more = false;
  Status walked = store_.LogCommits(page.getFrom(), [&](uint64_t index, const Commit& commit) {
    if (index >= size) return false;
    uint64_t commit_bytes = commit.signed_bytes().size();
    if (batch.size() == kMaxBatchCommits || (!batch.empty() && bytes + commit_bytes > kMaxBatchBytes)) {
      more = true;
      return false;
    }
    batch.push_back(commit.signed_bytes());
    bytes += commit_bytes;
    return true;
  });
  if (!walked.ok()) return Refuse("the server cannot read its log: " + walked.message());
  auto commits = out.initCommits(static_cast<unsigned>(batch.size()));
  for (unsigned i = 0; i < batch.size(); ++i) commits.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
  out.setMore(more);
  return MessageBytes(message);
}

void SyncServer::EndSession(const RosterEntry& entry) {
  auto it = sessions_.find(entry.transport_key);
  if (it == sessions_.end()) return;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - it->second.started);
  log_ << FormatTime(SystemClock().NowMs()) << "  sync  " << Who(entry) << ": pushed " << it->second.pushed
       << ", pulled " << it->second.pulled << ", rejected " << it->second.rejected << ", " << ms.count() << " ms"
       << std::endl;
  // A writer's session that ended with nothing refused: its district's data here is as
  // current as now (the citywide report shows how old each district's is).
  if (entry.role == Role::kWriter && it->second.rejected == 0) {
    if (Status kept = store_.RecordDistrictSync(entry.district, SystemClock().NowMs()); !kept.ok()) {
      log_ << FormatTime(SystemClock().NowMs()) << "  cannot record the sync time of " << entry.district << ": "
           << kept.message() << std::endl;
    }
  }
  sessions_.erase(it);
}

Status SyncServer::Run(const std::string& endpoint, const std::function<void(const std::string&)>& bound,
                       const std::atomic<bool>& stop) {
  SAMSYNC_RETURN_IF_ERROR(ReloadRoster());
  zmq::context_t context;
  ZapHandler zap(context);
  zmq::socket_t socket(context, zmq::socket_type::router);
  try {
    const TransportKey& keys = store_.transport_key_pair();
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret().data(), keys.secret().size()));
    socket.set(zmq::sockopt::zap_domain, "samsync");
    socket.set(zmq::sockopt::maxmsgsize, kMaxSyncMessageBytes);
    socket.bind(endpoint);
  } catch (const zmq::error_t& error) {
    return Status::Io("cannot listen on " + endpoint + ": " + error.what());
  }
  bound(socket.get(zmq::sockopt::last_endpoint));
  while (!stop) {
    std::vector<zmq::message_t> frames;
    try {
      zmq::pollitem_t items[] = {{zap.socket().handle(), 0, ZMQ_POLLIN, 0}, {socket.handle(), 0, ZMQ_POLLIN, 0}};
      if (zmq::poll(items, 2, std::chrono::milliseconds(200)) == 0) continue;
      // Handshakes first: each decided against the roster as installed now.
      if (items[0].revents & ZMQ_POLLIN) {
        zap.Answer([this](const PublicKey& key) { return ReloadRoster().ok() && Admitted(key) != nullptr; });
      }
      if (!(items[1].revents & ZMQ_POLLIN)) continue;
      if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& error) {
      if (error.num() == EINTR) continue;
      return Status::Io(std::string("the server socket failed: ") + error.what());
    }
    // [identity, request] from a DEALER; anything else is dropped.
    if (frames.size() != 2) continue;
    const char* user_id = nullptr;
    try {
      user_id = frames[1].gets("User-Id");
    } catch (const zmq::error_t&) {
      continue;
    }
    auto client = Bytes32::FromHex(user_id == nullptr ? "" : user_id);
    if (!client.ok()) continue;
    std::vector<uint8_t> reply = Handle(*client, {static_cast<const uint8_t*>(frames[1].data()), frames[1].size()});
    try {
      std::array<zmq::const_buffer, 2> out = {zmq::buffer(frames[0].data(), frames[0].size()),
                                              zmq::buffer(reply)};
      zmq::send_multipart(socket, out, zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The client went away; it will ask again.
    }
  }
  return Status::Ok();
}

}  // namespace samsync::server
