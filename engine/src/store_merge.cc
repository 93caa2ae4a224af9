// A store's merge state and its exchange with other replicas: record clocks and
// tombstones, merging commits from elsewhere (with their checks), the replica's heads
// and state hash, and its unresolved conflicts.
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include "samsync/bundle.h"
#include "samsync/record_fields.h"
#include "store_impl.h"

namespace samsync {
namespace {

std::array<uint8_t, 40> PendingKey(const PublicKey& device, uint64_t seq) {
  std::array<uint8_t, 40> key{};
  std::memcpy(key.data(), device.bytes.data(), 32);
  for (int i = 0; i < 8; ++i) key[32 + i] = static_cast<uint8_t>(seq >> (8 * (7 - i)));
  return key;
}

uint64_t Entries(const lmdb::Txn& txn, MDB_dbi dbi) {
  MDB_stat stat{};
  return mdb_stat(txn.get(), dbi, &stat) == 0 ? stat.ms_entries : 0;
}

// The (type, id) an op names; kCorruption if it names none.
Result<std::pair<RecordType, RecordId>> OpTarget(schema::Op::Reader op) {
  unsigned tag = op.isSet() ? static_cast<unsigned>(op.getSet().getBody().which()) : op.getDelete().getType();
  auto id_data = op.isSet() ? op.getSet().getId() : op.getDelete().getId();
  if (tag >= kRecordTypeCount || id_data.size() != 16) return Status::Corruption("an op names no valid record");
  RecordId id;
  std::memcpy(id.bytes.data(), id_data.begin(), 16);
  return std::make_pair(static_cast<RecordType>(tag), id);
}

// One import: the checks and merges of commits arriving in any order.
//
// It runs in one of two modes. kApply merges, in write transactions the caller may
// commit and renew between commits (Use). kCheck writes nothing: it makes every check
// a merge would, so that a bad bundle is refused before anything is written, and
// keeps in memory what the store would hold: per device its head and last commit,
// and per commit accepted its hlc and a short id (16 bytes a commit, never its ops).
class Importer {
 public:
  enum class Mode { kCheck, kApply };

  Importer(Store::Impl& impl, const Roster& roster, Mode mode, bool signatures_checked)
      : impl_(impl), mode_(mode) {
    rules_.roster = &roster;
    rules_.now_ms = impl.clock.NowMs();
    rules_.signature_checked = signatures_checked;
  }

  Status Start(lmdb::Txn& txn) {
    txn_ = &txn;
    SAMSYNC_RETURN_IF_ERROR(impl_.ReadDevices(txn, devices_, heads_));
    stored_heads_ = heads_;
    SAMSYNC_ASSIGN_OR_RETURN(max_hlc_, impl_.ReadHlc(txn));
    return Status::Ok();
  }

  bool checks_signatures() const { return !rules_.signature_checked; }

  // Goes on in another transaction (after the caller committed the last one).
  void Use(lmdb::Txn& txn) { txn_ = &txn; }

  // The commit whose check failed last (zero if none did).
  const Hash& failed_commit() const { return failed_commit_; }

  // Takes one commit (its signature checked in a batch, or by CheckCommit).
  Status Offer(Commit commit) {
    failed_commit_ = commit.id();
    Status offered = OfferChecked(std::move(commit));
    if (offered.ok()) failed_commit_ = Hash();
    return offered;
  }

 private:
  Status OfferChecked(Commit commit) {
    ++report_.received;
    SAMSYNC_ASSIGN_OR_RETURN(bool held, Held(commit));
    if (held) {
      ++report_.duplicates;
      return Status::Ok();
    }
    if (!impl_.city_wide && commit.district() != impl_.district) {
      return Status(Code::kUnauthorised,
                    commit.Name() + " is of " + commit.district() + "; this store holds " + impl_.district);
    }
    if (!rules_.signature_checked && !commit.SignatureValid()) {
      return Status(Code::kBadSignature, commit.Name() + ": the signature does not verify");
    }
    SAMSYNC_RETURN_IF_ERROR(CheckNotForkedByWaiting(commit));
    if (!Ready(commit)) return Park(commit);
    return Merge(std::move(commit));
  }

 public:

  // Merges the waiting commits that have become ready, until none does. The table is
  // in (device, seq) order, so one pass merges each device's whole run; another pass
  // is needed only when a run waits for another device's commits.
  // A waiting commit that fails its checks once ready (it does not follow its
  // device's chain, or is a second version of a commit) is discarded and reported,
  // so that it cannot block later imports; it was never merged.
  Status Drain() {
    bool progress = true;
    while (progress) {
      progress = false;
      std::vector<std::array<uint8_t, 40>> done;
      SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(*txn_, impl_.tables.pending));
      SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
      while (more) {
        if (cursor.key().size() != 40) return Status::Corruption("a waiting commit has a malformed key");
        auto plain = impl_.Open("pending", cursor.key(), cursor.value());
        if (!plain.ok()) return Status::Corruption("a waiting commit fails authentication: it was altered on disk");
        SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode(plain->span()));
        auto key = PendingKey(commit.author(), commit.seq());
        if (discarded_.contains(commit.id())) {
          // checking: already counted
        } else if (auto held = Held(commit); !held.ok() || *held) {
          if (!held.ok()) Discard(commit, held.status());
          done.push_back(key);
        } else if (Ready(commit)) {
          done.push_back(key);
          Status merged = Merge(Commit::Decode(plain->span()).value());
          if (merged.code() == Code::kIoError || merged.code() == Code::kMapFull) return merged;
          if (merged.ok()) {
            progress = true;
          } else {
            Discard(commit, merged);
          }
        }
        SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
      }
      if (mode_ == Mode::kApply) {
        for (const auto& key : done) SAMSYNC_RETURN_IF_ERROR(txn_->Delete(impl_.tables.pending, key));
      }
    }
    return Status::Ok();
  }

  // Before the caller commits a transaction: the store's clock moves past every
  // commit merged, so the next local commit is later than all of them.
  Status EndTransaction() {
    if (mode_ == Mode::kCheck) return Status::Ok();
    // Never lower it: a local action may have moved it on meanwhile.
    SAMSYNC_ASSIGN_OR_RETURN(uint64_t stored, impl_.ReadHlc(*txn_));
    return impl_.WriteHlc(*txn_, std::max(stored, max_hlc_));
  }

  Result<ImportReport> Finish() {
    SAMSYNC_RETURN_IF_ERROR(EndTransaction());
    report_.waiting = Entries(*txn_, impl_.tables.pending) + parked_unwritten_;
    report_.conflicts = Entries(*txn_, impl_.tables.conflicts);
    return report_;
  }

 private:
  uint64_t Head(const PublicKey& device) const {
    auto it = heads_.find(device);
    return it == heads_.end() ? 0 : it->second;
  }
  uint64_t StoredHead(const PublicKey& device) const {
    auto it = stored_heads_.find(device);
    return it == stored_heads_.end() ? 0 : it->second;
  }

  // Another commit under a held (device, seq). Signed by the device, it proves the
  // device signed two histories (a cloned store or key); otherwise it is a forgery.
  Status Fork(const Commit& commit) const {
    if (!rules_.signature_checked && !commit.SignatureValid()) {
      return Status(Code::kBadSignature, commit.Name() + ": the signature does not verify");
    }
    return Status::Corruption(commit.Name() + ": this store holds another commit as seq " +
                              std::to_string(commit.seq()) +
                              " of that device: it signed two histories (evidence of a cloned device)");
  }

  // Whether the store holds this very commit (or, checking, would by now). Another
  // commit under the same device and seq is a fork.
  Result<bool> Held(const Commit& commit) {
    if (commit.seq() > Head(commit.author())) return false;
    if (mode_ == Mode::kCheck && commit.seq() > StoredHead(commit.author())) {
      const Accepted& accepted = accepted_[commit.author()][commit.seq() - StoredHead(commit.author()) - 1];
      if (accepted.id == commit.id()) return true;
      return Fork(commit);
    }
    SAMSYNC_ASSIGN_OR_RETURN(auto found, txn_->Get(impl_.tables.commit_ids, commit.id().span()));
    if (!found) return Fork(commit);
    return true;
  }

  // Whether everything the commit follows or saw is here.
  bool Ready(const Commit& commit) const {
    if (Head(commit.author()) + 1 != commit.seq()) return false;
    for (const auto& [device, seq] : commit.seen()) {
      if (Head(device) < seq) return false;
    }
    return true;
  }

  // Another version of this commit (same device and seq) waiting here, or (checking)
  // waiting in this import, is a fork.
  Status CheckNotForkedByWaiting(const Commit& commit) {
    auto key = std::make_pair(commit.author(), commit.seq());
    if (auto parked = parked_.find(key); parked != parked_.end() && parked->second != commit.id()) return Fork(commit);
    auto pending_key = PendingKey(commit.author(), commit.seq());
    SAMSYNC_ASSIGN_OR_RETURN(auto waiting, txn_->Get(impl_.tables.pending, pending_key));
    if (waiting) {
      auto plain = impl_.Open("pending", pending_key, *waiting);
      if (!plain.ok()) return Status::Corruption("a waiting commit fails authentication: it was altered on disk");
      SAMSYNC_ASSIGN_OR_RETURN(Commit other, Commit::Decode(plain->span()));
      if (other.id() != commit.id()) return Fork(commit);
    }
    return Status::Ok();
  }

  Status Park(const Commit& commit) {
    // Checked now as far as it can be without its predecessors (all but the chain),
    // so that nothing malformed or unauthorised waits in the store.
    SAMSYNC_RETURN_IF_ERROR(CheckCommitAlone(commit, rules_));
    if (mode_ == Mode::kCheck) {
      if (parked_.emplace(std::make_pair(commit.author(), commit.seq()), commit.id()).second) ++parked_unwritten_;
      return Status::Ok();
    }
    auto key = PendingKey(commit.author(), commit.seq());
    std::vector<uint8_t> sealed;
    impl_.Seal("pending", key, commit.signed_bytes(), sealed);
    return txn_->Put(impl_.tables.pending, key, sealed);
  }

  void Discard(const Commit& commit, const Status& why) {
    if (!discarded_.insert(commit.id()).second) return;
    ++report_.discarded;
    if (report_.discard_reasons.size() < 20) report_.discard_reasons.push_back(why.message());
  }

  // The hlc of `device`'s commit `seq`, which is held (or, checking, accepted).
  Result<uint64_t> HlcOf(const PublicKey& device, uint64_t seq) {
    auto last = last_.find(device);
    if (last != last_.end() && last->second.seq() == seq) return last->second.hlc();
    if (mode_ == Mode::kCheck && seq > StoredHead(device)) return accepted_[device][seq - StoredHead(device) - 1].hlc;
    SAMSYNC_ASSIGN_OR_RETURN(auto head, impl_.ReadHead(*txn_, device));
    if (!head) return Status::Corruption("no head for a device with commits");
    if (head->seq == seq) return head->last_hlc;
    SAMSYNC_ASSIGN_OR_RETURN(Commit commit, impl_.ReadCommit(*txn_, head->number, seq));
    return commit.hlc();
  }

  Status Merge(Commit commit) {
    const PublicKey author = commit.author();
    auto last = last_.find(author);
    if (last == last_.end() && commit.seq() > 1) {
      SAMSYNC_ASSIGN_OR_RETURN(auto head, impl_.ReadHead(*txn_, author));
      if (!head) return Status::Corruption("no head for a device with commits");
      SAMSYNC_ASSIGN_OR_RETURN(Commit previous, impl_.ReadCommit(*txn_, head->number, head->seq));
      last = last_.emplace(author, std::move(previous)).first;
    }
    SAMSYNC_RETURN_IF_ERROR(CheckCommit(commit, last == last_.end() ? nullptr : &last->second, rules_));
    // What it saw must come before it in (hlc, device) order, the order verify
    // re-derives the state in.
    for (const auto& [device, seq] : commit.seen()) {
      SAMSYNC_ASSIGN_OR_RETURN(uint64_t seen_hlc, HlcOf(device, seq));
      if (std::make_pair(seen_hlc, device) >= std::make_pair(commit.hlc(), author)) {
        return Status::Corruption(commit.Name() + ": claims to have seen a later commit (seq " + std::to_string(seq) +
                                  " of " + DeviceName(device) + ")");
      }
    }
    if (mode_ == Mode::kApply) {
      SAMSYNC_RETURN_IF_ERROR(impl_.MergeCommit(*txn_, commit, devices_));
    } else {
      accepted_[author].push_back(Accepted{commit.hlc(), commit.id()});
    }
    ++report_.applied;
    report_.ops += commit.reader().getOps().size();
    heads_[author] = commit.seq();
    max_hlc_ = std::max(max_hlc_, commit.hlc());
    last_.insert_or_assign(author, std::move(commit));
    return Status::Ok();
  }

  struct Accepted {
    uint64_t hlc;
    Hash id;
  };

  Store::Impl& impl_;
  const Mode mode_;
  lmdb::Txn* txn_ = nullptr;
  CommitRules rules_;
  DeviceDirectory devices_;
  VersionVector heads_;         // what the store holds (checking: would hold)
  VersionVector stored_heads_;  // what it held when the import started
  std::map<PublicKey, Commit> last_;  // each device's last merged commit
  std::map<PublicKey, std::vector<Accepted>> accepted_;  // checking: per device, from stored head + 1
  uint64_t parked_unwritten_ = 0;    // checking: commits that would wait
  std::map<std::pair<PublicKey, uint64_t>, Hash> parked_;  // checking: commits that would wait, by (device, seq)
  std::set<Hash> discarded_;
  uint64_t max_hlc_ = 0;
  ImportReport report_;
  Hash failed_commit_;
};

// Feeds `importer` the commits `next` yields, a batch (bounded in count and bytes) at a
// time, the next batch's signatures checked while this one merges
// (UseInBatchesCheckedAhead). `after_batch` runs after each batch is offered, with
// its bytes.
Status FeedInBatches(Importer& importer, const std::function<Result<std::optional<Commit>>()>& next,
                     const std::function<Status(uint64_t bytes)>& after_batch = nullptr) {
  constexpr size_t kBatchCommits = 256;
  constexpr size_t kBatchBytes = size_t{2} << 20;
  bool more = true;
  auto read = [&](std::vector<Commit>& batch) -> Status {
    size_t bytes = 0;
    while (more && batch.size() < kBatchCommits && bytes < kBatchBytes) {
      SAMSYNC_ASSIGN_OR_RETURN(auto commit, next());
      if (!commit) {
        more = false;
        break;
      }
      bytes += commit->signed_bytes().size();
      batch.push_back(std::move(*commit));
    }
    return Status::Ok();
  };
  auto offer = [&](std::vector<Commit>& batch) -> Status {
    uint64_t bytes = 0;
    for (Commit& commit : batch) {
      bytes += commit.signed_bytes().size();
      SAMSYNC_RETURN_IF_ERROR(importer.Offer(std::move(commit)));
    }
    return after_batch ? after_batch(bytes) : Status::Ok();
  };
  return UseInBatchesCheckedAhead(read, offer, importer.checks_signatures());
}

Status NeedRoster(const std::optional<Roster>& roster) {
  if (roster) return Status::Ok();
  return Status::Invalid("this store has no roster to check other devices' commits against; install the city's "
                         "roster first (samsync roster import FILE)");
}

}  // namespace

Status Store::Impl::ReadDevices(const lmdb::Txn& txn, DeviceDirectory& devices, VersionVector& heads) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, tables.heads));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
  while (more) {
    auto device = Bytes32::FromBytes(cursor.key(), "device key");
    if (!device.ok()) return Status::Corruption("a device head has a malformed key");
    SAMSYNC_ASSIGN_OR_RETURN(auto head, ReadHead(txn, *device));
    devices.Add(*device, head->number);
    heads[*device] = head->seq;
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return Status::Ok();
}

Result<std::optional<RecordClock>> Store::Impl::ReadClock(const lmdb::Txn& txn, RecordType type,
                                                          const RecordId& id) const {
  auto key = RecordKey(type, id);
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.clocks, key));
  if (!sealed) return std::optional<RecordClock>();
  std::string what = "the clock of " + std::string(RecordTypeName(type)) + " " + id.ToText();
  auto plain = OpenMessage("clocks", kClocksCoding, key, *sealed);
  if (!plain.ok()) return Status::Corruption(what + " " + plain.status().message());
  auto stored = RecordClock::Decode(*plain);
  if (!stored.ok() || stored->type != type) return Status::Corruption(what + " does not decode");
  return std::optional<RecordClock>(std::move(stored).value());
}

Result<std::optional<RecordClock>> Store::Impl::FindClock(const lmdb::Txn& txn, const RecordId& id) const {
  for (RecordType type : AllRecordTypes()) {
    SAMSYNC_ASSIGN_OR_RETURN(auto stored, ReadClock(txn, type, id));
    if (stored) return stored;
  }
  return std::optional<RecordClock>();
}

Status Store::Impl::WriteClock(lmdb::Txn& txn, const RecordId& id, const RecordClock& stored,
                               const DeviceDirectory& devices) {
  SAMSYNC_ASSIGN_OR_RETURN(StateHasher * state, StateIn(txn));
  auto key = RecordKey(stored.type, id);
  std::vector<uint8_t> sealed;
  SAMSYNC_RETURN_IF_ERROR(SealMessage("clocks", kClocksCoding, key, stored.Encode(), sealed));
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.clocks, key, sealed));
  SAMSYNC_ASSIGN_OR_RETURN(auto listed, txn.Get(tables.conflicts, key));
  if (listed) {
    auto element = Hash::FromBytes(*listed);
    if (!element.ok()) return Status::Corruption("the conflict list's entry for " + id.ToText() + " is malformed");
    state->RemoveElement(*element);
  }
  if (auto element = StateHasher::ConflictElement(stored.type, id, stored, devices)) {
    state->AddElement(*element);
    return txn.Put(tables.conflicts, key, element->span());
  }
  return listed ? txn.Delete(tables.conflicts, key) : Status::Ok();
}

Result<StateHasher*> Store::Impl::StateIn(lmdb::Txn& txn) {
  if (pending_state && pending_state->first == txn.serial()) return &pending_state->second;
  pending_state.reset();  // an aborted transaction's
  SAMSYNC_ASSIGN_OR_RETURN(auto state, ReadState(txn));
  if (!state) {
    // A store made before the lanes were kept: derive them, and give each conflict
    // its element (it had none).
    std::vector<std::pair<RecordKeyBytes, Hash>> elements;
    SAMSYNC_ASSIGN_OR_RETURN(state, ComputeState(txn, &elements));
    for (const auto& [key, element] : elements) SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.conflicts, key, element.span()));
  }
  pending_state.emplace(txn.serial(), *state);
  txn.BeforeCommit([this, serial = txn.serial()](lmdb::Txn& committing) -> Status {
    if (!pending_state || pending_state->first != serial) {
      return Status::Corruption("the state hash of a transaction was lost before it committed");
    }
    std::vector<uint8_t> sealed;
    Seal("meta", AsBytes("state"), pending_state->second.Serialize(), sealed);
    pending_state.reset();
    return committing.Put(tables.meta, AsBytes("state"), sealed);
  });
  return &pending_state->second;
}

Result<std::optional<StateHasher>> Store::Impl::ReadState(const lmdb::Txn& txn) const {
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.meta, AsBytes("state")));
  if (!sealed) return std::optional<StateHasher>();
  auto plain = Open("meta", AsBytes("state"), *sealed);
  if (!plain.ok()) return Status::Corruption("the stored state hash fails authentication: it was altered on disk");
  auto state = StateHasher::Deserialize(plain->span());
  if (!state) return Status::Corruption("the stored state hash is malformed");
  return state;
}

Result<StateHasher> Store::Impl::ComputeState(const lmdb::Txn& txn,
                                              std::vector<std::pair<RecordKeyBytes, Hash>>* conflict_elements) const {
  DeviceDirectory devices;
  VersionVector heads;
  SAMSYNC_RETURN_IF_ERROR(ReadDevices(txn, devices, heads));
  StateHasher state;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor records, lmdb::Cursor::Open(txn, tables.records));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, records.Seek({}));
  while (more) {
    lmdb::Bytes key = records.key();
    if (key.size() != 17 || key[0] >= kRecordTypeCount) return Status::Corruption("a record has a malformed key");
    RecordId id;
    std::memcpy(id.bytes.data(), key.data() + 1, 16);
    SAMSYNC_ASSIGN_OR_RETURN(auto record, DecodeRecord(static_cast<RecordType>(key[0]), id, key, records.value()));
    state.Add(*record);
    SAMSYNC_ASSIGN_OR_RETURN(more, records.Next());
  }
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor conflicts, lmdb::Cursor::Open(txn, tables.conflicts));
  SAMSYNC_ASSIGN_OR_RETURN(more, conflicts.Seek({}));
  while (more) {
    lmdb::Bytes key = conflicts.key();
    if (key.size() != 17 || key[0] >= kRecordTypeCount) return Status::Corruption("a conflict has a malformed key");
    RecordId id;
    std::memcpy(id.bytes.data(), key.data() + 1, 16);
    auto type = static_cast<RecordType>(key[0]);
    SAMSYNC_ASSIGN_OR_RETURN(auto held, ReadClock(txn, type, id));
    auto element = held ? StateHasher::ConflictElement(type, id, *held, devices) : std::nullopt;
    if (!element) return Status::Corruption("a conflict is listed for " + id.ToText() + ", whose clock has none");
    state.AddElement(*element);
    if (conflict_elements != nullptr) conflict_elements->emplace_back(RecordKey(type, id), *element);
    SAMSYNC_ASSIGN_OR_RETURN(more, conflicts.Next());
  }
  return state;
}

Status Store::Impl::MergeCommit(lmdb::Txn& txn, const Commit& commit, DeviceDirectory& devices) {
  auto ops = commit.reader().getOps();
  // In the city's store every district's records live side by side: a commit may only
  // touch records of its own district, which is checked for every op before anything
  // is written. The merge below reuses the records read here, except where an earlier
  // op of the same commit has changed the record since.
  std::vector<std::optional<Record>> read_first;
  std::set<RecordId> changed;
  if (city_wide) {
    std::string own = commit.district();
    read_first.reserve(ops.size());
    for (auto op : ops) {
      auto target = OpTarget(op);
      if (!target.ok()) return target.status().WithContext(commit.Name());
      SAMSYNC_ASSIGN_OR_RETURN(auto record, ReadRecord(txn, target->first, target->second));
      if (record && record->district() != own) {
        return Status(Code::kUnauthorised, commit.Name() + ": changes record " + target->second.ToText() + " of " +
                                               record->district() + ", not of its own district " + own);
      }
      read_first.push_back(std::move(record));
    }
  }
  CausalPast past = CausalPast::Of(commit, devices);
  const Dot dot{past.self, commit.seq(), commit.hlc()};
  for (unsigned i = 0; i < ops.size(); ++i) {
    auto op = ops[i];
    auto target = OpTarget(op);
    if (!target.ok()) return target.status().WithContext(commit.Name());
    auto [type, id] = *target;
    std::optional<Record> record;
    if (city_wide && !changed.contains(id)) {
      record = std::move(read_first[i]);
    } else {
      SAMSYNC_ASSIGN_OR_RETURN(record, ReadRecord(txn, type, id));
    }
    if (city_wide) changed.insert(id);
    SAMSYNC_ASSIGN_OR_RETURN(auto stored, ReadClock(txn, type, id));
    auto merged = MergeOp(op, record ? &*record : nullptr, stored ? &*stored : nullptr, dot, past, devices);
    if (!merged.ok()) return merged.status().WithContext(commit.Name());
    if (merged->record) {
      SAMSYNC_RETURN_IF_ERROR(WriteRecord(txn, *merged->record, record ? &*record : nullptr));
    } else if (record) {
      SAMSYNC_RETURN_IF_ERROR(RemoveRecord(txn, *record));
    }
    SAMSYNC_RETURN_IF_ERROR(WriteClock(txn, id, merged->clock, devices));
  }
  return WriteCommit(txn, commit, past.self);
}

Result<ImportReport> Store::ImportCommits(const std::function<Result<std::optional<Commit>>()>& next,
                                          Hash* refused, const Cosignature* cosignature) {
  if (cosignature != nullptr && !impl_->transparency_log) {
    return Status::Invalid("this store keeps no transparency log, nor cosignatures of it");
  }
  if (impl_->read_only) return Status::Invalid("the store was opened read-only");
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto roster, impl_->ReadRoster(txn));
  SAMSYNC_RETURN_IF_ERROR(NeedRoster(roster));
  Importer importer(*impl_, *roster, Importer::Mode::kApply, /*signatures_checked=*/false);
  SAMSYNC_RETURN_IF_ERROR(importer.Start(txn));
  Status fed = FeedInBatches(importer, next);
  if (fed.ok()) fed = importer.Drain();
  if (!fed.ok()) {
    if (refused != nullptr) *refused = importer.failed_commit();
    return fed;
  }
  SAMSYNC_ASSIGN_OR_RETURN(ImportReport report, importer.Finish());
  // The log's server signs the checkpoint of what it now holds in the same durable
  // write, so that the witness step after a push finds it signed (one fsync, not two).
  if (impl_->transparency_log && report.applied > 0) SAMSYNC_RETURN_IF_ERROR(impl_->SignCheckpoint(txn).status());
  if (cosignature != nullptr) SAMSYNC_RETURN_IF_ERROR(impl_->KeepCosignature(txn, *cosignature));
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  return report;
}

Result<Store::BundleStats> Store::ExportBundle(const std::string& path, const VersionVector& have) const {
  BundleHeader header;
  header.district = impl_->district;
  header.exporter = impl_->device_key->public_key();
  header.created_ms = impl_->clock.NowMs();
  header.base = have;
  SAMSYNC_ASSIGN_OR_RETURN(BundleWriter writer, BundleWriter::Create(path, header));
  BundleStats stats;
  SAMSYNC_ASSIGN_OR_RETURN(stats.heads, Heads());
  for (const auto& [device, seq] : have) {
    auto& held = stats.heads[device];
    held = std::max(held, seq);
  }
  Status written;
  SAMSYNC_RETURN_IF_ERROR(CommitsAfter(have, [&](const Commit& commit) {
    written = writer.Add(commit);
    ++stats.commits;
    stats.ops += commit.reader().getOps().size();
    return written.ok();
  }));
  SAMSYNC_RETURN_IF_ERROR(written);
  SAMSYNC_RETURN_IF_ERROR(writer.Finish());
  stats.bytes = writer.bytes_written();
  return stats;
}

namespace {

// A private copy of a file in the store's folder, removed when it goes.
class PrivateCopy {
 public:
  static Result<PrivateCopy> Make(const std::string& from, const std::string& dir) {
    PrivateCopy copy;
    uint8_t nonce[8];
    randombytes_buf(nonce, sizeof nonce);
    copy.path_ = dir + "/import-" + Sha256(nonce).ToHex().substr(0, 16) + ".partial";
    std::error_code error;
    if (!std::filesystem::exists(from, error)) return Status::NotFound("no bundle " + from);
    std::filesystem::copy_file(from, copy.path_, std::filesystem::copy_options::overwrite_existing, error);
    if (!error) {
      std::filesystem::permissions(copy.path_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                   error);
    }
    if (error) return Status::Io("cannot copy " + from + " into the store's folder: " + error.message());
    return copy;
  }
  PrivateCopy() = default;
  PrivateCopy(PrivateCopy&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ~PrivateCopy() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An exclusive lock on the store's imports (another process's included), held while
// it lives: the two passes of an import must see the same store.
class ImportLock {
 public:
  static Result<ImportLock> Take(const std::string& dir) {
    ImportLock lock;
    lock.fd_ = ::open((dir + "/import.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock.fd_ < 0 || ::flock(lock.fd_, LOCK_EX) != 0) {
      return Status::Io("cannot lock the store for an import: " + std::string(std::strerror(errno)));
    }
    return lock;
  }
  ImportLock() = default;
  ImportLock(ImportLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ~ImportLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  int fd_ = -1;
};

}  // namespace

Result<ImportReport> Store::ImportBundle(const std::string& path) {
  if (impl_->read_only) return Status::Invalid("the store was opened read-only");
  SAMSYNC_ASSIGN_OR_RETURN(ImportLock lock, ImportLock::Take(impl_->dir));
  {
    SAMSYNC_ASSIGN_OR_RETURN(BundleReader reader, BundleReader::Open(path));
    if (reader.header().district != impl_->district) {
      return Status::Invalid("the bundle is of " + reader.header().district + "; this store holds " + impl_->district);
    }
  }
  // Two passes over a private copy (so the bytes checked are the bytes applied):
  // the first makes every check and writes nothing, so a bad bundle is refused whole;
  // the second merges in transactions of bounded size, so memory stays flat however
  // large the bundle. A crash in the second leaves a consistent prefix, and importing
  // the bundle again completes it.
  SAMSYNC_ASSIGN_OR_RETURN(PrivateCopy copy, PrivateCopy::Make(path, impl_->dir));
  // Errors name the file the user gave, not the copy.
  auto named = [&](Status status) {
    std::string message = status.message();
    for (size_t at = message.find(copy.path()); at != std::string::npos; at = message.find(copy.path(), at)) {
      message.replace(at, copy.path().size(), path);
      at += path.size();
    }
    return Status(status.code(), std::move(message));
  };
  {
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
    SAMSYNC_ASSIGN_OR_RETURN(auto roster, impl_->ReadRoster(txn));
    SAMSYNC_RETURN_IF_ERROR(NeedRoster(roster));
    SAMSYNC_ASSIGN_OR_RETURN(BundleReader reader, BundleReader::Open(copy.path()));
    Importer checker(*impl_, *roster, Importer::Mode::kCheck, /*signatures_checked=*/false);
    SAMSYNC_RETURN_IF_ERROR(checker.Start(txn));
    SAMSYNC_RETURN_IF_ERROR(named(FeedInBatches(checker, [&reader] { return reader.Next(); })));
    SAMSYNC_RETURN_IF_ERROR(checker.Drain());
  }
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto roster, impl_->ReadRoster(txn));
  SAMSYNC_RETURN_IF_ERROR(NeedRoster(roster));
  SAMSYNC_ASSIGN_OR_RETURN(BundleReader reader, BundleReader::Open(copy.path()));
  Importer importer(*impl_, *roster, Importer::Mode::kApply, /*signatures_checked=*/true);
  SAMSYNC_RETURN_IF_ERROR(importer.Start(txn));
  // About 5 bytes of store pages per byte of commit: ~10 MiB of dirty pages at most.
  constexpr uint64_t kBytesPerTransaction = uint64_t{2} << 20;
  uint64_t pending_bytes = 0;
  auto apply = FeedInBatches(importer, [&reader] { return reader.Next(); }, [&](uint64_t bytes) {
    pending_bytes += bytes;
    if (pending_bytes < kBytesPerTransaction) return Status::Ok();
    pending_bytes = 0;
    SAMSYNC_RETURN_IF_ERROR(importer.EndTransaction());
    SAMSYNC_RETURN_IF_ERROR(txn.Commit());
    SAMSYNC_ASSIGN_OR_RETURN(txn, lmdb::Txn::Begin(impl_->env, false));
    importer.Use(txn);
    return Status::Ok();
  });
  SAMSYNC_RETURN_IF_ERROR(named(apply));
  SAMSYNC_RETURN_IF_ERROR(importer.Drain());
  SAMSYNC_ASSIGN_OR_RETURN(ImportReport report, importer.Finish());
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  return report;
}

Result<VersionVector> Store::Heads() const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  DeviceDirectory devices;
  VersionVector heads;
  SAMSYNC_RETURN_IF_ERROR(impl_->ReadDevices(txn, devices, heads));
  return heads;
}

Result<ReplicaSummary> Store::Summary() const {
  ReplicaSummary summary;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  DeviceDirectory devices;
  SAMSYNC_RETURN_IF_ERROR(impl_->ReadDevices(txn, devices, summary.heads));
  for (const auto& [device, seq] : summary.heads) summary.commits += seq;
  SAMSYNC_ASSIGN_OR_RETURN(auto state, impl_->ReadState(txn));
  if (!state) {
    SAMSYNC_ASSIGN_OR_RETURN(state, impl_->ComputeState(txn));
  }
  summary.state_hash = state->Finish();
  summary.records = Entries(txn, impl_->tables.records);
  summary.conflicts = Entries(txn, impl_->tables.conflicts);
  summary.waiting = Entries(txn, impl_->tables.pending);
  return summary;
}

Result<std::vector<Conflict>> Store::Conflicts() const {
  std::vector<Conflict> out;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  DeviceDirectory devices;
  VersionVector heads;
  SAMSYNC_RETURN_IF_ERROR(impl_->ReadDevices(txn, devices, heads));
  // The write at `dot` to record (type, id): who, when, and what it set.
  auto describe = [&](const Dot& dot, RecordType type, const RecordId& id) -> Result<ConflictWrite> {
    ConflictWrite write;
    write.device = devices.KeyOf(dot.device);
    write.seq = dot.seq;
    write.time_ms = Hlc::Millis(dot.hlc);
    SAMSYNC_ASSIGN_OR_RETURN(Commit commit, impl_->ReadCommit(txn, dot.device, dot.seq));
    write.commit = commit.id();
    for (auto op : commit.reader().getOps()) {
      auto target = OpTarget(op);
      if (!target.ok() || target->first != type || target->second != id || !op.isSet()) continue;
      write.value = Record::CopyOf(op.getSet());
      for (uint16_t ordinal : op.getFields()) write.fields.push_back(ordinal);
    }
    return write;
  };
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.conflicts));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
  while (more) {
    lmdb::Bytes key = cursor.key();
    if (key.size() != 17 || key[0] >= kRecordTypeCount) return Status::Corruption("a conflict has a malformed key");
    auto type = static_cast<RecordType>(key[0]);
    RecordId id;
    std::memcpy(id.bytes.data(), key.data() + 1, 16);
    SAMSYNC_ASSIGN_OR_RETURN(auto clock, impl_->ReadClock(txn, type, id));
    if (!clock) return Status::Corruption("a conflict is listed for " + id.ToText() + ", which has no clock");
    if (clock->deleted) {
      Conflict conflict{type, id, true, 0, std::nullopt, {}};
      SAMSYNC_ASSIGN_OR_RETURN(conflict.deleted_by, describe(clock->deleted_by, type, id));
      for (const Dot& dot : clock->LostEdits()) {
        SAMSYNC_ASSIGN_OR_RETURN(ConflictWrite write, describe(dot, type, id));
        conflict.writes.push_back(std::move(write));
      }
      // By device key: an order every replica shares (numbers are local).
      std::sort(conflict.writes.begin(), conflict.writes.end(), [](const ConflictWrite& a, const ConflictWrite& b) {
        return std::tie(a.device, a.seq) < std::tie(b.device, b.seq);
      });
      out.push_back(std::move(conflict));
    } else {
      for (uint16_t field : clock->ConflictedFields()) {
        Conflict conflict{type, id, false, field, std::nullopt, {}};
        for (const Dot& dot : clock->fields[field]) {
          SAMSYNC_ASSIGN_OR_RETURN(ConflictWrite write, describe(dot, type, id));
          conflict.writes.push_back(std::move(write));
        }
        out.push_back(std::move(conflict));
      }
    }
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return out;
}

}  // namespace samsync
