#include "samsync/identity.h"

#include <sodium.h>

#include <cctype>

#include "samsync/date.h"

namespace samsync {

Result<std::string> NormalisePersonnummer(std::string_view text) {
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (!(c == '-' && i == 8)) {
      digits.clear();
      break;
    }
  }
  if (digits.size() != 12) {
    return Status::Invalid("personnummer must be written YYYYMMDD-NNNN");
  }
  int day = (digits[6] - '0') * 10 + (digits[7] - '0');
  if (day > 60) day -= 60;  // samordningsnummer
  uint32_t yyyymmdd = static_cast<uint32_t>(std::stoul(digits.substr(0, 6))) * 100 +
                      static_cast<uint32_t>(day);
  if (!Date::FromNumber(yyyymmdd).ok()) {
    return Status::Invalid("personnummer has no valid birth date");
  }
  // Luhn over YYMMDDNNN with weights 2,1,2,...; the 10th digit makes the sum end in 0.
  int sum = 0;
  for (size_t i = 2; i < 11; ++i) {
    int v = (digits[i] - '0') * ((i % 2 == 0) ? 2 : 1);
    sum += v > 9 ? v - 9 : v;
  }
  if ((10 - sum % 10) % 10 != digits[11] - '0') {
    return Status::Invalid("personnummer check digit is wrong");
  }
  return digits;
}

ChildRef DeriveChildRef(const SecretBytes& pseudonym_key, std::string_view normalised) {
  ChildRef ref;
  crypto_generichash(ref.bytes.data(), ref.bytes.size(),
                     reinterpret_cast<const unsigned char*>(normalised.data()), normalised.size(),
                     pseudonym_key.data(), pseudonym_key.size());
  return ref;
}

}  // namespace samsync
