// Keys the fuzz targets and their seed generator (make_fuzz_seeds.cc) share, so that
// seeds signed once still verify when the targets check them: Ed25519 keys made from
// fixed, public seeds. Test keys only: they guard nothing.
#ifndef SAMSYNC_TESTS_FUZZ_FUZZ_KEYS_H_
#define SAMSYNC_TESTS_FUZZ_FUZZ_KEYS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "samsync/keys.h"
#include "samsync/roster.h"
#include "samsync/status.h"

namespace samsync::fuzz {

inline constexpr std::string_view kCity = "stockholm.se";

// The key made from the seed "samsync fuzz <name>" padded with '.' to 32 bytes.
inline SigningKey FixedKey(std::string_view name) {
  std::array<uint8_t, 32> seed;
  seed.fill('.');
  std::string_view prefix = "samsync fuzz ";
  size_t at = 0;
  for (char c : prefix) seed[at++] = static_cast<uint8_t>(c);
  for (char c : name) {
    if (at == seed.size()) break;
    seed[at++] = static_cast<uint8_t>(c);
  }
  return SigningKey::FromSeed(seed);
}

// The city's root key, the log (server) key and two witnesses' keys.
inline SigningKey RootKey() { return FixedKey("root"); }
inline SigningKey LogKey() { return FixedKey("log"); }
inline SigningKey WitnessKey(int n) { return FixedKey(n == 0 ? "witness 0" : "witness 1"); }

// Roster version `version` of kCity, signed by RootKey(), at a fixed time: the log's
// server entry and the two witnesses (writers of Skarpnäck and Farsta), then `more`.
inline Result<Roster> FixedRoster(uint64_t version, std::vector<RosterEntry> more = {}) {
  constexpr int64_t kIssuedMs = 1479211200000;  // 2016-11-15 12:00 UTC
  auto entry = [](const SigningKey& key, std::string_view transport, std::string district, Role role,
                  std::string label) {
    RosterEntry e;
    e.signing_key = key.public_key();
    e.transport_key = FixedKey(transport).public_key();  // any distinct non-zero 32 bytes
    e.district = std::move(district);
    e.role = role;
    e.label = std::move(label);
    e.added_ms = kIssuedMs;
    return e;
  };
  std::vector<RosterEntry> entries = {entry(LogKey(), "log transport", "", Role::kServer, "sync server"),
                                      entry(WitnessKey(0), "witness 0 transport", "Skarpnäck", Role::kWriter, "w0"),
                                      entry(WitnessKey(1), "witness 1 transport", "Farsta", Role::kWriter, "w1")};
  for (RosterEntry& e : more) entries.push_back(std::move(e));
  return Roster::Sign(RootKey(), kCity, version, kIssuedMs + static_cast<int64_t>(version), std::move(entries));
}

}  // namespace samsync::fuzz

#endif  // SAMSYNC_TESTS_FUZZ_FUZZ_KEYS_H_
