// A record: one typed Cap'n Proto struct (schema/records.capnp) with its id and
// owning district.
//
// Record owns its message. It is a resource (movable, not copyable); Clone() copies
// on purpose. Readers and builders returned by reader()/builder() borrow from the
// Record and are valid until it is moved from, destroyed or its body re-initialised.
// A decoded record is read in place (its canonical words, checked once by Decode)
// until it is first changed: builder() and the setters then copy it into a message
// builder, and readers taken before that keep showing the record as decoded.
#ifndef SAMSYNC_RECORD_H_
#define SAMSYNC_RECORD_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <kj/array.h>

#include "samsync/ids.h"
#include "samsync/schema/records.capnp.h"
#include "samsync/status.h"

namespace capnp {
class MallocMessageBuilder;
}

namespace samsync {

// The tag of each type is the ordinal of its member in Record.body; it is stored in
// LMDB keys and so never changes.
enum class RecordType : uint8_t {
  kSchool = 0,
  kContact = 1,
  kAgreement = 2,
  kMaterial = 3,
  kForum = 4,
  kConcern = 5,
  kEnrolment = 6,
  kFollowup = 7,
  kAbsence = 8,
};
inline constexpr int kRecordTypeCount = 9;

// The name users type and JSON carries: "school", "contact", ... (Record.body members).
std::string_view RecordTypeName(RecordType type);
// Fails with kInvalidInput listing the valid names.
Result<RecordType> ParseRecordType(std::string_view name);
const std::vector<RecordType>& AllRecordTypes();

class Record {
 public:
  // An empty record of `type`: zero id, no district, every field at its default.
  explicit Record(RecordType type);
  ~Record();
  Record(Record&&) noexcept;
  Record& operator=(Record&&) noexcept;
  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

  // Decodes a flat (unpacked) Cap'n Proto message, as Encode() writes it. Bytes from
  // disk or network are untrusted: the traversal limit is bounded, and a message
  // that does not hold a known record type fails with kCorruption.
  static Result<Record> Decode(std::span<const uint8_t> bytes);
  // The canonical encoding framed as a flat message: an 8-byte segment table naming
  // its one segment, then the canonical encoding itself (Canonical() of the result).
  std::vector<uint8_t> Encode() const;
  static std::span<const uint8_t> Canonical(std::span<const uint8_t> encoded) { return encoded.subspan(kFrameBytes); }
  // The canonical encoding (what is hashed): one segment, no padding, fixed order.
  std::vector<uint8_t> EncodeCanonical() const;
  Record Clone() const;
  // A copy of a record held in another message. The reader must be of a known type
  // (see Decode); readers from untrusted bytes must have been bounds-checked.
  static Record CopyOf(schema::Record::Reader reader);

  RecordType type() const;
  RecordId id() const;
  void set_id(const RecordId& id);
  std::string district() const;
  void set_district(std::string_view district);

  schema::Record::Reader reader() const;
  schema::Record::Builder builder();

 private:
  static constexpr size_t kFrameBytes = 8;  // a one-segment flat message's segment table
  explicit Record(std::unique_ptr<capnp::MallocMessageBuilder> message);
  explicit Record(kj::Array<capnp::word> decoded);
  // The record is message_ when set (built here, or changed since decoded), else
  // decoded_: the canonical encoding Decode made from checked bytes (one segment,
  // no far pointers), which reader() reads without bounds checks. A decoded record
  // takes one allocation of its own size and Encode() copies it.
  std::unique_ptr<capnp::MallocMessageBuilder> message_;
  kj::Array<capnp::word> decoded_;
};

}  // namespace samsync

#endif  // SAMSYNC_RECORD_H_
