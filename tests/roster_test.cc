// The roster (signing, checking, rollback, authorisation) and the city admin folder.
#include "samsync/roster.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "samsync/city.h"
#include "samsync/keys.h"
#include "samsync/schema/history.capnp.h"
#include "test_support.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int64_t kNow = 1479211200000;          // 2016-11-15 12:00 UTC
constexpr int64_t kOctober1 = 1475323200000;     // 2016-10-01 12:00 UTC

std::vector<uint8_t> FromHex(std::string_view hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  }
  return out;
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::vector<uint8_t> FlipByte(std::vector<uint8_t> bytes, size_t at, uint8_t mask = 0xff) {
  bytes[at] ^= mask;
  return bytes;
}

// An entry with fresh random keys.
RosterEntry Device(Role role, std::string district = {}, std::string label = {}) {
  RosterEntry entry;
  entry.signing_key = SigningKey::Generate().public_key();
  entry.transport_key = TransportKey::Generate().public_key();
  entry.role = role;
  entry.district = std::move(district);
  entry.label = std::move(label);
  entry.added_ms = kNow - 1000;
  return entry;
}

Roster SignOrDie(const SigningKey& root, uint64_t version, std::vector<RosterEntry> entries) {
  auto roster = Roster::Sign(root, "stockholm.se", version, kNow, std::move(entries));
  EXPECT_TRUE(roster.ok()) << roster.status().message();
  return std::move(roster).value();
}

// The envelope as the roster format defines it: a one-segment flat message whose
// content is canonical. `signature_first` lays the fields out in another order: same
// content, a non-canonical encoding.
std::vector<uint8_t> Envelope(std::span<const uint8_t> body, std::span<const uint8_t> signature,
                              bool signature_first = false) {
  capnp::MallocMessageBuilder builder;
  auto root = builder.initRoot<schema::SignedRoster>();
  if (signature_first) {
    root.setSignature(capnp::Data::Reader(signature.data(), signature.size()));
    root.setRoster(capnp::Data::Reader(body.data(), body.size()));
    kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
    auto bytes = words.asBytes();
    return {bytes.begin(), bytes.end()};
  }
  root.setRoster(capnp::Data::Reader(body.data(), body.size()));
  root.setSignature(capnp::Data::Reader(signature.data(), signature.size()));
  kj::Array<capnp::word> canonical = capnp::canonicalize(root.asReader());
  std::vector<uint8_t> out(8, 0);  // segment count − 1 = 0, then the size in words
  auto n = static_cast<uint32_t>(canonical.size());
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  auto bytes = canonical.asBytes();
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

// Signs arbitrary body bytes the way Roster::Sign does.
std::vector<uint8_t> SignBody(const SigningKey& root, std::span<const uint8_t> body) {
  std::string context = "samsync roster v1\n";
  std::vector<uint8_t> message(context.begin(), context.end());
  message.insert(message.end(), body.begin(), body.end());
  Signature signature = root.Sign(message);
  return Envelope(body, signature);
}

// The canonical encoding of the builder's Roster.
std::vector<uint8_t> CanonicalBody(capnp::MallocMessageBuilder& builder) {
  auto reader = builder.getRoot<schema::Roster>().asReader();
  kj::Array<capnp::word> words = capnp::canonicalize(reader);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

void FillRoster(schema::Roster::Builder roster, const PublicKey& root, size_t entries) {
  roster.setCity("stockholm.se");
  roster.setVersion(1);
  roster.setIssuedMs(kNow);
  roster.setRootKey(capnp::Data::Reader(root.bytes.data(), 32));
  auto list = roster.initEntries(static_cast<unsigned>(entries));
  for (unsigned i = 0; i < entries; ++i) {
    PublicKey signing = SigningKey::Generate().public_key();
    PublicKey transport = TransportKey::Generate().public_key();
    list[i].setSigningKey(capnp::Data::Reader(signing.bytes.data(), 32));
    list[i].setTransportKey(capnp::Data::Reader(transport.bytes.data(), 32));
    list[i].setRole(schema::Role::WRITER);
    list[i].setDistrict("Farsta");
  }
}

// --- Ed25519: RFC 8032 §7.1 ------------------------------------------------------------

// RFC 8032 §7.1, TEST 1, TEST 2, TEST 3 (PureEdDSA Ed25519), as copied into
// /work/shared/vectors/ed25519.json: secret key seed, public key, message, signature.
struct Rfc8032Vector {
  const char* name;
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};
constexpr Rfc8032Vector kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Test, Rfc8032Section71VectorsSignAndVerifyByteForByte) {
  for (const Rfc8032Vector& v : kRfc8032) {
    SCOPED_TRACE(v.name);
    SigningKey key = SigningKey::FromSeed(FromHex(v.seed));
    EXPECT_EQ(key.public_key().ToHex(), v.public_key);
    std::vector<uint8_t> message = FromHex(v.message);
    Signature signature = key.Sign(message);
    EXPECT_EQ(ToHex(signature), v.signature);
    EXPECT_TRUE(VerifySignature(key.public_key(), message, signature));

    auto public_key = PublicKey::FromHex(v.public_key);
    ASSERT_TRUE(public_key.ok());
    EXPECT_TRUE(VerifySignature(*public_key, message, FromHex(v.signature)));
    for (size_t bit = 0; bit < 8 * signature.size(); bit += 37) {
      EXPECT_FALSE(VerifySignature(*public_key, message, FlipByte(FromHex(v.signature), bit / 8,
                                                                  static_cast<uint8_t>(1u << (bit % 8)))))
          << "signature bit " << bit;
    }
    if (!message.empty()) {
      EXPECT_FALSE(VerifySignature(*public_key, FlipByte(message, 0, 1), signature));
    }
    PublicKey other_key = *public_key;
    other_key.bytes[0] ^= 1;
    EXPECT_FALSE(VerifySignature(other_key, message, signature));
    EXPECT_FALSE(VerifySignature(*public_key, message, std::span(signature).first(63)));
  }
}

// --- Roster: signing and opening -------------------------------------------------------

TEST(RosterTest, RoleNamesRoundTrip) {
  for (Role role : {Role::kWriter, Role::kCentral, Role::kAuditor, Role::kAdmin}) {
    auto parsed = ParseRole(RoleName(role));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, role);
  }
  auto bad = ParseRole("boss");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidInput);
  EXPECT_NE(bad.status().message().find("writer, central, auditor, admin"), std::string::npos);
}

TEST(RosterTest, SignAndOpenRoundTrip) {
  SigningKey root = SigningKey::Generate();
  RosterEntry writer = Device(Role::kWriter, "skarpnäck", "Skarpnäck mottagning 1");
  RosterEntry central = Device(Role::kCentral, "", "Centralt");
  central.revoked_ms = kNow;
  Roster signed_roster = SignOrDie(root, 7, {writer, central});

  for (const PublicKey* pin : {static_cast<const PublicKey*>(nullptr), &root.public_key()}) {
    auto opened = Roster::Open(signed_roster.signed_bytes(), pin);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ(opened->city(), "stockholm.se");
    EXPECT_EQ(opened->version(), 7u);
    EXPECT_EQ(opened->issued_ms(), kNow);
    EXPECT_EQ(opened->root_key(), root.public_key());
    EXPECT_EQ(opened->signed_bytes(), signed_roster.signed_bytes());
    ASSERT_EQ(opened->entries().size(), 2u);
    const RosterEntry& w = opened->entries()[0];
    EXPECT_EQ(w.signing_key, writer.signing_key);
    EXPECT_EQ(w.transport_key, writer.transport_key);
    EXPECT_EQ(w.district, "Skarpnäck");  // canonical spelling
    EXPECT_EQ(w.role, Role::kWriter);
    EXPECT_EQ(w.label, "Skarpnäck mottagning 1");
    EXPECT_EQ(w.added_ms, kNow - 1000);
    EXPECT_EQ(w.revoked_ms, 0);
    EXPECT_EQ(opened->entries()[1].role, Role::kCentral);
    EXPECT_EQ(opened->entries()[1].revoked_ms, kNow);

    EXPECT_EQ(opened->FindSigningKey(writer.signing_key), &opened->entries()[0]);
    EXPECT_EQ(opened->FindTransportKey(central.transport_key), &opened->entries()[1]);
    EXPECT_EQ(opened->FindSigningKey(writer.transport_key), nullptr);
    EXPECT_EQ(opened->FindTransportKey(writer.signing_key), nullptr);
  }
}

TEST(RosterTest, SigningIsDeterministic) {
  // Ed25519 is deterministic and the encoding canonical: same input, same bytes.
  SigningKey root = SigningKey::Generate();
  std::vector<RosterEntry> entries = {Device(Role::kWriter, "Farsta"), Device(Role::kAuditor)};
  EXPECT_EQ(SignOrDie(root, 2, entries).signed_bytes(), SignOrDie(root, 2, entries).signed_bytes());
}

TEST(RosterTest, EveryFlippedByteIsRefused) {
  SigningKey root = SigningKey::Generate();
  Roster roster = SignOrDie(root, 3, {Device(Role::kWriter, "Farsta", "F1"), Device(Role::kAdmin, "", "IT")});
  const std::vector<uint8_t>& bytes = roster.signed_bytes();
  for (size_t at = 0; at < bytes.size(); ++at) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto opened = Roster::Open(FlipByte(bytes, at, mask));
      ASSERT_FALSE(opened.ok()) << "byte " << at << " ^ " << int{mask} << " was accepted";
      Code code = opened.status().code();
      EXPECT_TRUE(code == Code::kBadSignature || code == Code::kCorruption)
          << "byte " << at << ": " << CodeName(code) << " " << opened.status().message();
    }
  }
}

TEST(RosterTest, TruncatedOrExtendedBytesAreRefused) {
  SigningKey root = SigningKey::Generate();
  std::vector<uint8_t> bytes = SignOrDie(root, 1, {Device(Role::kWriter, "Bromma")}).signed_bytes();
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto opened = Roster::Open(std::span(bytes).first(size));
    ASSERT_FALSE(opened.ok()) << size;
    EXPECT_EQ(opened.status().code(), Code::kCorruption) << size;
  }
  std::vector<uint8_t> longer = bytes;
  longer.resize(bytes.size() + 8, 0);
  auto opened = Roster::Open(longer);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);

  std::vector<uint8_t> huge(kMaxRosterBytes + 8, 0);
  EXPECT_EQ(Roster::Open(huge).status().code(), Code::kCorruption);
}

TEST(RosterTest, BadSignatureIsRefused) {
  SigningKey root = SigningKey::Generate();
  std::vector<uint8_t> bytes = SignOrDie(root, 1, {Device(Role::kWriter, "Bromma")}).signed_bytes();
  // The signature is the last 64 bytes.
  auto opened = Roster::Open(FlipByte(bytes, bytes.size() - 1, 0x01));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kBadSignature);
  EXPECT_NE(opened.status().message().find("signature does not verify"), std::string::npos);
}

TEST(RosterTest, SignedByAnotherRootIsUnauthorisedWhenPinned) {
  SigningKey city_root = SigningKey::Generate();
  SigningKey other_root = SigningKey::Generate();
  Roster forged = SignOrDie(other_root, 99, {Device(Role::kWriter, "Bromma")});
  // Valid on its own terms...
  ASSERT_TRUE(Roster::Open(forged.signed_bytes()).ok());
  // ...but not the city's.
  auto opened = Roster::Open(forged.signed_bytes(), &city_root.public_key());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kUnauthorised);
  EXPECT_NE(opened.status().message().find(other_root.public_key().ToHex()), std::string::npos);
}

TEST(RosterTest, RosterClaimingTheCitysRootButSignedByAnotherIsABadSignature) {
  SigningKey city_root = SigningKey::Generate();
  SigningKey other_root = SigningKey::Generate();
  capnp::MallocMessageBuilder builder;
  FillRoster(builder.initRoot<schema::Roster>(), city_root.public_key(), 1);
  auto opened = Roster::Open(SignBody(other_root, CanonicalBody(builder)), &city_root.public_key());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kBadSignature);
}

TEST(RosterTest, HandBuiltCanonicalRosterOpens) {
  // The test's own encoder agrees with the format: the negative tests below differ
  // from this one in one respect each.
  SigningKey root = SigningKey::Generate();
  capnp::MallocMessageBuilder builder;
  FillRoster(builder.initRoot<schema::Roster>(), root.public_key(), 2);
  auto opened = Roster::Open(SignBody(root, CanonicalBody(builder)), &root.public_key());
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(opened->entries().size(), 2u);
}

TEST(RosterTest, NonCanonicalBodyIsRefusedEvenWhenSigned) {
  SigningKey root = SigningKey::Generate();
  capnp::MallocMessageBuilder builder;
  auto roster = builder.initRoot<schema::Roster>();
  roster.setCity("a much longer name that is then replaced and leaves garbage behind");
  FillRoster(roster, root.public_key(), 1);
  // The builder's own segment holds the abandoned text: valid, signed, not canonical.
  auto segment = builder.getSegmentsForOutput()[0].asBytes();
  std::vector<uint8_t> body(segment.begin(), segment.end());
  ASSERT_NE(body, CanonicalBody(builder));
  auto opened = Roster::Open(SignBody(root, body), &root.public_key());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
  EXPECT_NE(opened.status().message().find("canonical"), std::string::npos) << opened.status().message();
}

TEST(RosterTest, NonCanonicalEnvelopeIsRefused) {
  SigningKey root = SigningKey::Generate();
  Roster roster = SignOrDie(root, 1, {Device(Role::kCentral)});
  // Take the body and signature apart, then wrap them with the fields laid out in
  // another order: same content, another encoding.
  capnp::MallocMessageBuilder builder;
  FillRoster(builder.initRoot<schema::Roster>(), root.public_key(), 1);
  std::vector<uint8_t> body = CanonicalBody(builder);
  std::string context = "samsync roster v1\n";
  std::vector<uint8_t> message(context.begin(), context.end());
  message.insert(message.end(), body.begin(), body.end());
  Signature signature = root.Sign(message);
  ASSERT_TRUE(Roster::Open(Envelope(body, signature)).ok());
  std::vector<uint8_t> reordered = Envelope(body, signature, /*signature_first=*/true);
  auto opened = Roster::Open(reordered);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
}

TEST(RosterTest, SignedRosterBreakingTheRulesIsRefused) {
  SigningKey root = SigningKey::Generate();
  auto open_with = [&](auto&& mutate) {
    capnp::MallocMessageBuilder builder;
    auto roster = builder.initRoot<schema::Roster>();
    FillRoster(roster, root.public_key(), 2);
    mutate(roster);
    return Roster::Open(SignBody(root, CanonicalBody(builder)), &root.public_key());
  };
  struct Case {
    const char* name;
    std::function<void(schema::Roster::Builder)> mutate;
  } cases[] = {
      {"shared signing key", [](schema::Roster::Builder r) {
         r.getEntries()[1].setSigningKey(r.getEntries()[0].getSigningKey().asReader());
       }},
      {"shared transport key", [](schema::Roster::Builder r) {
         r.getEntries()[1].setTransportKey(r.getEntries()[0].getTransportKey().asReader());
       }},
      {"writer without district", [](schema::Roster::Builder r) { r.getEntries()[0].setDistrict(""); }},
      {"unknown district", [](schema::Roster::Builder r) { r.getEntries()[0].setDistrict("Gamla stan"); }},
      {"non-canonical district", [](schema::Roster::Builder r) { r.getEntries()[0].setDistrict("farsta"); }},
      {"central with district", [](schema::Roster::Builder r) { r.getEntries()[0].setRole(schema::Role::CENTRAL); }},
      {"unknown role", [](schema::Roster::Builder r) { r.getEntries()[0].setRole(static_cast<schema::Role>(9)); }},
      {"short key", [](schema::Roster::Builder r) {
         uint8_t k[31] = {1};
         r.getEntries()[0].setSigningKey(capnp::Data::Reader(k, 31));
       }},
      {"version 0", [](schema::Roster::Builder r) { r.setVersion(0); }},
      {"empty city", [](schema::Roster::Builder r) { r.setCity(""); }},
      {"escape in label", [](schema::Roster::Builder r) { r.getEntries()[0].setLabel("\x1b[31mred"); }},
  };
  for (const Case& c : cases) {
    auto opened = open_with(c.mutate);
    ASSERT_FALSE(opened.ok()) << c.name;
    EXPECT_EQ(opened.status().code(), Code::kCorruption) << c.name << ": " << opened.status().message();
  }
}

TEST(RosterTest, SignRefusesBadEntriesNamingTheProblem) {
  SigningKey root = SigningKey::Generate();
  auto refused = [&](std::vector<RosterEntry> entries, const std::string& says, uint64_t version = 1,
                     std::string city = "stockholm.se") {
    auto roster = Roster::Sign(root, city, version, kNow, std::move(entries));
    ASSERT_FALSE(roster.ok()) << says;
    EXPECT_EQ(roster.status().code(), Code::kInvalidInput);
    EXPECT_NE(roster.status().message().find(says), std::string::npos) << roster.status().message();
  };
  RosterEntry a = Device(Role::kWriter, "Farsta");
  RosterEntry b = Device(Role::kWriter, "Bromma");
  RosterEntry same_signing = b;
  same_signing.signing_key = a.signing_key;
  refused({a, same_signing}, "share the signing key");
  RosterEntry same_transport = b;
  same_transport.transport_key = a.transport_key;
  refused({a, same_transport}, "share the transport key");
  refused({Device(Role::kWriter)}, "a writer needs a district");
  refused({Device(Role::kWriter, "Gamla stan")}, "unknown district 'Gamla stan'");
  refused({Device(Role::kAuditor, "Farsta")}, "city-wide");
  refused({Device(Role::kWriter, "Farsta", std::string(kMaxRosterLabelBytes + 1, 'x'))}, "label");
  refused({Device(Role::kWriter, "Farsta", "tab\there")}, "label");
  RosterEntry zero = Device(Role::kCentral);
  zero.signing_key = PublicKey();
  refused({zero}, "all zeros");
  refused({a}, "versions start at 1", 0);
  refused({a}, "name is empty", 1, "");
  refused({a}, "printable", 1, "stock\nholm");

  std::vector<RosterEntry> too_many(kMaxRosterEntries + 1, a);
  refused(std::move(too_many), "at most");
}

// --- Replacement: no rollback, no other root -------------------------------------------

TEST(RosterTest, CheckReplacementRefusesRollbackAndAnotherRoot) {
  SigningKey root = SigningKey::Generate();
  RosterEntry writer = Device(Role::kWriter, "Farsta");
  Roster v1 = SignOrDie(root, 1, {});
  Roster v2 = SignOrDie(root, 2, {writer});
  Roster v5 = SignOrDie(root, 5, {writer, Device(Role::kCentral)});

  EXPECT_TRUE(v1.CheckReplacement(v2).ok());
  EXPECT_TRUE(v1.CheckReplacement(v5).ok());  // versions may be skipped
  EXPECT_TRUE(v2.CheckReplacement(v2).ok());  // the same version again: a no-op
  auto reopened = Roster::Open(v2.signed_bytes(), &root.public_key());
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE(v2.CheckReplacement(*reopened).ok());

  Status rollback = v5.CheckReplacement(v2);
  EXPECT_EQ(rollback.code(), Code::kInvalidInput);
  EXPECT_NE(rollback.message().find("version 2 is older than version 5"), std::string::npos) << rollback.message();

  Roster other_v2 = SignOrDie(root, 2, {Device(Role::kWriter, "Bromma")});
  Status fork = v2.CheckReplacement(other_v2);
  EXPECT_EQ(fork.code(), Code::kInvalidInput);
  EXPECT_NE(fork.message().find("two rosters with one version"), std::string::npos) << fork.message();

  SigningKey other_root = SigningKey::Generate();
  Roster foreign = SignOrDie(other_root, 100, {writer});
  Status foreign_status = v2.CheckReplacement(foreign);
  EXPECT_EQ(foreign_status.code(), Code::kUnauthorised);
  EXPECT_NE(foreign_status.message().find(other_root.public_key().ToHex()), std::string::npos);
}

// --- MayWrite ---------------------------------------------------------------------------

TEST(RosterTest, MayWriteChecksRoleDistrictAndRevocation) {
  SigningKey root = SigningKey::Generate();
  RosterEntry farsta = Device(Role::kWriter, "Farsta");
  RosterEntry revoked = Device(Role::kWriter, "Bromma");
  revoked.revoked_ms = kOctober1;
  RosterEntry central = Device(Role::kCentral);
  RosterEntry auditor = Device(Role::kAuditor);
  Roster roster = SignOrDie(root, 4, {farsta, revoked, central, auditor});

  EXPECT_TRUE(roster.MayWrite(farsta.signing_key, "Farsta", kNow).ok());

  auto expect_refused = [&](const PublicKey& key, std::string_view district, int64_t time, const std::string& says) {
    Status status = roster.MayWrite(key, district, time);
    EXPECT_EQ(status.code(), Code::kUnauthorised) << says;
    EXPECT_NE(status.message().find(says), std::string::npos) << status.message();
  };
  expect_refused(farsta.signing_key, "Bromma", kNow, "a writer of Farsta, not Bromma");
  expect_refused(revoked.signing_key, "Bromma", kNow, "revoked at 2016-10-01 12:00 UTC, before this was signed");
  expect_refused(revoked.signing_key, "Bromma", kOctober1, "revoked at");  // from that very millisecond
  EXPECT_TRUE(roster.MayWrite(revoked.signing_key, "Bromma", kOctober1 - 1).ok());
  expect_refused(central.signing_key, "Farsta", kNow, "has the role central, not district writer");
  expect_refused(auditor.signing_key, "Farsta", kNow, "has the role auditor");
  expect_refused(SigningKey::Generate().public_key(), "Farsta", kNow, "is not in the roster");
  // A transport key is not a signing key.
  expect_refused(farsta.transport_key, "Farsta", kNow, "is not in the roster");
}

// --- The city folder --------------------------------------------------------------------

class CityTest : public ::testing::Test {
 protected:
  CityTest() : clock_(kNow), key_file_(temp_.Sub("city.key")) {
    EXPECT_TRUE(CreateKeyFile(key_file_).ok());
  }

  KeySource FileKey() const { return KeySource::KeyFile(key_file_); }
  static KeySource Passphrase(std::string_view text) { return KeySource::Passphrase(SecretBytes::CopyOf(text)); }

  std::unique_ptr<City> CreateOrDie() {
    auto city = City::Create(Dir(), FileKey(), "stockholm.se", clock_);
    EXPECT_TRUE(city.ok()) << city.status().message();
    return city.ok() ? std::move(city).value() : nullptr;
  }
  std::unique_ptr<City> OpenOrDie() {
    auto city = City::Open(Dir(), FileKey(), clock_);
    EXPECT_TRUE(city.ok()) << city.status().message();
    return city.ok() ? std::move(city).value() : nullptr;
  }
  std::string Dir() const { return temp_.Sub("city"); }
  static std::vector<uint8_t> Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void Spit(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }

  TempDir temp_;
  FixedClock clock_;
  std::string key_file_;
};

TEST_F(CityTest, CreateWritesRosterVersionOneSignedByTheSealedRoot) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  EXPECT_EQ(city->name(), "stockholm.se");
  EXPECT_EQ(city->roster().version(), 1u);
  EXPECT_EQ(city->roster().issued_ms(), kNow);
  EXPECT_TRUE(city->roster().entries().empty());
  EXPECT_EQ(city->roster().root_key(), city->root_key());
  EXPECT_EQ(city->RosterPath(1), Dir() + "/rosters/000001.roster");
  EXPECT_EQ(city->LatestPath(), Dir() + "/roster.latest");
  EXPECT_EQ(Slurp(city->RosterPath(1)), city->roster().signed_bytes());
  EXPECT_EQ(Slurp(city->LatestPath()), city->roster().signed_bytes());
  EXPECT_EQ(fs::status(Dir()).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);

  auto reopened = OpenOrDie();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->root_key(), city->root_key());
  EXPECT_EQ(reopened->roster().signed_bytes(), city->roster().signed_bytes());
}

TEST_F(CityTest, TheRootKeyIsNotStoredInTheClear) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  // The public key is in the header; no word-aligned 32 bytes of it (where Cap'n Proto
  // would put a stored seed) is the seed of the root key.
  std::vector<uint8_t> header = Slurp(Dir() + "/city.header");
  auto pub = city->root_key().span();
  EXPECT_NE(std::search(header.begin(), header.end(), pub.begin(), pub.end()), header.end());
  for (size_t at = 0; at + 32 <= header.size(); at += 8) {
    SigningKey candidate = SigningKey::FromSeed(std::span(header).subspan(at, 32));
    EXPECT_NE(candidate.public_key(), city->root_key()) << "seed found at " << at;
  }
}

TEST_F(CityTest, PassphraseCityOpensOnlyWithThePassphrase) {
  {
    auto city = City::Create(Dir(), Passphrase("korrekt häst batteri"), "stockholm.se", clock_,
                             KdfStrength::kInteractive);
    ASSERT_TRUE(city.ok()) << city.status().message();
  }
  auto opened = City::Open(Dir(), Passphrase("korrekt häst batteri"), clock_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ((*opened)->roster().version(), 1u);

  auto wrong = City::Open(Dir(), Passphrase("fel"), clock_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
  EXPECT_EQ(wrong.status().message(), "wrong passphrase, or not a samsync city folder");

  auto with_file = City::Open(Dir(), FileKey(), clock_);
  ASSERT_FALSE(with_file.ok());
  EXPECT_EQ(with_file.status().code(), Code::kWrongKey);
  EXPECT_NE(with_file.status().message().find("opened with a passphrase"), std::string::npos);

  auto empty = City::Create(temp_.Sub("other"), Passphrase(""), "stockholm.se", clock_);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kInvalidInput);
}

TEST_F(CityTest, WrongKeyFileIsWrongKey) {
  ASSERT_NE(CreateOrDie(), nullptr);
  std::string other = temp_.Sub("other.key");
  ASSERT_TRUE(CreateKeyFile(other).ok());
  auto wrong = City::Open(Dir(), KeySource::KeyFile(other), clock_);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
}

TEST_F(CityTest, MissingOrForeignFoldersAreNamed) {
  auto missing = City::Open(temp_.Sub("nowhere"), FileKey(), clock_);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  fs::create_directory(temp_.Sub("empty"));
  auto empty = City::Open(temp_.Sub("empty"), FileKey(), clock_);
  EXPECT_EQ(empty.status().code(), Code::kNotFound);
  EXPECT_NE(empty.status().message().find("holds no samsync city"), std::string::npos);
  fs::create_directory(temp_.Sub("junk"));
  Spit(temp_.Sub("junk") + "/city.header", std::vector<uint8_t>(40, 0x5a));
  auto junk = City::Open(temp_.Sub("junk"), FileKey(), clock_);
  EXPECT_EQ(junk.status().code(), Code::kWrongKey);
}

TEST_F(CityTest, CreateRefusesAFolderThatHoldsACity) {
  ASSERT_NE(CreateOrDie(), nullptr);
  std::vector<uint8_t> before = Slurp(Dir() + "/city.header");
  auto again = City::Create(Dir(), FileKey(), "stockholm.se", clock_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kInvalidInput);
  EXPECT_NE(again.status().message().find("already holds a city"), std::string::npos);
  EXPECT_EQ(Slurp(Dir() + "/city.header"), before);

  auto bad_name = City::Create(temp_.Sub("c2"), FileKey(), "", clock_);
  EXPECT_EQ(bad_name.status().code(), Code::kInvalidInput);
  EXPECT_FALSE(fs::exists(temp_.Sub("c2") + "/city.header"));
}

TEST_F(CityTest, AddAndRevokeWriteVersionsTwoAndThree) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  RosterEntry writer = Device(Role::kWriter, "skarpnäck", "Skarpnäck 1");
  writer.added_ms = 0;  // stamped from the clock
  clock_.AdvanceMs(60'000);
  ASSERT_TRUE(city->AddEntry(writer).ok());
  EXPECT_EQ(city->roster().version(), 2u);
  ASSERT_EQ(city->roster().entries().size(), 1u);
  EXPECT_EQ(city->roster().entries()[0].added_ms, kNow + 60'000);
  EXPECT_EQ(city->roster().entries()[0].district, "Skarpnäck");

  clock_.AdvanceMs(60'000);
  ASSERT_TRUE(city->Revoke(writer.signing_key, clock_.NowMs()).ok());
  EXPECT_EQ(city->roster().version(), 3u);
  EXPECT_EQ(city->roster().entries()[0].revoked_ms, kNow + 120'000);
  EXPECT_EQ(city->roster().issued_ms(), kNow + 120'000);

  // Every version is kept, each signed by the root and each replacing the one before.
  std::unique_ptr<Roster> previous;
  for (uint64_t version = 1; version <= 3; ++version) {
    std::string path = Dir() + "/rosters/00000" + std::to_string(version) + ".roster";
    ASSERT_TRUE(fs::exists(path)) << path;
    auto roster = Roster::Open(Slurp(path), &city->root_key());
    ASSERT_TRUE(roster.ok()) << roster.status().message();
    EXPECT_EQ(roster->version(), version);
    if (previous) {
      EXPECT_TRUE(previous->CheckReplacement(*roster).ok());
    }
    previous = std::make_unique<Roster>(std::move(roster).value());
  }
  EXPECT_EQ(Slurp(city->LatestPath()), city->roster().signed_bytes());

  auto reopened = OpenOrDie();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->roster().version(), 3u);
  auto read = City::ReadLatestRoster(Dir());
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->signed_bytes(), city->roster().signed_bytes());
}

TEST_F(CityTest, DuplicateAddAndBadRevokeAreRefusedAndWriteNothing) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  RosterEntry writer = Device(Role::kWriter, "Farsta");
  ASSERT_TRUE(city->AddEntry(writer).ok());

  Status again = city->AddEntry(writer);
  EXPECT_EQ(again.code(), Code::kInvalidInput);
  EXPECT_NE(again.message().find("already in the roster"), std::string::npos) << again.message();
  RosterEntry same_transport = Device(Role::kCentral);
  same_transport.transport_key = writer.transport_key;
  EXPECT_EQ(city->AddEntry(same_transport).code(), Code::kInvalidInput);
  RosterEntry pre_revoked = Device(Role::kAuditor);
  pre_revoked.revoked_ms = kNow;
  EXPECT_EQ(city->AddEntry(pre_revoked).code(), Code::kInvalidInput);
  EXPECT_EQ(city->AddEntry(Device(Role::kWriter, "Gamla stan")).code(), Code::kInvalidInput);

  Status unknown = city->Revoke(SigningKey::Generate().public_key(), kNow);
  EXPECT_EQ(unknown.code(), Code::kNotFound);
  EXPECT_EQ(city->Revoke(writer.signing_key, 0).code(), Code::kInvalidInput);
  ASSERT_TRUE(city->Revoke(writer.signing_key, kNow).ok());
  Status twice = city->Revoke(writer.signing_key, kNow);
  EXPECT_EQ(twice.code(), Code::kInvalidInput);
  EXPECT_NE(twice.message().find("already revoked"), std::string::npos);
  // A revoked key is never reused either.
  Status revoked_again = city->AddEntry(writer);
  EXPECT_EQ(revoked_again.code(), Code::kInvalidInput);
  EXPECT_NE(revoked_again.message().find("revoked writer of Farsta"), std::string::npos) << revoked_again.message();

  EXPECT_EQ(city->roster().version(), 3u);
  EXPECT_FALSE(fs::exists(city->RosterPath(4)));
}

TEST_F(CityTest, TwoAdminsAtOnceConflictAndNothingIsLost) {
  auto first = CreateOrDie();
  ASSERT_NE(first, nullptr);
  auto second = OpenOrDie();
  ASSERT_NE(second, nullptr);
  RosterEntry a = Device(Role::kWriter, "Farsta");
  ASSERT_TRUE(first->AddEntry(a).ok());
  Status late = second->AddEntry(Device(Role::kWriter, "Bromma"));
  EXPECT_EQ(late.code(), Code::kConflict);
  EXPECT_EQ(second->roster().version(), 1u);
  auto reopened = OpenOrDie();
  ASSERT_NE(reopened, nullptr);
  ASSERT_EQ(reopened->roster().version(), 2u);
  EXPECT_NE(reopened->roster().FindSigningKey(a.signing_key), nullptr);
}

TEST_F(CityTest, OpenRepairsAMissingOrStaleLatestCopy) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  std::vector<uint8_t> v1 = city->roster().signed_bytes();
  ASSERT_TRUE(city->AddEntry(Device(Role::kAdmin)).ok());
  std::vector<uint8_t> v2 = city->roster().signed_bytes();
  city.reset();

  Spit(Dir() + "/roster.latest", v1);  // as if the process died before the copy
  ASSERT_NE(OpenOrDie(), nullptr);
  EXPECT_EQ(Slurp(Dir() + "/roster.latest"), v2);
  fs::remove(Dir() + "/roster.latest");
  ASSERT_NE(OpenOrDie(), nullptr);
  EXPECT_EQ(Slurp(Dir() + "/roster.latest"), v2);
}

TEST_F(CityTest, TamperedOrForeignRosterFilesAreRefused) {
  auto city = CreateOrDie();
  ASSERT_NE(city, nullptr);
  ASSERT_TRUE(city->AddEntry(Device(Role::kWriter, "Farsta")).ok());
  std::string newest = city->RosterPath(2);
  std::vector<uint8_t> good = Slurp(newest);
  city.reset();

  Spit(newest, FlipByte(good, good.size() / 2, 0x10));
  auto tampered = City::Open(Dir(), FileKey(), clock_);
  ASSERT_FALSE(tampered.ok());
  EXPECT_TRUE(tampered.status().code() == Code::kBadSignature || tampered.status().code() == Code::kCorruption);
  EXPECT_NE(tampered.status().message().find("000002.roster"), std::string::npos) << tampered.status().message();

  // A roster of another city's root slipped into the folder.
  SigningKey other_root = SigningKey::Generate();
  Spit(newest, SignOrDie(other_root, 2, {}).signed_bytes());
  auto foreign = City::Open(Dir(), FileKey(), clock_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), Code::kUnauthorised);
  EXPECT_FALSE(City::ReadLatestRoster(Dir()).ok());

  // A version file whose content is another version.
  Spit(newest, good);
  fs::copy_file(newest, Dir() + "/rosters/000007.roster");
  auto renamed = City::Open(Dir(), FileKey(), clock_);
  ASSERT_FALSE(renamed.ok());
  EXPECT_EQ(renamed.status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace samsync
