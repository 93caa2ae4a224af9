// A store's history: device heads, the hybrid logical clock, commits and their
// indexes, the installed roster, verification and the ordered walk over commits.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>

#include "samsync/schema/local.capnp.h"
#include "store_impl.h"

namespace samsync {
namespace {

// DeviceHead, sealed: number (4) ‖ seq (8) ‖ last id (32) ‖ last hlc (8), big-endian.
constexpr size_t kHeadBytes = 52;


// Walks the commits of every device in (hlc, author) order: the order state is
// derived in. Each device's commits are read in seq order through its own cursor,
// so memory stays at one commit per device.
class MergedCommits {
 public:
  struct Stream {
    PublicKey device;
    DeviceHead head;
    lmdb::Cursor cursor;
    std::optional<Commit> current;
    bool started = false;
    uint64_t first_seq = 1;
  };

  MergedCommits(const Store::Impl& impl, const lmdb::Txn& txn) : impl_(impl), txn_(txn) {}

  // Opens one stream per device (of `only`, if given), starting after `after`'s seq
  // for it (or at its first commit). Fails on a store read error or a corrupt head.
  Status Open(const VersionVector& after = {}, const std::set<PublicKey>* only = nullptr) {
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor heads, lmdb::Cursor::Open(txn_, impl_.tables.heads));
    SAMSYNC_ASSIGN_OR_RETURN(bool more, heads.Seek({}));
    while (more) {
      auto device = Bytes32::FromBytes(heads.key(), "device key");
      if (!device.ok()) return Status::Corruption("a device head has a malformed key");
      if (only != nullptr && !only->contains(*device)) {
        SAMSYNC_ASSIGN_OR_RETURN(more, heads.Next());
        continue;
      }
      SAMSYNC_ASSIGN_OR_RETURN(auto head, impl_.ReadHead(txn_, *device));
      SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn_, impl_.tables.commits));
      auto from = after.find(*device);
      uint64_t first = from == after.end() ? 1 : from->second + 1;
      streams_.push_back(Stream{*device, *head, std::move(cursor), std::nullopt, false, first});
      SAMSYNC_ASSIGN_OR_RETURN(more, heads.Next());
    }
    for (Stream& stream : streams_) SAMSYNC_RETURN_IF_ERROR(Advance(stream));
    return Status::Ok();
  }

  const std::vector<Stream>& streams() const { return streams_; }

  // The stream whose current commit comes next, or nullptr at the end.
  Stream* Peek() {
    Stream* best = nullptr;
    for (Stream& stream : streams_) {
      if (!stream.current) continue;
      if (best == nullptr || std::make_pair(stream.current->hlc(), stream.current->author()) <
                                 std::make_pair(best->current->hlc(), best->current->author())) {
        best = &stream;
      }
    }
    return best;
  }

  // Moves `stream` to its next stored commit (or to its end).
  Status Advance(Stream& stream) {
    auto prefix = CommitKey(stream.head.number, 0);
    bool more = false;
    if (!stream.started) {
      auto first = CommitKey(stream.head.number, stream.first_seq);
      SAMSYNC_ASSIGN_OR_RETURN(more, stream.cursor.Seek(first));
      stream.started = true;
    } else {
      SAMSYNC_ASSIGN_OR_RETURN(more, stream.cursor.Next());
    }
    stream.current.reset();
    if (!more) return Status::Ok();
    lmdb::Bytes key = stream.cursor.key();
    if (key.size() != 12 || std::memcmp(key.data(), prefix.data(), 4) != 0) return Status::Ok();
    uint64_t seq = GetU64(key.data() + 4);
    std::string where = DeviceName(stream.device) + " seq " + std::to_string(seq);
    auto commit = impl_.OpenCommit(key, stream.cursor.value(), where);
    if (!commit.ok()) return commit.status();
    if (commit->author() != stream.device || commit->seq() != seq) {
      return Status::Corruption("the commit stored as " + where + " is " + commit->Name());
    }
    stream.current = std::move(commit).value();
    return Status::Ok();
  }

 private:
  const Store::Impl& impl_;
  const lmdb::Txn& txn_;
  std::vector<Stream> streams_;
};

}  // namespace

std::string DeviceName(const PublicKey& key) { return "device " + key.ToHex().substr(0, 16); }

namespace {

// Read once: glibc reads it from /sys on every call, a cost a one-commit push notices.
size_t Cores() {
  static const size_t cores = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  return cores;
}

// Checks the signatures of `commits` on every core but the caller's, while the caller
// goes on with other work; until Finish returns, only the checks may touch `commits`.
// Finish has the caller check those no worker has taken yet, then waits for the
// workers; destruction finishes. Fewer than kMinCommits commits are all checked by
// the caller in Finish, where a thread would cost more than it saves.
class SignatureChecks {
 public:
  static constexpr size_t kMinCommits = 16;
  explicit SignatureChecks(const std::vector<Commit>& commits) : commits_(commits) {
    if (commits.size() < kMinCommits) return;
    for (size_t w = 1; w < Cores(); ++w) workers_.emplace_back([this] { Run(); });
  }
  ~SignatureChecks() { Finish(); }
  SignatureChecks(const SignatureChecks&) = delete;
  SignatureChecks& operator=(const SignatureChecks&) = delete;

  void Finish() {
    Run();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
  }

 private:
  void Run() {
    for (size_t i = next_.fetch_add(1); i < commits_.size(); i = next_.fetch_add(1)) commits_[i].SignatureValid();
  }

  const std::vector<Commit>& commits_;
  std::atomic<size_t> next_{0};
  std::vector<std::thread> workers_;
};

}  // namespace

void CheckSignaturesInParallel(const std::vector<Commit>& commits) { SignatureChecks(commits).Finish(); }

Status UseInBatchesCheckedAhead(const std::function<Status(std::vector<Commit>&)>& read,
                                const std::function<Status(std::vector<Commit>&)>& use, bool check_signatures) {
  std::vector<Commit> batch, ahead;
  SAMSYNC_RETURN_IF_ERROR(read(batch));
  if (check_signatures) CheckSignaturesInParallel(batch);
  while (!batch.empty()) {
    Status read_ahead = read(ahead);
    if (!read_ahead.ok()) ahead.clear();
    {
      std::optional<SignatureChecks> checks;
      if (check_signatures) checks.emplace(ahead);
      SAMSYNC_RETURN_IF_ERROR(use(batch));
    }
    SAMSYNC_RETURN_IF_ERROR(read_ahead);
    batch.clear();  // `use` may have moved the commits out
    std::swap(batch, ahead);
  }
  return Status::Ok();
}

std::array<uint8_t, 12> CommitKey(uint32_t device_number, uint64_t seq) {
  std::array<uint8_t, 12> key{};
  PutU32(key.data(), device_number);
  PutU64(key.data() + 4, seq);
  return key;
}

Result<std::optional<DeviceHead>> Store::Impl::ReadHead(const lmdb::Txn& txn, const PublicKey& device) const {
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.heads, device.span()));
  if (!sealed) return std::optional<DeviceHead>();
  auto plain = Open("heads", device.span(), *sealed);
  if (!plain.ok() || plain->span().size() != kHeadBytes) {
    return Status::Corruption("the head of " + DeviceName(device) + " fails authentication");
  }
  const uint8_t* p = plain->span().data();
  DeviceHead head;
  head.number = GetU32(p);
  head.seq = GetU64(p + 4);
  std::memcpy(head.last_id.bytes.data(), p + 12, 32);
  head.last_hlc = GetU64(p + 44);
  return std::optional<DeviceHead>(head);
}

Status Store::Impl::WriteHead(lmdb::Txn& txn, const PublicKey& device, const DeviceHead& head) {
  uint8_t plain[kHeadBytes];
  PutU32(plain, head.number);
  PutU64(plain + 4, head.seq);
  std::memcpy(plain + 12, head.last_id.bytes.data(), 32);
  PutU64(plain + 44, head.last_hlc);
  std::vector<uint8_t> sealed;
  Seal("heads", device.span(), plain, sealed);
  return txn.Put(tables.heads, device.span(), sealed);
}

Result<uint64_t> Store::Impl::ReadHlc(const lmdb::Txn& txn) const {
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.meta, AsBytes("hlc")));
  if (!sealed) return uint64_t{0};
  auto plain = Open("meta", AsBytes("hlc"), *sealed);
  if (!plain.ok() || plain->span().size() != 8) return Status::Corruption("the store's clock fails authentication");
  return GetU64(plain->span().data());
}

Status Store::Impl::WriteHlc(lmdb::Txn& txn, uint64_t hlc) {
  uint8_t plain[8];
  PutU64(plain, hlc);
  std::vector<uint8_t> sealed;
  Seal("meta", AsBytes("hlc"), plain, sealed);
  return txn.Put(tables.meta, AsBytes("hlc"), sealed);
}

Result<uint32_t> Store::Impl::NextDeviceNumber(const lmdb::Txn& txn) const {
  MDB_stat stat{};
  int rc = mdb_stat(txn.get(), tables.heads, &stat);
  if (rc != 0) return lmdb::ToStatus(rc, "cannot count devices");
  return static_cast<uint32_t>(stat.ms_entries + 1);
}

Status Store::Impl::WriteCommit(lmdb::Txn& txn, const Commit& commit, uint32_t device_number) {
  auto key = CommitKey(device_number, commit.seq());
  std::vector<uint8_t> sealed;
  SAMSYNC_RETURN_IF_ERROR(SealMessage("commits", kCommitsCoding, key, commit.signed_bytes(), sealed));
  // Not MDB_APPEND: another device's commits may sort after this one's.
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.commits, key, sealed));
  sealed.clear();
  Seal("commit_ids", commit.id().span(), key, sealed);
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.commit_ids, commit.id().span(), sealed));
  for (auto op : commit.reader().getOps()) {
    auto id = op.isSet() ? op.getSet().getId() : op.getDelete().getId();
    if (id.size() != 16) continue;
    std::array<uint8_t, 28> log_key{};
    std::memcpy(log_key.data(), id.begin(), 16);
    std::memcpy(log_key.data() + 16, key.data(), 12);
    SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.record_log, log_key, {}));
  }
  if (transparency_log) SAMSYNC_RETURN_IF_ERROR(AppendToLog(txn, commit.id()));
  return WriteHead(txn, commit.author(), DeviceHead{device_number, commit.seq(), commit.id(), commit.hlc()});
}

Result<Commit> Store::Impl::ReadCommit(const lmdb::Txn& txn, uint32_t device_number, uint64_t seq) const {
  auto key = CommitKey(device_number, seq);
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.commits, key));
  std::string where = "device number " + std::to_string(device_number) + " seq " + std::to_string(seq);
  if (!sealed) return Status::NotFound("no commit " + where);
  return OpenCommit(key, *sealed, where);
}

Result<Commit> Store::Impl::OpenCommit(lmdb::Bytes key, lmdb::Bytes sealed, const std::string& where) const {
  auto plain = OpenMessage("commits", kCommitsCoding, key, sealed);
  if (!plain.ok()) return Status::Corruption("the commit of " + where + " " + plain.status().message());
  auto commit = Commit::Decode(*plain);
  if (!commit.ok()) return commit.status().WithContext("the commit of " + where);
  return commit;
}

Result<std::optional<Roster>> Store::Impl::ReadRoster(const lmdb::Txn& txn) const {
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.meta, AsBytes("roster")));
  if (!sealed) return std::optional<Roster>();
  {
    std::lock_guard lock(roster_mutex_);
    if (roster_read_ && std::ranges::equal(roster_read_->first, *sealed)) return std::optional<Roster>(roster_read_->second);
  }
  auto plain = Open("meta", AsBytes("roster"), *sealed);
  if (!plain.ok()) return Status::Corruption("the installed roster fails authentication");
  auto roster = Roster::Open(plain->span());
  if (!roster.ok()) return roster.status().WithContext("the installed roster");
  std::lock_guard lock(roster_mutex_);
  roster_read_.emplace(std::vector<uint8_t>(sealed->begin(), sealed->end()), *roster);
  return std::optional<Roster>(std::move(roster).value());
}

const PublicKey& Store::device_key() const { return impl_->device_key->public_key(); }
const PublicKey& Store::transport_key() const { return impl_->transport_key->public_key(); }
const TransportKey& Store::transport_key_pair() const { return *impl_->transport_key; }

Status Store::InstallRoster(std::span<const uint8_t> signed_roster) {
  if (impl_->read_only) return ReadOnlyRefusal();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto installed, impl_->ReadRoster(txn));
  const PublicKey* pinned = installed ? &installed->root_key() : nullptr;
  SAMSYNC_ASSIGN_OR_RETURN(Roster next, Roster::Open(signed_roster, pinned));
  if (installed) SAMSYNC_RETURN_IF_ERROR(installed->CheckReplacement(next));
  std::vector<uint8_t> sealed;
  impl_->Seal("meta", AsBytes("roster"), next.signed_bytes(), sealed);
  SAMSYNC_RETURN_IF_ERROR(txn.Put(impl_->tables.meta, AsBytes("roster"), sealed));
  if (impl_->transparency_log) SAMSYNC_RETURN_IF_ERROR(impl_->KeepRoster(txn, next));
  return txn.Commit();
}

Result<std::optional<Roster>> Store::InstalledRoster() const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  return impl_->ReadRoster(txn);
}

Result<VerifyReport> Store::Verify(const VerifyOptions& options) const {
  VerifyReport report;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  auto roster = impl_->ReadRoster(txn);
  if (!roster.ok()) {
    report.failure = roster.status();
    return report;
  }
  if (*roster) report.roster_version = (*roster)->version();
  CommitRules rules;
  rules.roster = *roster ? &**roster : nullptr;
  rules.now_ms = impl_->clock.NowMs();
  rules.max_skew_ms = options.max_skew_ms;

  MergedCommits merged(*impl_, txn);
  if (Status opened = merged.Open(); !opened.ok()) {
    report.failure = opened;
    return report;
  }
  report.devices = merged.streams().size();
  std::map<PublicKey, Commit> previous;  // each device's last commit checked
  DerivedState derived;
  for (const auto& stream : merged.streams()) derived.AddDevice(stream.device, stream.head.number);
  // Signatures are most of the work and need nothing but the commit, so while one
  // batch of commits (in merge order) goes through the chain, clock, roster and state
  // checks in order on this thread, the next batch's signatures are checked on the
  // other cores.
  constexpr size_t kBatch = 256;
  Status read_error;  // reported after the commits before it
  auto read = [&](std::vector<Commit>& batch) {
    while (read_error.ok() && batch.size() < kBatch) {
      MergedCommits::Stream* stream = merged.Peek();
      if (stream == nullptr) break;
      batch.push_back(std::move(*stream->current));
      read_error = merged.Advance(*stream);
    }
    return Status::Ok();
  };
  auto check = [&](std::vector<Commit>& batch) {
    for (Commit& commit : batch) {
      auto prev = previous.find(commit.author());
      Status checked = CheckCommit(commit, prev == previous.end() ? nullptr : &prev->second, rules);
      if (checked.ok()) checked = derived.Apply(commit);
      if (!checked.ok()) return checked;
      ++report.commits;
      report.ops += commit.reader().getOps().size();
      previous.insert_or_assign(commit.author(), std::move(commit));
    }
    return Status::Ok();
  };
  if (Status checked = UseInBatchesCheckedAhead(read, check, /*check_signatures=*/true); !checked.ok()) {
    report.failure = checked;
    return report;
  }
  if (!read_error.ok()) {
    report.failure = read_error;
    return report;
  }
  // A chain cut at its end leaves no gap to see; the head says how far it went.
  for (const auto& stream : merged.streams()) {
    auto last = previous.find(stream.device);
    uint64_t held = last == previous.end() ? 0 : last->second.seq();
    if (held != stream.head.seq || (last != previous.end() && last->second.id() != stream.head.last_id)) {
      report.failure = Status::Corruption(DeviceName(stream.device) + ": its head is seq " + std::to_string(stream.head.seq) +
                                          " but the last commit held is seq " + std::to_string(held) +
                                          ": commits were removed or replaced");
      return report;
    }
  }
  report.records = derived.size();

  // The stored records must be exactly the derived state, record by record.
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.records));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
  StateHasher stored_hash;
  uint64_t stored = 0;
  while (more) {
    lmdb::Bytes key = cursor.key();
    RecordId id;
    if (key.size() == 17) std::memcpy(id.bytes.data(), key.data() + 1, 16);
    auto what = [&id] { return "record " + id.ToText(); };
    auto plain = impl_->Open("records", key, cursor.value());
    if (!plain.ok()) {
      report.failure = Status::Corruption(what() + " fails authentication: it was altered on disk");
      return report;
    }
    auto record = Record::Decode(plain->span());
    if (!record.ok() || key.size() != 17) {
      report.failure = Status::Corruption(what() + " does not decode");
      return report;
    }
    const Record* expected = derived.Find(record->type(), id);
    if (expected == nullptr) {
      report.failure = Status::Corruption(what() + " is stored, but no commit made it");
      return report;
    }
    std::vector<uint8_t> canonical = record->EncodeCanonical();
    if (expected->EncodeCanonical() != canonical) {
      report.failure = Status::Corruption(what() + " differs from what its commits say");
      return report;
    }
    stored_hash.Add(*record, canonical);
    ++stored;
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  if (stored != derived.size()) {
    report.failure = Status::Corruption(std::to_string(derived.size() - stored) +
                                        " record(s) made by commits are missing from the store");
    return report;
  }
  // The state hash kept as records change (what `status` and a sync report); a store
  // made before it was kept has none, and its conflict list holds no elements.
  auto kept = impl_->ReadState(txn);
  if (!kept.ok()) {
    report.failure = kept.status();
    return report;
  }
  // And so must the clocks (tombstones included) and the list of conflicts.
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor clocks, lmdb::Cursor::Open(txn, impl_->tables.clocks));
  SAMSYNC_ASSIGN_OR_RETURN(more, clocks.Seek({}));
  uint64_t stored_clocks = 0;
  while (more) {
    lmdb::Bytes key = clocks.key();
    RecordId id;
    if (key.size() == 17) std::memcpy(id.bytes.data(), key.data() + 1, 16);
    auto what = [&id] { return "the clock of record " + id.ToText(); };
    if (key.size() != 17 || key[0] >= kRecordTypeCount) {
      report.failure = Status::Corruption("a clock has a malformed key");
      return report;
    }
    auto type = static_cast<RecordType>(key[0]);
    auto clock = impl_->ReadClock(txn, type, id);
    if (!clock.ok()) {
      report.failure = clock.status();
      return report;
    }
    const RecordClock* expected = derived.FindClock(type, id);
    if (expected == nullptr || expected->Encode() != (*clock)->Encode()) {
      report.failure = Status::Corruption(what() + (expected == nullptr ? " is stored, but no commit made it"
                                                                        : " differs from what the commits say"));
      return report;
    }
    SAMSYNC_ASSIGN_OR_RETURN(auto listed, txn.Get(impl_->tables.conflicts, key));
    auto element = StateHasher::ConflictElement(type, id, *expected, derived.devices());
    bool listed_right = listed.has_value() == element.has_value() &&
                        (!element || std::ranges::equal(*listed, element->span()) || (!*kept && listed->empty()));
    if (!listed_right) {
      report.failure = Status::Corruption("the conflict list is wrong about record " + id.ToText());
      return report;
    }
    if (element) stored_hash.AddElement(*element);
    ++stored_clocks;
    SAMSYNC_ASSIGN_OR_RETURN(more, clocks.Next());
  }
  if (stored_clocks != derived.clock_count()) {
    report.failure = Status::Corruption(std::to_string(derived.clock_count() - stored_clocks) +
                                        " record clock(s) made by commits are missing from the store");
    return report;
  }
  // Every stored record and clock equals its derived one, byte for byte, and none is
  // missing, so the stored state's hash is the derived state's.
  // The state hash kept must be the one derived here.
  if (*kept && !(**kept == stored_hash)) {
    report.failure = Status::Corruption("the state hash kept in the store differs from its records' (" +
                                        (*kept)->Finish().ToHex().substr(0, 16) + "… against " +
                                        stored_hash.Finish().ToHex().substr(0, 16) + "…): it was altered on disk");
    return report;
  }
  report.state_hash = stored_hash.Finish();
  return report;
}

Status Store::History(const std::optional<RecordId>& record, const std::function<bool(const Commit&)>& visit) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  if (record) {
    std::vector<Commit> commits;
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.record_log));
    SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek(record->span()));
    while (more && cursor.key().size() == 28 && std::memcmp(cursor.key().data(), record->bytes.data(), 16) == 0) {
      const uint8_t* k = cursor.key().data() + 16;
      SAMSYNC_ASSIGN_OR_RETURN(Commit commit, impl_->ReadCommit(txn, GetU32(k), GetU64(k + 4)));
      commits.push_back(std::move(commit));
      SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
    }
    std::sort(commits.begin(), commits.end(), [](const Commit& a, const Commit& b) {
      return std::make_pair(a.hlc(), a.author()) < std::make_pair(b.hlc(), b.author());
    });
    for (const Commit& commit : commits) {
      if (!visit(commit)) break;
    }
    return Status::Ok();
  }
  MergedCommits merged(*impl_, txn);
  SAMSYNC_RETURN_IF_ERROR(merged.Open());
  while (MergedCommits::Stream* stream = merged.Peek()) {
    if (!visit(*stream->current)) break;
    SAMSYNC_RETURN_IF_ERROR(merged.Advance(*stream));
  }
  return Status::Ok();
}

Status Store::CommitsAfter(const VersionVector& have, const std::function<bool(const Commit&)>& visit,
                           const std::set<PublicKey>* only) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  MergedCommits merged(*impl_, txn);
  SAMSYNC_RETURN_IF_ERROR(merged.Open(have, only));
  // (hlc, author) order is causal: every commit comes after those it saw.
  while (MergedCommits::Stream* stream = merged.Peek()) {
    if (!visit(*stream->current)) break;
    SAMSYNC_RETURN_IF_ERROR(merged.Advance(*stream));
  }
  return Status::Ok();
}

Result<std::vector<Store::PersonAccess>> Store::PersonAccessLog() const {
  std::vector<PersonAccess> log;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.person_log));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
  while (more) {
    auto plain = impl_->Open("person_log", cursor.key(), cursor.value());
    if (!plain.ok()) return Status::Corruption("an entry of the identity access log fails authentication");
    size_t size = plain->span().size();
    if (size == 0 || size % sizeof(capnp::word) != 0) return Status::Corruption("an access log entry does not decode");
    auto words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
    std::memcpy(words.begin(), plain->span().data(), size);
    PersonAccess entry;
    auto error = kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(words);
      auto root = reader.getRoot<schema::PersonAccess>();
      entry.time_ms = root.getTimeMs();
      entry.action = root.getAction() == schema::PersonAccess::Action::ADDED ? "added" : "lookedUp";
      auto ref = Id16::FromBytes({root.getChildRef().begin(), root.getChildRef().size()});
      if (ref.ok()) entry.child_ref = *ref;
    });
    if (error != nullptr) return Status::Corruption("an access log entry does not decode");
    log.push_back(entry);
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return log;
}

}  // namespace samsync
