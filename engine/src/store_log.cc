// The sync server's transparency log: an RFC 6962 tree over the ids of the commits
// it accepted, kept in the `log` table (layout in store_impl.h), and the signed
// checkpoints and cosignatures of it.
#include <cstring>

#include "samsync/note.h"
#include "samsync/tlog.h"
#include "samsync/witness.h"
#include "store_impl.h"

namespace samsync {
namespace {

constexpr uint8_t kNodeTag = 'n', kLeafTag = 'l', kIndexTag = 'i', kSizeTag = 's', kCheckpointTag = 'c',
                  kCosignatureTag = 'w', kRosterTag = 'r';

std::array<uint8_t, 10> NodeKey(unsigned level, uint64_t index) {
  std::array<uint8_t, 10> key{kNodeTag, static_cast<uint8_t>(level)};
  PutU64(key.data() + 2, index);
  return key;
}

std::array<uint8_t, 9> NumberKey(uint8_t tag, uint64_t number) {
  std::array<uint8_t, 9> key{tag};
  PutU64(key.data() + 1, number);
  return key;
}

std::array<uint8_t, 33> IndexKey(const Hash& commit) {
  std::array<uint8_t, 33> key{kIndexTag};
  std::memcpy(key.data() + 1, commit.bytes.data(), 32);
  return key;
}

std::array<uint8_t, 41> CosignatureKey(uint64_t size, const PublicKey& witness) {
  std::array<uint8_t, 41> key{kCosignatureTag};
  PutU64(key.data() + 1, size);
  std::memcpy(key.data() + 9, witness.bytes.data(), 32);
  return key;
}

Status NoLog() { return Status::Invalid("this store keeps no transparency log (only the sync server's does)"); }

// The stored complete subtrees, read in one transaction (which may be writing them).
class StoredNodes : public MerkleNodes {
 public:
  StoredNodes(const Store::Impl& impl, const lmdb::Txn& txn) : impl_(impl), txn_(txn) {}
  Result<Hash> Node(unsigned level, uint64_t index) const override {
    auto key = NodeKey(level, index);
    SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn_.Get(impl_.tables.log, key));
    if (!sealed) {
      return Status::Corruption("the transparency log lacks its node at level " + std::to_string(level) + ", index " +
                                std::to_string(index));
    }
    auto plain = impl_.Open("log", key, *sealed);
    if (!plain.ok() || plain->span().size() != 32) {
      return Status::Corruption("a node of the transparency log fails authentication: it was altered on disk");
    }
    return Hash::FromBytes(plain->span());
  }

 private:
  const Store::Impl& impl_;
  const lmdb::Txn& txn_;
};

Status PutSealed(const Store::Impl& impl, lmdb::Txn& txn, lmdb::Bytes key, lmdb::Bytes plain) {
  std::vector<uint8_t> sealed;
  impl.Seal("log", key, plain, sealed);
  return txn.Put(impl.tables.log, key, sealed);
}

Result<std::optional<crypto::PlainBytes>> GetSealed(const Store::Impl& impl, const lmdb::Txn& txn,
                                                    lmdb::Bytes key, std::string_view what) {
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(impl.tables.log, key));
  if (!sealed) return std::optional<crypto::PlainBytes>();
  auto plain = impl.Open("log", key, *sealed);
  if (!plain.ok()) return Status::Corruption(std::string(what) + " fails authentication: it was altered on disk");
  return std::optional<crypto::PlainBytes>(std::move(plain).value());
}

std::string AsString(const crypto::PlainBytes& plain) {
  return std::string(reinterpret_cast<const char*>(plain.span().data()), plain.span().size());
}

Result<std::optional<uint64_t>> ReadIndex(const Store::Impl& impl, const lmdb::Txn& txn, const Hash& commit) {
  auto key = IndexKey(commit);
  SAMSYNC_ASSIGN_OR_RETURN(auto plain, GetSealed(impl, txn, key, "the transparency log's index"));
  if (!plain) return std::optional<uint64_t>();
  if (plain->span().size() != 8) return Status::Corruption("the transparency log's index is malformed");
  return std::optional<uint64_t>(GetU64(plain->span().data()));
}

}  // namespace

Result<uint64_t> Store::Impl::ReadLogSize(const lmdb::Txn& txn) const {
  const uint8_t key[] = {kSizeTag};
  SAMSYNC_ASSIGN_OR_RETURN(auto plain, GetSealed(*this, txn, key, "the transparency log's size"));
  if (!plain) return uint64_t{0};
  if (plain->span().size() != 8) return Status::Corruption("the transparency log's size is malformed");
  return GetU64(plain->span().data());
}

Status Store::Impl::AppendToLog(lmdb::Txn& txn, const Hash& commit) {
  SAMSYNC_ASSIGN_OR_RETURN(auto held, ReadIndex(*this, txn, commit));
  if (held) return Status::Ok();
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t size, ReadLogSize(txn));
  StoredNodes nodes(*this, txn);
  SAMSYNC_RETURN_IF_ERROR(MerkleAppend(size, MerkleLeafHash(commit.span()), nodes,
                                       [&](unsigned level, uint64_t index, const Hash& hash) {
                                         return PutSealed(*this, txn, NodeKey(level, index), hash.span());
                                       }));
  uint8_t number[8];
  PutU64(number, size);
  SAMSYNC_RETURN_IF_ERROR(PutSealed(*this, txn, NumberKey(kLeafTag, size), commit.span()));
  SAMSYNC_RETURN_IF_ERROR(PutSealed(*this, txn, IndexKey(commit), number));
  PutU64(number, size + 1);
  const uint8_t size_key[] = {kSizeTag};
  return PutSealed(*this, txn, size_key, number);
}

Status Store::Impl::KeepRoster(lmdb::Txn& txn, const Roster& roster) {
  return PutSealed(*this, txn, NumberKey(kRosterTag, roster.version()), roster.signed_bytes());
}

Result<uint64_t> Store::LogSize() const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  return impl_->ReadLogSize(txn);
}

namespace {

// The checkpoint signed at `size` in `txn`, with its cosignatures appended as further
// signature lines.
Result<std::optional<Store::LogCheckpoint>> ReadCheckpoint(const Store::Impl& impl, const lmdb::Txn& txn,
                                                           uint64_t size) {
  SAMSYNC_ASSIGN_OR_RETURN(auto plain,
                           GetSealed(impl, txn, NumberKey(kCheckpointTag, size), "a checkpoint of the log"));
  if (!plain) return std::optional<Store::LogCheckpoint>();
  std::string note = AsString(*plain);
  SAMSYNC_ASSIGN_OR_RETURN(Note parsed, ParseNote(note));
  SAMSYNC_ASSIGN_OR_RETURN(Checkpoint body, ParseCheckpoint(parsed.text));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl.tables.log));
  auto prefix = NumberKey(kCosignatureTag, size);
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek(prefix));
  while (more && cursor.key().size() == 41 && std::memcmp(cursor.key().data(), prefix.data(), prefix.size()) == 0) {
    auto line = impl.Open("log", cursor.key(), cursor.value());
    if (!line.ok()) return Status::Corruption("a cosignature of the log fails authentication: it was altered on disk");
    note += AsString(*line);
    note += '\n';
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return std::optional<Store::LogCheckpoint>(Store::LogCheckpoint{body.size, body.root, body.origin, note});
}

}  // namespace

Result<Store::LogCheckpoint> Store::Impl::SignCheckpoint(lmdb::Txn& txn) {
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t size, ReadLogSize(txn));
  SAMSYNC_ASSIGN_OR_RETURN(auto held, ReadCheckpoint(*this, txn, size));
  if (held) return std::move(*held);
  SAMSYNC_ASSIGN_OR_RETURN(auto roster, ReadRoster(txn));
  if (!roster) return Status::Invalid("the server's store has no roster: the log's origin is its city's");
  Checkpoint checkpoint;
  checkpoint.origin = LogOrigin(roster->city());
  checkpoint.size = size;
  if (size == 0) {
    checkpoint.root = MerkleEmptyRoot();
  } else {
    StoredNodes nodes(*this, txn);
    SAMSYNC_ASSIGN_OR_RETURN(checkpoint.root, MerkleRoot(nodes, size));
  }
  SAMSYNC_ASSIGN_OR_RETURN(std::string text, FormatCheckpoint(checkpoint));
  SAMSYNC_ASSIGN_OR_RETURN(std::string note, SignNote(text, checkpoint.origin, *device_key));
  SAMSYNC_RETURN_IF_ERROR(PutSealed(*this, txn, NumberKey(kCheckpointTag, size), AsBytes(note)));
  return LogCheckpoint{size, checkpoint.root, checkpoint.origin, note};
}

Result<Store::LogCheckpoint> Store::SignCheckpoint() {
  if (!impl_->transparency_log) return NoLog();
  {
    // Mostly it is held (a push signs one): a read transaction, no writer's lock.
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn reading, lmdb::Txn::Begin(impl_->env, true));
    SAMSYNC_ASSIGN_OR_RETURN(uint64_t size, impl_->ReadLogSize(reading));
    SAMSYNC_ASSIGN_OR_RETURN(auto held, ReadCheckpoint(*impl_, reading, size));
    if (held) return std::move(*held);
  }
  if (impl_->read_only) return Status::Invalid("the store was opened read-only: it cannot sign a checkpoint");
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_ASSIGN_OR_RETURN(LogCheckpoint signed_now, impl_->SignCheckpoint(txn));  // signed meanwhile: read
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  return signed_now;
}

Result<Store::LogCheckpoint> Store::CheckpointAt(uint64_t size) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(auto held, ReadCheckpoint(*impl_, txn, size));
  if (!held) return Status::NotFound("the log has no checkpoint of size " + std::to_string(size));
  return std::move(*held);
}

Result<Hash> Store::LogRoot(uint64_t size) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t held, impl_->ReadLogSize(txn));
  if (size > held) {
    return Status::Invalid("the log holds " + std::to_string(held) + " leaves, not " + std::to_string(size));
  }
  StoredNodes nodes(*impl_, txn);
  return MerkleRoot(nodes, size);
}

Result<std::vector<Hash>> Store::LogConsistencyProof(uint64_t old_size, uint64_t size) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t held, impl_->ReadLogSize(txn));
  if (size > held) {
    return Status::Invalid("the log holds " + std::to_string(held) + " leaves, not " + std::to_string(size));
  }
  StoredNodes nodes(*impl_, txn);
  return MerkleConsistencyProof(nodes, old_size, size);
}

Result<Store::LogInclusion> Store::LogInclusionProof(const Hash& commit, uint64_t size) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t held, impl_->ReadLogSize(txn));
  if (size > held) {
    return Status::Invalid("the log holds " + std::to_string(held) + " leaves, not " + std::to_string(size));
  }
  SAMSYNC_ASSIGN_OR_RETURN(auto index, ReadIndex(*impl_, txn, commit));
  if (!index || *index >= size) {
    return Status::NotFound("commit " + commit.ToHex().substr(0, 16) + " is not in the log's first " +
                            std::to_string(size) + " leaves");
  }
  StoredNodes nodes(*impl_, txn);
  SAMSYNC_ASSIGN_OR_RETURN(auto proof, MerkleInclusionProof(nodes, *index, size));
  return LogInclusion{*index, std::move(proof)};
}

Status Store::LogCommits(uint64_t from, const std::function<bool(uint64_t index, const Commit&)>& visit) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t size, impl_->ReadLogSize(txn));
  for (uint64_t index = from; index < size; ++index) {
    SAMSYNC_ASSIGN_OR_RETURN(auto leaf, GetSealed(*impl_, txn, NumberKey(kLeafTag, index), "a leaf of the log"));
    if (!leaf || leaf->span().size() != 32) {
      return Status::Corruption("the transparency log lacks its leaf " + std::to_string(index));
    }
    SAMSYNC_ASSIGN_OR_RETURN(auto where, txn.Get(impl_->tables.commit_ids, leaf->span()));
    if (!where) return Status::Corruption("leaf " + std::to_string(index) + " of the log names a commit not held");
    auto key = impl_->Open("commit_ids", leaf->span(), *where);
    if (!key.ok() || key->span().size() != 12) {
      return Status::Corruption("the commit index fails authentication: it was altered on disk");
    }
    SAMSYNC_ASSIGN_OR_RETURN(Commit commit,
                             impl_->ReadCommit(txn, GetU32(key->span().data()), GetU64(key->span().data() + 4)));
    if (!visit(index, commit)) break;
  }
  return Status::Ok();
}

Result<std::vector<std::vector<uint8_t>>> Store::RosterHistory() const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.log));
  std::vector<std::vector<uint8_t>> rosters;
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek(NumberKey(kRosterTag, 0)));
  while (more && cursor.key().size() == 9 && cursor.key()[0] == kRosterTag) {
    auto plain = impl_->Open("log", cursor.key(), cursor.value());
    if (!plain.ok()) return Status::Corruption("a kept roster version fails authentication: it was altered on disk");
    rosters.emplace_back(plain->span().begin(), plain->span().end());
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return rosters;
}

Result<std::string> Store::SignStateStatement() const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t size, LogSize());
  SAMSYNC_ASSIGN_OR_RETURN(auto roster, InstalledRoster());
  if (!roster) return Status::Invalid("the server's store has no roster: the log's origin is its city's");
  SAMSYNC_ASSIGN_OR_RETURN(ReplicaSummary summary, Summary());
  StateStatement statement{LogOrigin(roster->city()), size, summary.state_hash};
  return SignNote(FormatStateStatement(statement), statement.origin, *impl_->device_key);
}

Result<std::string> Store::CosignCheckpoint(std::string_view checkpoint_text) const {
  SAMSYNC_ASSIGN_OR_RETURN(Checkpoint body, ParseCheckpoint(checkpoint_text));
  const PublicKey& key = impl_->device_key->public_key();
  uint64_t now = static_cast<uint64_t>(std::max<int64_t>(0, impl_->clock.NowMs() / 1000));
  SAMSYNC_ASSIGN_OR_RETURN(NoteSignature signature,
                           samsync::CosignCheckpoint(checkpoint_text, WitnessName(body.origin, key), *impl_->device_key, now));
  return FormatNoteSignatureLine(signature);
}

Result<std::optional<std::string>> Store::SeenCheckpoint() const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(impl_->tables.meta, AsBytes("checkpoint")));
  if (!sealed) return std::optional<std::string>();
  auto plain = impl_->Open("meta", AsBytes("checkpoint"), *sealed);
  if (!plain.ok()) return Status::Corruption("the last checkpoint seen fails authentication: it was altered on disk");
  return std::optional<std::string>(AsString(*plain));
}

Status Store::SaveSeenCheckpoint(std::string_view note) {
  if (impl_->read_only) return Status::Invalid("the store was opened read-only");
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  std::vector<uint8_t> sealed;
  impl_->Seal("meta", AsBytes("checkpoint"), AsBytes(note), sealed);
  SAMSYNC_RETURN_IF_ERROR(txn.Put(impl_->tables.meta, AsBytes("checkpoint"), sealed));
  return txn.Commit();
}

Result<bool> Store::CheckCosignature(const Cosignature& c) const {
  if (!impl_->transparency_log) return NoLog();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(auto plain, GetSealed(*impl_, txn, NumberKey(kCheckpointTag, c.size), "a checkpoint"));
  if (!plain) return Status::NotFound("the log has no checkpoint of size " + std::to_string(c.size) + " to cosign");
  SAMSYNC_ASSIGN_OR_RETURN(Note note, ParseNote(AsString(*plain)));
  SAMSYNC_ASSIGN_OR_RETURN(Checkpoint body, ParseCheckpoint(note.text));
  SAMSYNC_ASSIGN_OR_RETURN(NoteSignature signature, ParseNoteSignatureLine(c.line));
  SAMSYNC_ASSIGN_OR_RETURN(NoteVerifierKey cosigner, NoteVerifierKey::Cosigner(WitnessName(body.origin, c.witness), c.witness));
  SAMSYNC_RETURN_IF_ERROR(VerifyCosignature(note.text, signature, cosigner).status());
  SAMSYNC_ASSIGN_OR_RETURN(auto held, txn.Get(impl_->tables.log, CosignatureKey(c.size, c.witness)));
  return !held;
}

Status Store::Impl::KeepCosignature(lmdb::Txn& txn, const Cosignature& c) {
  // Checked by CheckCosignature; a checkpoint once signed is never removed, so what was
  // checked still holds. Kept unless one of that witness was kept meanwhile.
  SAMSYNC_ASSIGN_OR_RETURN(auto held, txn.Get(tables.log, CosignatureKey(c.size, c.witness)));
  if (held) return Status::Ok();
  SAMSYNC_ASSIGN_OR_RETURN(NoteSignature signature, ParseNoteSignatureLine(c.line));
  std::string canonical = FormatNoteSignatureLine(signature);
  return PutSealed(*this, txn, CosignatureKey(c.size, c.witness), AsBytes(canonical));
}

Status Store::AddCosignature(const Cosignature& c) {
  if (impl_->read_only) return Status::Invalid("the store was opened read-only");
  // Checked in a read transaction; mostly the witness cosigned this one before.
  SAMSYNC_ASSIGN_OR_RETURN(bool fresh, CheckCosignature(c));
  if (!fresh) return Status::Ok();  // the first is kept
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_RETURN_IF_ERROR(impl_->KeepCosignature(txn, c));
  return txn.Commit();
}

}  // namespace samsync
