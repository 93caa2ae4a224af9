#include "samsync/history.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "samsync/record_fields.h"

namespace samsync {
namespace {

constexpr std::string_view kCommitSignaturePrefix = "samsync commit v1\n";
// A commit holds one action's ops; a 100,000-row import is about 20 MiB. The limit
// bounds what a hostile commit can make a reader traverse.
constexpr uint64_t kCommitTraversalWords = uint64_t{64} << 20;

kj::Array<capnp::word> ToWords(std::span<const uint8_t> bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), words.size() * sizeof(capnp::word));
  return words;
}

capnp::ReaderOptions CommitReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kCommitTraversalWords;
  options.nestingLimit = 16;
  return options;
}

std::vector<uint8_t> SignedMessage(std::span<const uint8_t> commit_bytes) {
  std::vector<uint8_t> message(kCommitSignaturePrefix.size() + commit_bytes.size());
  std::memcpy(message.data(), kCommitSignaturePrefix.data(), kCommitSignaturePrefix.size());
  if (!commit_bytes.empty()) {
    std::memcpy(message.data() + kCommitSignaturePrefix.size(), commit_bytes.data(), commit_bytes.size());
  }
  return message;
}

Status Fail(const Commit& commit, Code code, const std::string& reason) {
  return Status(code, commit.Name() + ": " + reason);
}

}  // namespace

// The decoded inner Commit, kept alive with its words.
// The canonical bytes are a single segment with no segment table (what
// capnp::canonicalize returns), so they are read as a one-segment array.
struct Commit::Message {
  // A reader of `canonical` (one segment), which it keeps.
  static std::unique_ptr<Message> Of(kj::Array<capnp::word> canonical) {
    auto message = std::make_unique<Message>();
    message->words = std::move(canonical);
    message->segments[0] = message->words.asPtr();
    message->reader = std::make_unique<capnp::SegmentArrayMessageReader>(kj::arrayPtr(message->segments, 1),
                                                                         CommitReaderOptions());
    return message;
  }
  kj::Array<capnp::word> words;
  kj::ArrayPtr<const capnp::word> segments[1];
  std::unique_ptr<capnp::SegmentArrayMessageReader> reader;
};

Commit::~Commit() = default;
Commit::Commit(Commit&&) noexcept = default;
Commit& Commit::operator=(Commit&&) noexcept = default;

schema::Commit::Reader Commit::reader() const { return message_->reader->getRoot<schema::Commit>(); }

Result<Commit> Commit::Decode(std::span<const uint8_t> signed_commit) {
  if (signed_commit.empty() || signed_commit.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("a signed commit is not a Cap'n Proto message");
  }
  Commit commit;
  commit.signed_bytes_.assign(signed_commit.begin(), signed_commit.end());
  Status failure = Status::Corruption("a signed commit does not decode");
  bool ok = false;
  auto error = kj::runCatchingExceptions([&] {
    kj::Array<capnp::word> outer_words = ToWords(signed_commit);
    capnp::FlatArrayMessageReader outer(outer_words, CommitReaderOptions());
    auto signed_root = outer.getRoot<schema::SignedCommit>();
    auto inner = signed_root.getCommit();
    if (signed_root.getSignature().size() != 64) {
      failure = Status::Corruption("a commit's signature is not 64 bytes");
      return;
    }
    if (inner.size() == 0 || inner.size() % sizeof(capnp::word) != 0) return;
    auto message = Message::Of(ToWords({inner.begin(), inner.size()}));
    // Canonical form is what was hashed and signed, and checking it walks every
    // pointer, so a commit that passes cannot make a later read fail.
    if (!message->reader->isCanonical()) {
      failure = Status::Corruption("a commit is not canonically encoded");
      return;
    }
    auto root = message->reader->getRoot<schema::Commit>();
    auto author = Bytes32::FromBytes({root.getAuthor().begin(), root.getAuthor().size()}, "author");
    if (!author.ok()) {
      failure = Status::Corruption("a commit's author key is not 32 bytes");
      return;
    }
    commit.author_ = *author;
    auto parent = root.getParent();
    if (parent.size() != 0 && parent.size() != 32) {
      failure = Status::Corruption("a commit's parent is not a 32-byte id");
      return;
    }
    if (parent.size() == 32) std::memcpy(commit.parent_.bytes.data(), parent.begin(), 32);
    commit.id_ = Sha256({inner.begin(), inner.size()});
    commit.message_ = std::move(message);
    ok = true;
  });
  if (error != nullptr || !ok) return failure;
  return commit;
}

bool Commit::SignatureValid() const {
  if (signature_valid_) return *signature_valid_;
  auto outer_words = ToWords(signed_bytes_);
  bool valid = false;
  auto error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader outer(outer_words, CommitReaderOptions());
    auto root = outer.getRoot<schema::SignedCommit>();
    auto inner = root.getCommit();
    auto signature = root.getSignature();
    valid = VerifySignature(author_, SignedMessage({inner.begin(), inner.size()}), {signature.begin(), signature.size()});
  });
  signature_valid_ = error == nullptr && valid;
  return *signature_valid_;
}

VersionVector Commit::seen() const {
  VersionVector seen;
  for (auto entry : reader().getSeen()) {
    auto device = Bytes32::FromBytes({entry.getDevice().begin(), entry.getDevice().size()});
    if (device.ok()) seen[*device] = entry.getSeq();
  }
  return seen;
}

std::string FormatVersionVector(const VersionVector& vector) {
  std::string text;
  for (const auto& [device, seq] : vector) {
    if (!text.empty()) text += ',';
    text += device.ToHex() + ':' + std::to_string(seq);
  }
  return text;
}

Result<VersionVector> ParseVersionVector(std::string_view text) {
  VersionVector vector;
  size_t index = 0;
  while (!text.empty()) {
    ++index;
    size_t comma = text.find(',');
    std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    std::string where = "version vector entry " + std::to_string(index);
    size_t colon = entry.find(':');
    if (colon == std::string_view::npos) return Status::Invalid(where + " is not DEVICE:SEQ");
    auto device = Bytes32::FromHex(entry.substr(0, colon), "device key");
    if (!device.ok()) return device.status().WithContext(where);
    std::string_view digits = entry.substr(colon + 1);
    uint64_t seq = 0;
    if (digits.empty() || digits.size() > 19) return Status::Invalid(where + ": seq is not a number");
    for (char c : digits) {
      if (c < '0' || c > '9') return Status::Invalid(where + ": seq is not a number");
      seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    if (seq == 0) return Status::Invalid(where + ": seq must be at least 1");
    if (!vector.emplace(*device, seq).second) return Status::Invalid(where + " names a device twice");
  }
  return vector;
}

std::string Commit::Name() const {
  return "commit " + id_.ToHex() + " (device " + author_.ToHex().substr(0, 16) + " seq " + std::to_string(seq()) + ")";
}

CommitBuilder::CommitBuilder() = default;
CommitBuilder::~CommitBuilder() = default;

void CommitBuilder::AddSet(const Record& record, const std::vector<uint16_t>& fields) {
  AddSet(record.Clone(), fields);
}

void CommitBuilder::AddSet(Record&& record, std::vector<uint16_t> fields) {
  pending_.push_back(PendingOp{std::move(record), std::move(fields), RecordType::kSchool, RecordId()});
}

void CommitBuilder::AddDelete(RecordType type, const RecordId& id) {
  pending_.push_back(PendingOp{std::nullopt, {}, type, id});
}

Commit CommitBuilder::Sign(const SigningKey& key, const Header& header) {
  capnp::MallocMessageBuilder message;
  auto commit = message.initRoot<schema::Commit>();
  commit.setFormatVersion(kCommitFormatVersion);
  commit.setAuthor(capnp::Data::Reader(key.public_key().bytes.data(), 32));
  commit.setDistrict(header.district);
  commit.setSeq(header.seq);
  if (!header.parent.IsZero()) commit.setParent(capnp::Data::Reader(header.parent.bytes.data(), 32));
  commit.setHlc(header.hlc);
  commit.setNote(header.note);
  if (!header.seen.empty()) {
    auto seen = commit.initSeen(static_cast<unsigned>(header.seen.size()));
    unsigned i = 0;
    for (const auto& [device, seq] : header.seen) {
      seen[i].setDevice(capnp::Data::Reader(device.bytes.data(), 32));
      seen[i].setSeq(seq);
      ++i;
    }
  }
  auto ops = commit.initOps(static_cast<unsigned>(pending_.size()));
  for (unsigned i = 0; i < pending_.size(); ++i) {
    PendingOp& pending = pending_[i];
    auto op = ops[i];
    if (pending.record) {
      op.setSet(pending.record->reader());
      auto fields = op.initFields(static_cast<unsigned>(pending.fields.size()));
      for (unsigned f = 0; f < pending.fields.size(); ++f) fields.set(f, pending.fields[f]);
    } else {
      auto del = op.initDelete();
      del.setType(static_cast<uint8_t>(pending.delete_type));
      del.setId(capnp::Data::Reader(pending.delete_id.bytes.data(), 16));
    }
  }
  pending_.clear();
  kj::Array<capnp::word> canonical = capnp::canonicalize(commit.asReader());
  auto bytes = canonical.asBytes();
  Signature signature = key.Sign(SignedMessage({bytes.begin(), bytes.size()}));

  // The SignedCommit around it, in one first segment big enough for both.
  capnp::MallocMessageBuilder signed_message(static_cast<unsigned>(canonical.size() + 32));
  auto signed_root = signed_message.initRoot<schema::SignedCommit>();
  signed_root.setCommit(capnp::Data::Reader(bytes.begin(), bytes.size()));
  signed_root.setSignature(capnp::Data::Reader(signature.data(), signature.size()));
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(signed_message);
  auto flat_bytes = flat.asBytes();

  // What Decode would make of those bytes, without reading back what was just built:
  // canonical by construction, signed by `key`.
  Commit built;
  built.signed_bytes_.assign(flat_bytes.begin(), flat_bytes.end());
  built.id_ = Sha256({bytes.begin(), bytes.size()});
  built.author_ = key.public_key();
  built.parent_ = header.parent;
  built.signature_valid_ = true;
  built.message_ = Commit::Message::Of(std::move(canonical));
  return built;
}

std::vector<uint16_t> ChangedFields(const Record* before, const Record& after) {
  std::vector<uint16_t> changed;
  const auto& fields = FieldsOf(after.type());
  for (size_t i = 0; i < fields.size(); ++i) {
    if (before == nullptr || FieldToText(*before, fields[i]) != FieldToText(after, fields[i])) {
      changed.push_back(static_cast<uint16_t>(i));
    }
  }
  return changed;
}

Status CheckCommitAlone(const Commit& commit, const CommitRules& rules) {
  auto root = commit.reader();
  if (root.getFormatVersion() != kCommitFormatVersion) {
    return Fail(commit, Code::kCorruption, "commit format version " + std::to_string(root.getFormatVersion()) +
                                               " is not one this samsync reads");
  }
  if (commit.seq() == 0) return Fail(commit, Code::kCorruption, "has seq 0");
  if (!rules.signature_checked && !commit.SignatureValid()) {
    return Fail(commit, Code::kBadSignature, "the signature does not verify");
  }
  int64_t signed_ms = Hlc::Millis(commit.hlc());
  if (rules.now_ms > 0 && signed_ms > rules.now_ms + rules.max_skew_ms) {
    return Fail(commit, Code::kCorruption,
                "is dated " + FormatTime(signed_ms) + ", in the future (more than " +
                    std::to_string(rules.max_skew_ms / 1000) + " s ahead of this clock)");
  }
  std::string district = commit.district();
  if (rules.roster != nullptr) {
    Status allowed = rules.roster->MayWrite(commit.author(), district, signed_ms);
    if (!allowed.ok()) return Fail(commit, allowed.code(), allowed.message());
  }
  std::optional<PublicKey> last;
  for (auto entry : root.getSeen()) {
    auto key = Bytes32::FromBytes({entry.getDevice().begin(), entry.getDevice().size()});
    if (!key.ok() || entry.getSeq() == 0) return Fail(commit, Code::kCorruption, "has a malformed seen entry");
    if (*key == commit.author()) return Fail(commit, Code::kCorruption, "lists its own device as seen");
    if (last && !(*last < *key)) return Fail(commit, Code::kCorruption, "has seen entries out of order");
    last = *key;
  }
  // Every op names a valid record and fields, so merging it cannot fail half way.
  for (auto op : root.getOps()) {
    if (op.isSet()) {
      auto set = op.getSet();
      unsigned tag = static_cast<unsigned>(set.getBody().which());
      if (tag >= kRecordTypeCount || set.getId().size() != 16) {
        return Fail(commit, Code::kCorruption, "holds a set op that names no valid record");
      }
      size_t field_count = FieldsOf(static_cast<RecordType>(tag)).size();
      for (uint16_t ordinal : op.getFields()) {
        if (ordinal >= field_count) return Fail(commit, Code::kCorruption, "holds a set op naming a field its record type lacks");
      }
      if (set.getDistrict() != district) {
        return Fail(commit, Code::kUnauthorised,
                    "writes a record of " + std::string(set.getDistrict().cStr()) + ", not of its own district " +
                        district);
      }
    } else if (op.isDelete()) {
      if (op.getDelete().getType() >= kRecordTypeCount || op.getDelete().getId().size() != 16) {
        return Fail(commit, Code::kCorruption, "holds a delete op that names no valid record");
      }
    } else {
      return Fail(commit, Code::kCorruption, "holds an op of a kind this samsync does not know");
    }
  }
  return Status::Ok();
}

Status CheckCommit(const Commit& commit, const Commit* previous, const CommitRules& rules) {
  SAMSYNC_RETURN_IF_ERROR(CheckCommitAlone(commit, rules));
  if (previous == nullptr) {
    if (commit.seq() != 1) {
      return Fail(commit, Code::kCorruption,
                  "the device's first commit held has seq " + std::to_string(commit.seq()) + ", not 1: commits 1 to " +
                      std::to_string(commit.seq() - 1) + " are missing");
    }
    if (!commit.parent().IsZero()) return Fail(commit, Code::kCorruption, "a first commit names a parent");
  } else {
    if (previous->author() != commit.author()) return Fail(commit, Code::kCorruption, "follows another device's commit");
    if (commit.seq() != previous->seq() + 1) {
      return Fail(commit, Code::kCorruption,
                  "follows seq " + std::to_string(previous->seq()) + ": the chain has a gap or is out of order");
    }
    if (commit.parent() != previous->id()) {
      return Fail(commit, Code::kCorruption,
                  "names parent " + commit.parent().ToHex() + ", but seq " + std::to_string(previous->seq()) + " is " +
                      previous->id().ToHex() + ": the chain was rewritten");
    }
    if (commit.hlc() <= previous->hlc()) {
      return Fail(commit, Code::kCorruption, "is not later than its parent (hybrid logical clock went back)");
    }
  }
  return Status::Ok();
}

}  // namespace samsync
