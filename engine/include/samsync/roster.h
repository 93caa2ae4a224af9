// The city's roster: which device keys may do what, signed by the city's root key.
//
// A roster is a versioned document (schema/history.capnp: Roster, SignedRoster). Every
// binary checks its signature before trusting it, and a store or server that has a
// roster never replaces it with an older version (a rollback) or with one signed by
// another root. Revoked entries stay in the roster with the time of revocation, so a
// commit signed before that time stays valid and one signed after is refused.
//
// The signed bytes are a one-segment Cap'n Proto message whose content is the
// canonical encoding of a SignedRoster; its `roster` field is the canonical encoding
// of a Roster, signed by the root key over "samsync roster v1\n" ‖ those bytes. There
// is exactly one encoding of a roster: Open refuses any other (kCorruption).
//
// Roster objects are immutable values; any thread may read one.
#ifndef SAMSYNC_ROSTER_H_
#define SAMSYNC_ROSTER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "samsync/keys.h"
#include "samsync/status.h"

namespace samsync {

// Bounds on untrusted rosters (Open refuses more with kCorruption, Sign with
// kInvalidInput).
inline constexpr size_t kMaxRosterBytes = size_t{64} << 20;
inline constexpr size_t kMaxRosterEntries = 100'000;
inline constexpr size_t kMaxRosterLabelBytes = 200;
inline constexpr size_t kMaxCityNameBytes = 253;  // a DNS name, e.g. "stockholm.se"

enum class Role { kWriter = 0, kCentral = 1, kAuditor = 2, kAdmin = 3, kServer = 4 };
std::string_view RoleName(Role role);  // "writer", "central", "auditor", "admin", "server"
Result<Role> ParseRole(std::string_view name);    // kInvalidInput listing the roles

struct RosterEntry {
  PublicKey signing_key;
  PublicKey transport_key;
  std::string district;  // canonical name; empty for city-wide roles (central, auditor, admin)
  Role role = Role::kWriter;
  std::string label;
  int64_t added_ms = 0;
  int64_t revoked_ms = 0;  // 0 = active
};

class Roster {
 public:
  // Decodes `signed_roster` (a SignedRoster message) and checks its signature by the
  // root key it names. When `pinned_root` is given, that root must be the one. Fails
  // with kBadSignature if the signature does not verify, kCorruption if the bytes do
  // not decode, are not the one canonical encoding, exceed the bounds above, or break
  // a rule Sign enforces; kUnauthorised if signed by a root other than `pinned_root`.
  // Without `pinned_root` the roster is only as trustworthy as the root key it names:
  // callers compare root_key() with the city's.
  static Result<Roster> Open(std::span<const uint8_t> signed_roster, const PublicKey* pinned_root = nullptr);

  // Signs a new roster version with the city's root key and returns it opened. Fails
  // with kInvalidInput if two entries share a signing key or a transport key, a
  // writer lacks a district, or a district is not one of the city's, a city-wide role
  // names a district, a key is all zeros, a label or the city's name is not printable
  // text within its bound, or `version` is 0. Writers' districts are stored in their
  // canonical spelling ("skarpnäck" becomes "Skarpnäck"). Entries keep their order.
  static Result<Roster> Sign(const SigningKey& root, std::string_view city, uint64_t version, int64_t issued_ms,
                             std::vector<RosterEntry> entries);

  const std::string& city() const { return city_; }
  uint64_t version() const { return version_; }
  int64_t issued_ms() const { return issued_ms_; }
  const PublicKey& root_key() const { return root_key_; }
  const std::vector<RosterEntry>& entries() const { return entries_; }
  // The exact signed bytes, to store or hand on.
  const std::vector<uint8_t>& signed_bytes() const { return signed_bytes_; }

  // nullptr when the key is not in the roster. Valid while the Roster lives.
  const RosterEntry* FindSigningKey(const PublicKey& key) const;
  const RosterEntry* FindTransportKey(const PublicKey& key) const;

  // OK when `key` belongs to a writer of `district` (canonical spelling) that was not
  // revoked at `time_ms` (revoked means revoked_ms <= time_ms).
  // Otherwise kUnauthorised with the reason ("not in the roster", "a writer of
  // Farsta, not Bromma", "revoked at 2016-10-01 12:00 UTC, before this was signed").
  Status MayWrite(const PublicKey& key, std::string_view district, int64_t time_ms) const;

  // Whether `next` may replace this roster: same root key, and a higher version (or
  // the same version with identical bytes). kUnauthorised / kInvalidInput otherwise,
  // naming both versions.
  Status CheckReplacement(const Roster& next) const;

 private:
  std::string city_;
  uint64_t version_ = 0;
  int64_t issued_ms_ = 0;
  PublicKey root_key_;
  std::vector<RosterEntry> entries_;
  std::vector<uint8_t> signed_bytes_;
  // (key, index into entries_), sorted by key, for the Find functions.
  std::vector<std::pair<PublicKey, uint32_t>> by_signing_key_;
  std::vector<std::pair<PublicKey, uint32_t>> by_transport_key_;

  void BuildIndex();
};

}  // namespace samsync

#endif  // SAMSYNC_ROSTER_H_
