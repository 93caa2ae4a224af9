// The roster: encoding, signing, and checking of SignedRoster messages.
//
// Bytes on disk and on the wire (a "signed roster"): a standard flat Cap'n Proto
// message of one segment — segment table (segment count − 1 = 0, then the segment's
// size in words, both uint32 little-endian) followed by the canonical encoding of a
// SignedRoster. Its `roster` field holds the canonical encoding of a Roster (one
// segment, no segment table) and `signature` the Ed25519 signature by the root key over
// "samsync roster v1\n" ‖ those bytes. Open re-encodes what it decoded and requires the
// same bytes, so one roster has exactly one encoding and any altered byte is refused.
#include "samsync/roster.h"

#include "samsync/clock.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "samsync/districts.h"
#include "samsync/schema/history.capnp.h"

namespace samsync {
namespace {

constexpr std::string_view kSignatureContext = "samsync roster v1\n";

std::string FormatMinute(int64_t ms) { return FormatTime(ms, /*seconds=*/false); }
std::string ShortKey(const PublicKey& key) { return key.ToHex().substr(0, 12) + "…"; }

// Printable text: no control characters, so a roster cannot smuggle terminal escapes
// into `roster show`.
bool IsPrintable(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

Status CheckCityName(std::string_view city) {
  if (city.empty()) return Status::Invalid("the city's name is empty");
  if (city.size() > kMaxCityNameBytes || !IsPrintable(city)) {
    return Status::Invalid("the city's name must be printable text of at most " +
                           std::to_string(kMaxCityNameBytes) + " bytes");
  }
  return Status::Ok();
}

// Checks one entry. With `fix_spelling` a writer's district is brought to its canonical
// spelling (input from a person); without, it must already be canonical (signed bytes).
Status CheckEntry(RosterEntry& entry, size_t index, bool fix_spelling) {
  std::string where = "entry " + std::to_string(index + 1) + " (device " + ShortKey(entry.signing_key) + "): ";
  if (entry.signing_key.IsZero()) return Status::Invalid(where + "the signing key is all zeros");
  if (entry.transport_key.IsZero()) return Status::Invalid(where + "the transport key is all zeros");
  if (static_cast<int>(entry.role) < 0 || entry.role > Role::kServer) return Status::Invalid(where + "unknown role");
  if (entry.label.size() > kMaxRosterLabelBytes || !IsPrintable(entry.label)) {
    return Status::Invalid(where + "the label must be printable text of at most " +
                           std::to_string(kMaxRosterLabelBytes) + " bytes");
  }
  if (entry.added_ms < 0 || entry.revoked_ms < 0) return Status::Invalid(where + "a time is negative");
  if (entry.role == Role::kWriter) {
    if (entry.district.empty()) return Status::Invalid(where + "a writer needs a district");
    auto district = CanonicalDistrict(entry.district);
    if (!district.ok()) return district.status().WithContext(where.substr(0, where.size() - 2));
    if (*district != entry.district) {
      if (!fix_spelling) return Status::Invalid(where + "the district is not spelled canonically");
      entry.district = *district;
    }
  } else if (!entry.district.empty()) {
    return Status::Invalid(where + "the role " + std::string(RoleName(entry.role)) +
                           " is city-wide and takes no district");
  }
  return Status::Ok();
}

// Each signing key and each transport key appears once.
Status CheckUnique(const std::vector<RosterEntry>& entries) {
  std::vector<std::pair<PublicKey, size_t>> signing, transport;
  for (size_t i = 0; i < entries.size(); ++i) {
    signing.emplace_back(entries[i].signing_key, i);
    transport.emplace_back(entries[i].transport_key, i);
  }
  std::sort(signing.begin(), signing.end());
  std::sort(transport.begin(), transport.end());
  for (size_t i = 1; i < entries.size(); ++i) {
    if (signing[i].first == signing[i - 1].first) {
      return Status::Invalid("entries " + std::to_string(signing[i - 1].second + 1) + " and " +
                             std::to_string(signing[i].second + 1) + " share the signing key " +
                             ShortKey(signing[i].first));
    }
    if (transport[i].first == transport[i - 1].first) {
      return Status::Invalid("entries " + std::to_string(transport[i - 1].second + 1) + " and " +
                             std::to_string(transport[i].second + 1) + " share the transport key " +
                             ShortKey(transport[i].first));
    }
  }
  return Status::Ok();
}

std::span<const uint8_t> AsBytes(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.size()};
}

std::vector<uint8_t> SignedMessage(std::span<const uint8_t> roster) {
  std::vector<uint8_t> message(kSignatureContext.begin(), kSignatureContext.end());
  message.insert(message.end(), roster.begin(), roster.end());
  return message;
}

// The one encoding of a signed roster (see the top of this file).
std::vector<uint8_t> EncodeSigned(std::span<const uint8_t> roster, std::span<const uint8_t> signature) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::SignedRoster>();
  root.setRoster(capnp::Data::Reader(roster.data(), roster.size()));
  root.setSignature(capnp::Data::Reader(signature.data(), signature.size()));
  kj::Array<capnp::word> canonical = capnp::canonicalize(root.asReader());
  auto words = static_cast<uint32_t>(canonical.size());
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(words >> (8 * i));  // count − 1 = 0, then size
  auto body = AsBytes(canonical);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

kj::Array<capnp::word> CopyToWords(std::span<const uint8_t> bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  if (!bytes.empty()) std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

// Bounds the work of reading untrusted bytes to a few passes over them, whatever the
// pointers say (Cap'n Proto counts every word a reader visits).
capnp::ReaderOptions BoundedOptions(size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 4 * words + 64;
  options.nestingLimit = 16;
  return options;
}

Status Corrupt(std::string what) { return Status::Corruption("the roster " + what); }

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kWriter: return "writer";
    case Role::kCentral: return "central";
    case Role::kAuditor: return "auditor";
    case Role::kAdmin: return "admin";
    case Role::kServer: return "server";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kWriter, Role::kCentral, Role::kAuditor, Role::kAdmin, Role::kServer}) {
    if (RoleName(role) == name) return role;
  }
  return Status::Invalid("unknown role '" + std::string(name) + "' (one of: writer, central, auditor, admin, server)");
}

Result<Roster> Roster::Open(std::span<const uint8_t> signed_roster, const PublicKey* pinned_root) {
  if (signed_roster.empty() || signed_roster.size() % sizeof(capnp::word) != 0 ||
      signed_roster.size() > kMaxRosterBytes) {
    return Corrupt("is not a signed roster (" + std::to_string(signed_roster.size()) +
                   " bytes; expected a whole number of 8-byte words, at most " +
                   std::to_string(kMaxRosterBytes >> 20) + " MiB)");
  }

  // The envelope: the roster's bytes and the signature, in their one encoding.
  std::vector<uint8_t> roster_bytes;
  std::vector<uint8_t> signature;
  {
    kj::Array<capnp::word> words = CopyToWords(signed_roster);
    bool trailing = false;
    auto error = kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(words, BoundedOptions(words.size()));
      trailing = reader.getEnd() != words.end();
      auto root = reader.getRoot<schema::SignedRoster>();
      auto r = root.getRoster();
      auto s = root.getSignature();
      roster_bytes.assign(r.begin(), r.end());
      signature.assign(s.begin(), s.end());
    });
    if (error != nullptr) return Corrupt("does not decode as a SignedRoster message");
    if (trailing) return Corrupt("has bytes after its end");
  }
  if (signature.size() != 64) return Corrupt("signature is " + std::to_string(signature.size()) + " bytes, not 64");
  if (roster_bytes.empty() || roster_bytes.size() % sizeof(capnp::word) != 0) {
    return Corrupt("body is not a whole number of 8-byte words");
  }
  if (EncodeSigned(roster_bytes, signature) != std::vector<uint8_t>(signed_roster.begin(), signed_roster.end())) {
    return Corrupt("envelope is not in canonical form");
  }

  // The roster itself. Its root key is read before the signature can be checked; the
  // reading is bounded like any untrusted input.
  Roster out;
  Status status;
  kj::Array<capnp::word> words = CopyToWords(roster_bytes);
  auto error = kj::runCatchingExceptions([&] {
    kj::ArrayPtr<const capnp::word> segments[] = {words};
    capnp::SegmentArrayMessageReader reader(segments, BoundedOptions(words.size()));
    auto roster = reader.getRoot<schema::Roster>();
    auto root_key = PublicKey::FromBytes({roster.getRootKey().begin(), roster.getRootKey().size()}, "root key");
    if (!root_key.ok()) {
      status = Corrupt("names no valid root key (" + root_key.status().message() + ")");
      return;
    }
    if (pinned_root != nullptr && *root_key != *pinned_root) {
      status = Status(Code::kUnauthorised, "the roster is signed by root key " + root_key->ToHex() +
                                               ", not by this city's root key " + pinned_root->ToHex());
      return;
    }
    if (!VerifySignature(*root_key, SignedMessage(roster_bytes), signature)) {
      status = Status(Code::kBadSignature, "the roster's signature does not verify: it was altered, or not "
                                           "signed by the root key it names");
      return;
    }
    kj::Array<capnp::word> canonical = capnp::canonicalize(roster);
    auto canonical_bytes = AsBytes(canonical);
    if (!std::equal(canonical_bytes.begin(), canonical_bytes.end(), roster_bytes.begin(), roster_bytes.end())) {
      status = Corrupt("body is not in canonical form");
      return;
    }
    out.root_key_ = *root_key;
    out.city_ = std::string(roster.getCity().begin(), roster.getCity().size());
    out.version_ = roster.getVersion();
    out.issued_ms_ = roster.getIssuedMs();
    auto entries = roster.getEntries();
    if (entries.size() > kMaxRosterEntries) {
      status = Corrupt("has " + std::to_string(entries.size()) + " entries, more than the limit of " +
                       std::to_string(kMaxRosterEntries));
      return;
    }
    out.entries_.reserve(entries.size());
    for (auto e : entries) {
      RosterEntry entry;
      auto signing = PublicKey::FromBytes({e.getSigningKey().begin(), e.getSigningKey().size()}, "signing key");
      auto transport =
          PublicKey::FromBytes({e.getTransportKey().begin(), e.getTransportKey().size()}, "transport key");
      auto role = static_cast<uint16_t>(e.getRole());
      if (!signing.ok() || !transport.ok() || role > static_cast<uint16_t>(Role::kServer)) {
        status = Corrupt("entry " + std::to_string(out.entries_.size() + 1) +
                         " has a key of the wrong size or an unknown role");
        return;
      }
      entry.signing_key = *signing;
      entry.transport_key = *transport;
      entry.role = static_cast<Role>(role);
      entry.district = std::string(e.getDistrict().begin(), e.getDistrict().size());
      entry.label = std::string(e.getLabel().begin(), e.getLabel().size());
      entry.added_ms = e.getAddedMs();
      entry.revoked_ms = e.getRevokedMs();
      out.entries_.push_back(std::move(entry));
    }
  });
  if (error != nullptr) return Corrupt("body does not decode as a Roster message");
  SAMSYNC_RETURN_IF_ERROR(status);

  // Signed, but still held to the rules Sign applies: a bad roster is refused whoever
  // signed it.
  Status valid = CheckCityName(out.city_);
  if (valid.ok() && out.version_ == 0) valid = Status::Invalid("the version is 0");
  if (valid.ok() && out.issued_ms_ < 0) valid = Status::Invalid("the issue time is negative");
  for (size_t i = 0; valid.ok() && i < out.entries_.size(); ++i) valid = CheckEntry(out.entries_[i], i, false);
  if (valid.ok()) valid = CheckUnique(out.entries_);
  if (!valid.ok()) return Corrupt("is invalid: " + valid.message());

  out.signed_bytes_.assign(signed_roster.begin(), signed_roster.end());
  out.BuildIndex();
  return out;
}

Result<Roster> Roster::Sign(const SigningKey& root, std::string_view city, uint64_t version, int64_t issued_ms,
                            std::vector<RosterEntry> entries) {
  SAMSYNC_RETURN_IF_ERROR(CheckCityName(city));
  if (version == 0) return Status::Invalid("roster versions start at 1");
  if (issued_ms < 0) return Status::Invalid("the roster's issue time is negative");
  if (entries.size() > kMaxRosterEntries) {
    return Status::Invalid("a roster holds at most " + std::to_string(kMaxRosterEntries) + " entries");
  }
  for (size_t i = 0; i < entries.size(); ++i) SAMSYNC_RETURN_IF_ERROR(CheckEntry(entries[i], i, true));
  SAMSYNC_RETURN_IF_ERROR(CheckUnique(entries));

  capnp::MallocMessageBuilder builder;
  auto roster = builder.initRoot<schema::Roster>();
  std::string city_text(city);
  roster.setCity(city_text);
  roster.setVersion(version);
  roster.setIssuedMs(issued_ms);
  roster.setRootKey(capnp::Data::Reader(root.public_key().bytes.data(), 32));
  auto list = roster.initEntries(static_cast<unsigned>(entries.size()));
  for (unsigned i = 0; i < entries.size(); ++i) {
    const RosterEntry& entry = entries[i];
    auto e = list[i];
    e.setSigningKey(capnp::Data::Reader(entry.signing_key.bytes.data(), 32));
    e.setTransportKey(capnp::Data::Reader(entry.transport_key.bytes.data(), 32));
    e.setDistrict(entry.district);
    e.setRole(static_cast<schema::Role>(entry.role));
    e.setLabel(entry.label);
    e.setAddedMs(entry.added_ms);
    e.setRevokedMs(entry.revoked_ms);
  }
  kj::Array<capnp::word> canonical = capnp::canonicalize(roster.asReader());
  auto body = AsBytes(canonical);
  Signature signature = root.Sign(SignedMessage(body));
  std::vector<uint8_t> encoded = EncodeSigned(body, signature);
  return Open(encoded, &root.public_key());
}

void Roster::BuildIndex() {
  by_signing_key_.clear();
  by_transport_key_.clear();
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    by_signing_key_.emplace_back(entries_[i].signing_key, i);
    by_transport_key_.emplace_back(entries_[i].transport_key, i);
  }
  std::sort(by_signing_key_.begin(), by_signing_key_.end());
  std::sort(by_transport_key_.begin(), by_transport_key_.end());
}

namespace {

const RosterEntry* Find(const std::vector<std::pair<PublicKey, uint32_t>>& index,
                        const std::vector<RosterEntry>& entries, const PublicKey& key) {
  auto it = std::lower_bound(index.begin(), index.end(), key,
                             [](const std::pair<PublicKey, uint32_t>& a, const PublicKey& k) { return a.first < k; });
  return it != index.end() && it->first == key ? &entries[it->second] : nullptr;
}

}  // namespace

const RosterEntry* Roster::FindSigningKey(const PublicKey& key) const {
  return Find(by_signing_key_, entries_, key);
}

const RosterEntry* Roster::FindTransportKey(const PublicKey& key) const {
  return Find(by_transport_key_, entries_, key);
}

Status Roster::MayWrite(const PublicKey& key, std::string_view district, int64_t time_ms) const {
  const RosterEntry* entry = FindSigningKey(key);
  std::string device = "device " + ShortKey(key);
  auto refuse = [&](const std::string& why) {
    return Status(Code::kUnauthorised, device + " " + why + " (roster version " + std::to_string(version_) + ")");
  };
  if (entry == nullptr) return refuse("is not in the roster");
  if (entry->role != Role::kWriter) {
    return refuse("has the role " + std::string(RoleName(entry->role)) + ", not district writer");
  }
  if (entry->district != district) {
    return refuse("is a writer of " + entry->district + ", not " + std::string(district));
  }
  if (entry->revoked_ms != 0 && time_ms >= entry->revoked_ms) {
    return refuse("was revoked at " + FormatMinute(entry->revoked_ms) + ", before this was signed");
  }
  return Status::Ok();
}

Status Roster::CheckReplacement(const Roster& next) const {
  if (next.root_key_ != root_key_) {
    return Status(Code::kUnauthorised, "roster version " + std::to_string(next.version_) + " is signed by root key " +
                                           next.root_key_.ToHex() + ", not by the root key of the roster held (" +
                                           root_key_.ToHex() + ")");
  }
  if (next.version_ < version_) {
    return Status::Invalid("roster version " + std::to_string(next.version_) + " is older than version " +
                           std::to_string(version_) + " already held; a roster never goes back");
  }
  if (next.version_ == version_ && next.signed_bytes_ != signed_bytes_) {
    return Status::Invalid("roster version " + std::to_string(next.version_) +
                           " differs from the version " + std::to_string(version_) +
                           " already held: two rosters with one version number");
  }
  return Status::Ok();
}

}  // namespace samsync
