#include "samsync/ids.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "random_pool.h"
#include "samsync/clock.h"

namespace samsync {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
constexpr size_t kTextLength = 26;  // 130 bits, the top two always zero

int DecodeChar(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  const char* p = std::strchr(kAlphabet, c);
  return (c == '\0' || p == nullptr) ? -1 : static_cast<int>(p - kAlphabet);
}

}  // namespace

bool Id16::IsZero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

std::string Id16::ToText() const {
  // Read the 128 bits as a 130-bit number with two leading zero bits, 5 bits a char.
  std::string out(kTextLength, '0');
  for (size_t i = 0; i < kTextLength; ++i) {
    int value = 0;
    for (int b = 0; b < 5; ++b) {
      int bit_index = static_cast<int>(i) * 5 + b - 2;  // bit 0 = MSB of bytes[0]
      int bit = 0;
      if (bit_index >= 0) bit = (bytes[bit_index / 8] >> (7 - bit_index % 8)) & 1;
      value = (value << 1) | bit;
    }
    out[i] = kAlphabet[value];
  }
  return out;
}

Result<Id16> Id16::Parse(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return Status::Invalid(std::string(what) + " must be 26 characters of Crockford base32");
  };
  if (text.size() != kTextLength) return bad();
  Id16 id;
  for (size_t i = 0; i < kTextLength; ++i) {
    int value = DecodeChar(text[i]);
    if (value < 0) return bad();
    for (int b = 0; b < 5; ++b) {
      int bit = (value >> (4 - b)) & 1;
      int bit_index = static_cast<int>(i) * 5 + b - 2;
      if (bit_index < 0) {
        if (bit != 0) return bad();  // over 128 bits
        continue;
      }
      if (bit) id.bytes[bit_index / 8] |= static_cast<uint8_t>(1 << (7 - bit_index % 8));
    }
  }
  return id;
}

Result<Id16> Id16::FromBytes(std::span<const uint8_t> bytes, std::string_view what) {
  if (bytes.size() != 16) {
    return Status::Invalid(std::string(what) + " must be 16 bytes, not " +
                           std::to_string(bytes.size()));
  }
  Id16 id;
  std::copy(bytes.begin(), bytes.end(), id.bytes.begin());
  return id;
}

RecordId RecordIdGenerator::Next(const Clock& clock) {
  RecordId id;
  uint64_t ms = static_cast<uint64_t>(clock.NowMs());
  for (int i = 0; i < 6; ++i) id.bytes[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  PooledRandomBytes(id.bytes.data() + 6, 10);
  if (id <= last_) {
    id = last_;
    for (int i = 15; i >= 0 && ++id.bytes[i] == 0; --i) {
    }
  }
  last_ = id;
  return id;
}

}  // namespace samsync
