#include "sync_server.h"

#include <kj/exception.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <tuple>
#include <utility>
#include <zmq_addon.hpp>

#include "samsync/clock.h"

namespace samsync::server {
namespace {

// How often a district's sync time is written at most (EndSession).
constexpr auto kSyncTimeEvery = std::chrono::minutes(1);
// How often a machine's sessions that brought nothing are logged at most (EndSession).
constexpr auto kIdleLogEvery = std::chrono::hours(1);

std::string Short(const PublicKey& key) { return key.ToHex().substr(0, 16); }

std::string Who(const RosterEntry& entry) {
  std::string who = entry.district.empty() ? std::string(RoleName(entry.role)) : entry.district;
  if (!entry.label.empty()) who += " '" + entry.label + "'";
  return who + " (" + Short(entry.signing_key) + ")";
}

schema::Role SchemaRole(Role role) { return static_cast<schema::Role>(static_cast<uint16_t>(role)); }

// A refused commit's name in the log: the start of its id, its device and seq.
std::string CommitLabel(const Hash& id, const Commit* commit) {
  std::string label = "commit " + id.ToHex().substr(0, 16);
  if (commit != nullptr) label += " (device " + Short(commit->author()) + " seq " + std::to_string(commit->seq()) + ")";
  return label;
}

// Reasons come from the checks (ids, keys, district names, field ordinals), never a
// record's values; still, a log line is kept short.
std::string Bounded(std::string text) {
  constexpr size_t kMax = 400;
  if (text.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    text = text.substr(0, cut) + "…";
  }
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

bool WriteFile(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  return static_cast<bool>(out);
}

std::optional<std::vector<uint8_t>> ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

SyncServer::SyncServer(Store& store, std::ostream& log, std::string evidence_dir)
    : store_(store), log_(log), evidence_dir_(std::move(evidence_dir)) {}

void SyncServer::LogLine(const std::string& kind, const std::string& text) {
  // One write per line: lines stay whole, and a round does not pay a write per part.
  log_ << (FormatTime(SystemClock().NowMs()) + "  " + kind + "  " + text + "\n") << std::flush;
}

void SyncServer::LogRefusedHandshake(const PublicKey& client) {
  auto now = std::chrono::steady_clock::now();
  if (refused_handshakes_.size() > 10000) refused_handshakes_.clear();  // bounded, whoever knocks
  auto [it, first] = refused_handshakes_.emplace(client, now);
  if (!first && now - it->second < std::chrono::minutes(1)) return;
  it->second = now;
  const RosterEntry* entry = roster_.Get() ? roster_.Get()->FindTransportKey(client) : nullptr;
  std::string why = entry == nullptr ? "not in the roster" : "revoked in the roster (" + Who(*entry) + ")";
  LogLine("refused", "handshake of transport key " + Short(client) + ": " + why);
}

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

std::vector<uint8_t> SyncServer::Refuse(const std::string& reason) {
  LogLine("refused", (who_.empty() ? std::string("a request") : who_) + ": " + Bounded(reason));
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
  who_ = "transport key " + Short(client);
  if (Status reloaded = ReloadRoster(); !reloaded.ok()) return Refuse(reloaded.message());
  const RosterEntry* entry = Admitted(client);
  if (entry == nullptr) return Refuse("this machine's key is not admitted by the roster");
  who_ = Who(*entry);
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
    case schema::SyncRequest::EXCHANGE: return Exchange(entry, root.getExchange());
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
  SessionOf(entry);  // timed from the request's start
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  if (Status pushed = MergePush(entry, list, reply.initPushed()); !pushed.ok()) return Refuse(pushed.message());
  return MessageBytes(message);
}

Status SyncServer::MergePush(const RosterEntry& entry, capnp::List<capnp::Data>::Reader list,
                             schema::PushReply::Builder out, const Store::Cosignature* cosignature,
                             bool* cosignature_kept) {
  if (entry.role != Role::kWriter && list.size() > 0) {
    return Status::Invalid("a " + std::string(RoleName(entry.role)) + " key may only pull: it writes no records");
  }
  // The claimed batch is bounded before anything is copied out of the message (which
  // ZMQ_MAXMSGSIZE bounds): a count, then bytes, read from the list's pointers.
  if (list.size() > kMaxBatchCommits) {
    return Status::Invalid("a push may hold at most " + std::to_string(kMaxBatchCommits) + " commits, not " +
                  std::to_string(list.size()));
  }
  uint64_t claimed_bytes = 0;
  for (auto data : list) claimed_bytes += data.size();
  if (list.size() > 1 && claimed_bytes > kMaxBatchBytes) {
    return Status::Invalid("a push of several commits may hold at most " + std::to_string(kMaxBatchBytes) + " bytes, not " +
                  std::to_string(claimed_bytes) + " (a larger commit travels alone)");
  }
  std::vector<std::pair<Hash, std::string>> rejected;
  std::vector<Offered> offered;
  for (auto data : list) {
    std::span<const uint8_t> bytes(data.begin(), data.size());
    auto commit = Commit::Decode(bytes);
    if (!commit.ok()) {
      rejected.emplace_back(Sha256(bytes), "does not decode: " + commit.status().message());
    } else if (commit->district() != entry.district) {
      rejected.emplace_back(commit->id(), commit->Name() + " writes records of " + commit->district() +
                                              "; this machine is a writer of " + entry.district);
    } else {
      offered.push_back(Offered{{bytes.begin(), bytes.end()}, std::move(commit).value()});
    }
  }
  if (!offered.empty()) RefuseGaps(offered, rejected);
  // Import all that pass; a refused commit is taken out (with the commits of its
  // device after it, which follow it) and the rest imported again. Each attempt is
  // one transaction, so what is acknowledged below is durable and nothing refused is in.
  ImportReport report;
  while (!offered.empty()) {  // nothing to import: no write transaction
    size_t next = 0;
    Hash refused;
    auto imported = store_.ImportCommits(
        [&]() -> Result<std::optional<Commit>> {
          if (next == offered.size()) return std::optional<Commit>();
          Offered& taken = offered[next++];
          if (taken.commit) return std::exchange(taken.commit, std::nullopt);
          SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode(taken.bytes));  // an attempt after a refusal
          return std::optional<Commit>(std::move(commit));
        },
        &refused, cosignature);
    if (imported.ok()) {
      report = *imported;
      if (cosignature_kept != nullptr) *cosignature_kept = cosignature != nullptr;
      break;
    }
    Code code = imported.status().code();
    if (refused.IsZero() || code == Code::kIoError || code == Code::kMapFull) {
      return Status::Invalid("the server could not store the commits: " + imported.status().message());
    }
    std::optional<PublicKey> author;
    std::vector<Offered> kept;
    for (Offered& item : offered) {
      auto commit = item.commit ? std::move(*item.commit) : Commit::Decode(item.bytes).value();  // decoded before
      if (commit.id() == refused) {
        author = commit.author();
        rejected.emplace_back(refused, imported.status().message());
      } else if (author && commit.author() == *author) {
        rejected.emplace_back(commit.id(), commit.Name() + " follows a refused commit of its device");
      } else {
        kept.push_back(Offered{std::move(item.bytes), std::move(commit)});
      }
    }
    if (!author) return Status::Invalid("the server could not store the commits: " + imported.status().message());
    offered = std::move(kept);
  }
  // Every refusal is logged with its reason; a fork is evidence of a cloned device.
  std::map<Hash, Commit> refused_commits;
  if (!rejected.empty()) {
    std::set<Hash> ids;
    for (const auto& item : rejected) ids.insert(item.first);
    for (auto data : list) {
      auto decoded = Commit::Decode({data.begin(), data.size()});
      if (decoded.ok() && ids.contains(decoded->id())) refused_commits.emplace(decoded->id(), std::move(decoded).value());
    }
  }
  size_t logged = 0;
  for (auto& [id, reason] : rejected) {
    auto found = refused_commits.find(id);
    const Commit* commit = found == refused_commits.end() ? nullptr : &found->second;
    if (commit != nullptr) {
      if (auto fork = CheckFork(*commit)) reason = *fork;
    }
    if (logged++ < 20) {
      // Most reasons start by naming the commit (Commit::Name); the others get its label.
      bool named = reason.rfind("commit ", 0) == 0;
      LogLine("refused", who_ + ": " + (named ? std::string() : CommitLabel(id, commit) + ": ") + Bounded(reason));
    }
  }
  if (logged > 20) LogLine("refused", who_ + ": and " + std::to_string(logged - 20) + " more commits of this push");
  if (report.duplicates > 0) {
    LogLine("replay", who_ + ": " + std::to_string(report.duplicates) +
                          " commits pushed are held already (same ids): ignored, nothing changed");
  }
  Session& session = SessionOf(entry);
  session.pushed += report.applied;
  session.rejected += rejected.size();
  auto heads = VisibleHeads(entry);
  if (!heads.ok()) return Status::Invalid("the server cannot read its store: " + heads.status().message());
  out.setAccepted(static_cast<uint32_t>(report.applied));
  out.setDuplicates(static_cast<uint32_t>(report.duplicates));
  out.setWaiting(static_cast<uint32_t>(report.waiting));
  auto refusals = out.initRejected(static_cast<unsigned>(rejected.size()));
  for (unsigned i = 0; i < rejected.size(); ++i) {
    refusals[i].setCommit(capnp::Data::Reader(rejected[i].first.bytes.data(), 32));
    refusals[i].setReason(rejected[i].second);
  }
  WriteSeen(out.initHeads(static_cast<unsigned>(heads->size())), *heads);
  return Status::Ok();
}

void SyncServer::RefuseGaps(std::vector<Offered>& offered, std::vector<std::pair<Hash, std::string>>& rejected) {
  // A push is in causal order (schema/sync.capnp): an honest client pushes a device's
  // commits from the server's head on. A commit past a gap would only wait in the
  // server's store for a predecessor that may never come; it is refused instead.
  auto heads = store_.Heads();
  if (!heads.ok()) return;  // the import reports the store's error
  VersionVector next = *heads;  // per device, the highest seq held or pushed before
  std::set<PublicKey> blocked;
  std::vector<Offered> kept;
  for (Offered& item : offered) {
    const Commit& commit = *item.commit;
    const PublicKey& author = commit.author();
    uint64_t& last = next[author];
    if (blocked.contains(author)) {
      rejected.emplace_back(commit.id(), commit.Name() + " follows a refused commit of its device");
    } else if (commit.seq() > last + 1) {
      rejected.emplace_back(commit.id(), commit.Name() + ": the server holds this device's commits up to seq " +
                                             std::to_string(last) + " and none between: the chain has a gap (a "
                                             "push sends a device's commits in order, from the server's head on)");
      blocked.insert(author);
    } else {
      if (commit.seq() == last + 1) last = commit.seq();
      kept.push_back(std::move(item));
    }
  }
  offered = std::move(kept);
}

std::optional<std::string> SyncServer::CheckFork(const Commit& offered) {
  if (offered.seq() == 0 || !offered.SignatureValid()) return std::nullopt;  // a forgery proves nothing
  // The commits the server holds of that device at the offered seq and the one before.
  std::optional<Commit> same, before;
  VersionVector have{{offered.author(), offered.seq() > 1 ? offered.seq() - 2 : 0}};
  if (have.begin()->second == 0) have.clear();
  std::set<PublicKey> only{offered.author()};
  Status walked = store_.CommitsAfter(
      have,
      [&](const Commit& held) {
        if (held.seq() + 1 == offered.seq()) before = Commit::Decode(held.signed_bytes()).value();
        if (held.seq() == offered.seq()) {
          same = Commit::Decode(held.signed_bytes()).value();
          return false;
        }
        return held.seq() < offered.seq();
      },
      &only);
  if (!walked.ok()) return std::nullopt;
  const Commit* held = nullptr;
  std::string what;
  if (same && same->id() != offered.id()) {
    held = &*same;
    what = "signed two different commits as seq " + std::to_string(offered.seq());
  } else if (!same && before && before->id() != offered.parent()) {
    held = &*before;
    what = "signed a commit as seq " + std::to_string(offered.seq()) + " whose parent is not its seq " +
           std::to_string(before->seq()) + " held here";
  }
  if (held == nullptr) return std::nullopt;
  std::string folder;
  if (!evidence_dir_.empty()) {
    namespace fs = std::filesystem;
    fs::path dir = fs::path(evidence_dir_) / ("fork-" + offered.author().ToHex() + "-" + std::to_string(held->seq()) +
                                              "-" + offered.id().ToHex().substr(0, 16));
    std::error_code error;
    fs::create_directories(dir, error);
    if (!error && WriteFile(dir / "held.commit", held->signed_bytes()) &&
        WriteFile(dir / "offered.commit", offered.signed_bytes())) {
      folder = dir.string();
    } else {
      LogLine("error", "cannot keep the evidence of a fork in " + dir.string());
    }
  }
  const RosterEntry* entry = roster_.Get() ? roster_.Get()->FindSigningKey(offered.author()) : nullptr;
  std::string device = "device " + offered.author().ToHex() + (entry ? " (" + Who(*entry) + ")" : std::string());
  LogLine("fork", device + " " + what + ": the server holds commit " + held->id().ToHex() + ", " + who_ +
                      " offered commit " + offered.id().ToHex() +
                      ": evidence of a cloned device (a copied store or key); refused" +
                      (folder.empty() ? std::string() : ", both signed commits kept in " + folder));
  return offered.Name() + ": this device " + what + " (the server holds " + held->id().ToHex().substr(0, 16) +
         "): evidence of a cloned device, reported to the city's admin; refused";
}

std::vector<ForkEvidence> ListForkEvidence(const std::string& evidence_dir) {
  namespace fs = std::filesystem;
  std::vector<ForkEvidence> forks;
  std::error_code error;
  if (evidence_dir.empty() || !fs::is_directory(evidence_dir, error)) return forks;
  for (const auto& item : fs::directory_iterator(evidence_dir, error)) {
    if (!item.is_directory() || item.path().filename().string().rfind("fork-", 0) != 0) continue;
    auto held_bytes = ReadFileBytes(item.path() / "held.commit");
    auto offered_bytes = ReadFileBytes(item.path() / "offered.commit");
    if (!held_bytes || !offered_bytes) continue;
    auto held = Commit::Decode(*held_bytes);
    auto offered = Commit::Decode(*offered_bytes);
    if (!held.ok() || !offered.ok() || held->author() != offered->author()) continue;
    if (!held->SignatureValid() || !offered->SignatureValid()) continue;
    bool same_seq = held->seq() == offered->seq() && held->id() != offered->id();
    bool other_parent = held->seq() + 1 == offered->seq() && offered->parent() != held->id();
    if (!same_seq && !other_parent) continue;
    forks.push_back(ForkEvidence{held->author(), held->seq(), held->id(), offered->id(), item.path().string()});
  }
  std::sort(forks.begin(), forks.end(), [](const ForkEvidence& a, const ForkEvidence& b) {
    return std::tie(a.device, a.seq, a.offered) < std::tie(b.device, b.seq, b.offered);
  });
  return forks;
}

std::vector<uint8_t> SyncServer::Pull(const RosterEntry& entry, schema::Pull::Reader pull) {
  SessionOf(entry);  // timed from the request's start
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto asked = ReadPull(pull);
  if (!asked.ok()) return Refuse(asked.status().message());
  if (Status pulled = ServePull(entry, *asked, reply.initCommits()); !pulled.ok()) return Refuse(pulled.message());
  return MessageBytes(message);
}

Result<SyncServer::PullAsked> SyncServer::ReadPull(schema::Pull::Reader pull) {
  auto have = ReadSeen(pull.getHave());
  if (!have.ok()) return Status::Invalid("a malformed pull: " + have.status().message());
  return PullAsked{std::move(have).value(),
                   std::min(pull.getMaxCommits() == 0 ? kMaxBatchCommits : pull.getMaxCommits(), kMaxBatchCommits),
                   std::min(pull.getMaxBytes() == 0 ? kMaxBatchBytes : pull.getMaxBytes(), kMaxBatchBytes)};
}

Status SyncServer::ServePull(const RosterEntry& entry, const PullAsked& asked, schema::CommitBatch::Builder out) {
  std::vector<std::vector<uint8_t>> batch;
  uint64_t bytes = 0;
  bool more = false;
  Status walked = store_.CommitsAfter(
      asked.have,
      [&](const Commit& commit) {
        uint64_t size = commit.signed_bytes().size();
        if (batch.size() == asked.max_commits || (!batch.empty() && bytes + size > asked.max_bytes)) {
          more = true;
          return false;
        }
        batch.push_back(commit.signed_bytes());
        bytes += size;
        return true;
      },
      Visible(entry));
  if (!walked.ok()) return Status::Invalid("the server cannot read its store: " + walked.message());
  auto commits = out.initCommits(static_cast<unsigned>(batch.size()));
  for (unsigned i = 0; i < batch.size(); ++i) commits.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
  out.setMore(more);
  SessionOf(entry).pulled += batch.size();
  if (!more) EndSession(entry);
  return Status::Ok();
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
  Status kept = store_.AddCosignature({cosign.getSize(), entry.signing_key, cosign.getLine().cStr()});
  if (!kept.ok()) return Refuse("the cosignature is not kept: " + kept.message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  reply.setCosigned();
  return MessageBytes(message);
}

std::vector<uint8_t> SyncServer::Exchange(const RosterEntry& entry, schema::Exchange::Reader exchange) {
  SessionOf(entry);  // timed from the request's start
  // Everything the request holds is read before anything is written (a field of the
  // wrong kind throws when read: Handle refuses the request whole).
  auto asked = ReadPull(exchange.getPull());
  if (!asked.ok()) return Refuse(asked.status().message());
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<schema::SyncReply>();
  reply.setProtocol(kSyncProtocol);
  auto out = reply.initExchanged();
  // A cosignature that cannot be kept does not hold up the sync: the witness is told why.
  std::optional<Store::Cosignature> cosignature;
  auto refuse_cosignature = [&](const Status& why) {
    LogLine("refused", who_ + ": a cosignature: " + Bounded(why.message()));
    out.setCosignRefused(why.message());
  };
  if (exchange.hasCosign()) {
    auto cosign = exchange.getCosign();
    Store::Cosignature offered{cosign.getSize(), entry.signing_key, cosign.getLine().cStr()};
    if (exchange.getPush().size() == 0) {
      // No push to keep it with: checked and kept alone, once.
      if (Status alone = store_.AddCosignature(offered); !alone.ok()) refuse_cosignature(alone);
    } else if (auto fresh = store_.CheckCosignature(offered); !fresh.ok()) {
      refuse_cosignature(fresh.status());
    } else if (*fresh) {
      cosignature = std::move(offered);
    }
  }
  // Kept in the push's durable write when it imports anything, else alone.
  bool cosignature_kept = false;
  Status pushed = MergePush(entry, exchange.getPush(), out.initPushed(), cosignature ? &*cosignature : nullptr,
                            &cosignature_kept);
  if (!pushed.ok()) return Refuse(pushed.message());
  if (cosignature && !cosignature_kept) {
    if (Status alone = store_.AddCosignature(*cosignature); !alone.ok()) refuse_cosignature(alone);
  }
  if (Status pulled = ServePull(entry, *asked, out.initCommits()); !pulled.ok()) return Refuse(pulled.message());
  Status written = WriteCheckpoint(store_, exchange.getSeenSize(), out.initCheckpoint());
  if (!written.ok()) return Refuse("the server cannot sign its log's checkpoint: " + written.message());
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

SyncServer::Session& SyncServer::SessionOf(const RosterEntry& entry) {
  // A kept connection sends no hello before each round: the session starts with the
  // round's first request.
  return sessions_.try_emplace(entry.transport_key, Session{std::chrono::steady_clock::now(), 0, 0, 0}).first->second;
}

void SyncServer::EndSession(const RosterEntry& entry) {
  auto it = sessions_.find(entry.transport_key);
  if (it == sessions_.end()) return;
  const auto now = std::chrono::steady_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second.started);
  const bool idle = it->second.pushed == 0 && it->second.pulled == 0 && it->second.rejected == 0;
  if (quiet_.size() > 10000) quiet_.clear();  // bounded, however many machines
  auto [quiet, first] = quiet_.try_emplace(entry.transport_key);
  if (idle && !first && now - quiet->second.logged < kIdleLogEvery) {
    ++quiet->second.left_out;
  } else {
    std::string line = Who(entry) + ": pushed " + std::to_string(it->second.pushed) + ", pulled " +
                       std::to_string(it->second.pulled) + ", rejected " + std::to_string(it->second.rejected);
    if (quiet->second.left_out > 0) {
      line += ", " + std::to_string(quiet->second.left_out) + " sync" + (quiet->second.left_out == 1 ? "" : "s") +
              " with nothing new since its last line";
    }
    LogLine("sync", line + ", " + std::to_string(ms.count()) + " ms");
    quiet->second = Quiet{now, 0};
  }
  // A writer's session that ended with nothing refused: its district's data here is as
  // current as now (the citywide report shows how old each district's is).
  // It is written at most once a minute per district: a machine syncing every few
  // seconds (sync --every) would otherwise add a durable write to each round, and the
  // report counts staleness in days.
  if (entry.role == Role::kWriter && it->second.rejected == 0) {
    auto recorded = sync_recorded_.find(entry.district);
    if (recorded == sync_recorded_.end() || now - recorded->second >= kSyncTimeEvery) {
      if (Status kept = store_.RecordDistrictSync(entry.district, SystemClock().NowMs()); kept.ok()) {
        sync_recorded_[entry.district] = now;
      } else {
        LogLine("error", "cannot record the sync time of " + entry.district + ": " + kept.message());
      }
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
        zap.Answer([this](const PublicKey& key) {
          bool admitted = ReloadRoster().ok() && Admitted(key) != nullptr;
          if (!admitted) LogRefusedHandshake(key);
          return admitted;
        });
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
