#include "samsync/record.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>

namespace samsync {
namespace {

using Body = schema::Record::Body;

constexpr std::string_view kTypeNames[kRecordTypeCount] = {
    "school", "contact", "agreement", "material", "forum",
    "concern", "enrolment", "followup", "absence",
};

// Bounds what a hostile message can make us traverse: records are small (a forum with
// a few hundred invited schools is the largest), so 1 Mi words is generous.
constexpr uint64_t kTraversalLimitWords = 1 << 20;

void InitBody(Body::Builder body, RecordType type) {
  switch (type) {
    case RecordType::kSchool: body.initSchool(); break;
    case RecordType::kContact: body.initContact(); break;
    case RecordType::kAgreement: body.initAgreement(); break;
    case RecordType::kMaterial: body.initMaterial(); break;
    case RecordType::kForum: body.initForum(); break;
    case RecordType::kConcern: body.initConcern(); break;
    case RecordType::kEnrolment: body.initEnrolment(); break;
    case RecordType::kFollowup: body.initFollowup(); break;
    case RecordType::kAbsence: body.initAbsence(); break;
  }
}

}  // namespace

std::string_view RecordTypeName(RecordType type) {
  return kTypeNames[static_cast<int>(type)];
}

Result<RecordType> ParseRecordType(std::string_view name) {
  for (int i = 0; i < kRecordTypeCount; ++i) {
    if (kTypeNames[i] == name) return static_cast<RecordType>(i);
  }
  std::string list;
  for (std::string_view n : kTypeNames) list += (list.empty() ? "" : " ") + std::string(n);
  return Status::Invalid("unknown record type '" + std::string(name) + "' (one of: " + list + ")");
}

const std::vector<RecordType>& AllRecordTypes() {
  static const std::vector<RecordType> kAll = [] {
    std::vector<RecordType> all;
    for (int i = 0; i < kRecordTypeCount; ++i) all.push_back(static_cast<RecordType>(i));
    return all;
  }();
  return kAll;
}

Record::Record(RecordType type) : message_(std::make_unique<capnp::MallocMessageBuilder>(64)) {
  InitBody(message_->initRoot<schema::Record>().getBody(), type);
}

Record::Record(std::unique_ptr<capnp::MallocMessageBuilder> message) : message_(std::move(message)) {}
Record::Record(kj::Array<capnp::word> decoded) : decoded_(std::move(decoded)) {}
Record::~Record() = default;
Record::Record(Record&&) noexcept = default;
Record& Record::operator=(Record&&) noexcept = default;

Result<Record> Record::Decode(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::Corruption("record bytes are not a Cap'n Proto message");
  }
  // Copy into word-aligned memory: the input may come from anywhere.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kTraversalLimitWords;
  options.nestingLimit = 16;
  Status failure;
  kj::Array<capnp::word> canonical;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words, options);
    auto root = reader.getRoot<schema::Record>();
    if (static_cast<unsigned>(root.getBody().which()) >= kRecordTypeCount) {
      failure = Status::Corruption("record of an unknown type (written by a newer samsync?)");
      return;
    }
    // Every pointer followed within `words` and the traversal limit, and written out
    // afresh: what reader() later reads unchecked was laid out by Cap'n Proto here.
    canonical = capnp::canonicalize(root);
  });
  if (error != nullptr) return Status::Corruption("record bytes do not decode");
  if (!failure.ok()) return failure;
  return Record(std::move(canonical));
}

namespace {

// A canonical encoding, `framed` as a flat message of one segment: after the segment
// table (the count less one (0), then the segment's size in words, each a
// little-endian uint32), or bare.
std::vector<uint8_t> WordsAsBytes(kj::ArrayPtr<const capnp::word> words, bool framed) {
  auto bytes = words.asBytes();
  const size_t frame_bytes = framed ? 8 : 0;
  std::vector<uint8_t> out(frame_bytes + bytes.size());
  const uint32_t size = static_cast<uint32_t>(words.size());
  if (framed) {
    for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(size >> (8 * i));
  }
  std::memcpy(out.data() + frame_bytes, bytes.begin(), bytes.size());
  return out;
}

}  // namespace

std::vector<uint8_t> Record::Encode() const {
  static_assert(kFrameBytes == 8);
  if (!message_) return WordsAsBytes(decoded_.asPtr(), /*framed=*/true);
  kj::Array<capnp::word> words = capnp::canonicalize(reader());
  return WordsAsBytes(words.asPtr(), /*framed=*/true);
}

std::vector<uint8_t> Record::EncodeCanonical() const {
  if (!message_) return WordsAsBytes(decoded_.asPtr(), /*framed=*/false);
  kj::Array<capnp::word> words = capnp::canonicalize(reader());
  return WordsAsBytes(words.asPtr(), /*framed=*/false);
}

Record Record::CopyOf(schema::Record::Reader reader) {
  auto message = std::make_unique<capnp::MallocMessageBuilder>(64);
  message->setRoot(reader);
  return Record(std::move(message));
}

Record Record::Clone() const {
  auto message = std::make_unique<capnp::MallocMessageBuilder>(64);
  message->setRoot(reader());
  return Record(std::move(message));
}

RecordType Record::type() const { return static_cast<RecordType>(reader().getBody().which()); }

RecordId Record::id() const {
  auto data = reader().getId();
  RecordId id;
  if (data.size() == id.bytes.size()) std::copy(data.begin(), data.end(), id.bytes.begin());
  return id;
}

void Record::set_id(const RecordId& id) {
  builder().setId(capnp::Data::Reader(id.bytes.data(), id.bytes.size()));
}

std::string Record::district() const {
  auto text = reader().getDistrict();
  return std::string(text.begin(), text.end());
}

void Record::set_district(std::string_view district) {
  std::string terminated(district);  // Text::Reader needs a NUL after the text
  builder().setDistrict(capnp::Text::Reader(terminated.data(), terminated.size()));
}

schema::Record::Reader Record::reader() const {
  if (!message_) return capnp::readMessageUnchecked<schema::Record>(decoded_.begin());
  return message_->getRoot<schema::Record>().asReader();
}

schema::Record::Builder Record::builder() {
  if (!message_) {
    // The decoded words stay: readers taken before this point at them.
    message_ = std::make_unique<capnp::MallocMessageBuilder>(decoded_.size() + 8);
    message_->setRoot(capnp::readMessageUnchecked<schema::Record>(decoded_.begin()));
  }
  return message_->getRoot<schema::Record>();
}

}  // namespace samsync
