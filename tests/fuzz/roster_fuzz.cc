// Fuzzes roster loading and checking (roster.h), as a store, server or auditor does
// with roster bytes it is handed: Roster::Open without and with the city's pinned
// root (fuzz_keys.h's, which signed the seeds), then what binaries ask of an opened
// roster (key look-ups, MayWrite, CheckReplacement both ways against a fixed
// version 1). Beyond crashes and sanitizer reports it checks the header's promise of
// one encoding: an opened roster's signed_bytes() are the bytes it was opened from.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "fuzz_keys.h"
#include "samsync/roster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace samsync;
  static const Roster base = [] {
    auto made = fuzz::FixedRoster(1);
    if (!made.ok()) std::abort();
    return *made;
  }();
  static const PublicKey root = fuzz::RootKey().public_key();
  std::span<const uint8_t> bytes(data, size);

  auto roster = Roster::Open(bytes);
  auto pinned = Roster::Open(bytes, &root);
  if (pinned.ok() && !roster.ok()) __builtin_trap();  // pinning only adds a condition
  if (!roster.ok()) return 0;
  if (roster->signed_bytes().size() != size ||
      !std::equal(roster->signed_bytes().begin(), roster->signed_bytes().end(), data)) {
    __builtin_trap();
  }
  for (const RosterEntry& entry : roster->entries()) {
    if (roster->FindSigningKey(entry.signing_key) == nullptr) __builtin_trap();
    if (roster->FindTransportKey(entry.transport_key) == nullptr) __builtin_trap();
    (void)roster->MayWrite(entry.signing_key, entry.district, roster->issued_ms());
    (void)RoleName(entry.role);
  }
  (void)base.CheckReplacement(*roster);
  (void)roster->CheckReplacement(base);
  return 0;
}
