// Record ids and child references: 16 opaque bytes each.
//
// A RecordId is 48 bits of milliseconds since the Unix epoch (big-endian) followed by
// 80 random bits, so ids made later sort later and LMDB inserts stay appends. Its text
// form is the 26-character Crockford base32 of the 16 bytes (as ULID writes it).
//
// A ChildRef is the pseudonym of a child: a keyed BLAKE2b-128 hash of the normalised
// personnummer under the pseudonymisation key (see identity.h). Its text form is the
// same base32, so both paste cleanly into spreadsheets.
#ifndef SAMSYNC_IDS_H_
#define SAMSYNC_IDS_H_

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "samsync/status.h"

namespace samsync {

class Clock;

struct Id16 {
  std::array<uint8_t, 16> bytes{};

  bool IsZero() const;
  std::string ToText() const;
  std::span<const uint8_t> span() const { return bytes; }
  auto operator<=>(const Id16&) const = default;

  // Accepts the 26-character form, case-insensitive, with Crockford's aliases
  // (O→0, I/L→1). Fails with kInvalidInput naming `what` on anything else.
  static Result<Id16> Parse(std::string_view text, std::string_view what = "id");
  // Fails unless `bytes` is exactly 16 bytes long.
  static Result<Id16> FromBytes(std::span<const uint8_t> bytes, std::string_view what = "id");
};

using RecordId = Id16;
using ChildRef = Id16;

// Makes time-ordered ids: clock time in the first 48 bits, then random bits. Ids from
// one generator strictly increase, even within one millisecond or if the clock steps
// back (the random part of the last id is incremented), so a batch inserts in order.
// Not thread-safe; keep one per writer.
class RecordIdGenerator {
 public:
  RecordId Next(const Clock& clock);

 private:
  RecordId last_;
};

}  // namespace samsync

#endif  // SAMSYNC_IDS_H_
