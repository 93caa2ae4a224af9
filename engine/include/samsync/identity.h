// Children's identities: personnummer checks and pseudonyms.
//
// A child reference is BLAKE2b-128 of the normalised personnummer, keyed with the
// pseudonymisation key (32 bytes). The same key gives the same reference for the same
// child in every district, so the city can follow a child across districts without
// ever seeing who the child is. Without the key, the reference cannot be reversed by
// trying every personnummer.
#ifndef SAMSYNC_IDENTITY_H_
#define SAMSYNC_IDENTITY_H_

#include <string>
#include <string_view>

#include "samsync/ids.h"
#include "samsync/secret.h"
#include "samsync/status.h"

namespace samsync {

// Accepts "YYYYMMDD-NNNN" or "YYYYMMDDNNNN" (a samordningsnummer, day + 60, too).
// Checks the date and the Luhn check digit. Returns the 12 digits. The error message
// never repeats the number (it is personal data).
Result<std::string> NormalisePersonnummer(std::string_view text);

// Requires a 32-byte key and a normalised personnummer.
ChildRef DeriveChildRef(const SecretBytes& pseudonym_key, std::string_view normalised);

struct Person {
  ChildRef child_ref;
  std::string personnummer;  // normalised, YYYYMMDD-NNNN
  std::string name;
};

}  // namespace samsync

#endif  // SAMSYNC_IDENTITY_H_
