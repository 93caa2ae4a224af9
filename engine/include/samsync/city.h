// The city admin folder: the city's root signing key, sealed at rest, and every roster
// version it has signed. Made by `samsync city init DIR`; changed by `samsync roster
// add` / `roster revoke`. It lives on the city admin's machine and is never synced:
// what leaves it is roster.latest, a public, signed document.
//
// Layout (schema/city.capnp describes the header byte by byte):
//   DIR/city.header            magic, format version, city name, root public key, and
//                              the root secret key sealed under the key-encryption key
//                              (Argon2id passphrase or key file, as a store's data key)
//   DIR/rosters/000001.roster  every signed roster version, written once, never rewritten
//   DIR/roster.latest          a copy of the newest version, to hand to devices/server
//
// Durability: every file is written to a temporary file, fsynced and renamed into place
// (then the folder is fsynced). A version file is never replaced: if another process
// wrote the same version first, the change fails with kConflict and nothing is lost.
// roster.latest is a convenience copy; Open rewrites it from the newest version file
// if a crash left it missing or behind.
//
// Threads: one City object is used from one thread at a time.
#ifndef SAMSYNC_CITY_H_
#define SAMSYNC_CITY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/clock.h"
#include "samsync/keys.h"
#include "samsync/roster.h"
#include "samsync/status.h"
#include "samsync/store.h"  // KeySource, KdfStrength

namespace samsync {

class City {
 public:
  // Makes the city folder `dir` (created if missing; it must not hold a city already)
  // with a new random root key sealed under `key`, and writes roster version 1 with no
  // entries, issued at the clock's time. The root key guards every device's authority,
  // so the default passphrase hardening is moderate (256 MiB, about a second).
  // Fails with kInvalidInput for an empty passphrase, a bad `city_name` (printable,
  // at most kMaxCityNameBytes) or a folder that already holds a city; kIoError if a
  // file cannot be written; a key file's errors as ReadKeyFile's.
  static Result<std::unique_ptr<City>> Create(const std::string& dir, const KeySource& key,
                                              std::string_view city_name, const Clock& clock,
                                              KdfStrength kdf = KdfStrength::kModerate);

  // Opens a city folder and unseals its root key. Fails with kNotFound if `dir` holds
  // no city; kWrongKey ("wrong passphrase, or not a samsync city folder") if the key
  // does not unseal the root key or the header is not a city's; kCorruption if the
  // header or the newest roster fails its checks (e.g. a roster not signed by the
  // root key, or whose version is not its file's number).
  static Result<std::unique_ptr<City>> Open(const std::string& dir, const KeySource& key, const Clock& clock);

  // The newest roster of the city folder `dir`, without its key: the signature is
  // checked against the root public key in the (unencrypted) header. This trusts the
  // folder as a whole; Open also proves the header's key is the sealed one. Errors as
  // Open's, without kWrongKey.
  static Result<Roster> ReadLatestRoster(const std::string& dir);

  ~City();
  City(const City&) = delete;
  City& operator=(const City&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& name() const { return roster_.city(); }
  const PublicKey& root_key() const { return root_.public_key(); }
  // The newest roster. The reference is valid until the next AddEntry or Revoke.
  const Roster& roster() const { return roster_; }
  // DIR/rosters/000042.roster
  std::string RosterPath(uint64_t version) const;
  // DIR/roster.latest
  std::string LatestPath() const;

  // Signs and writes the next roster version with `entry` appended. `added_ms` of 0
  // becomes the clock's time; `revoked_ms` must be 0. Fails with kInvalidInput if the
  // signing or transport key is already in the roster (active or revoked: a key is
  // never reused), or as Roster::Sign does; kConflict if another process wrote the
  // next version first; kIoError if a file cannot be written. On any error roster()
  // is unchanged.
  Status AddEntry(RosterEntry entry);

  // Signs and writes the next roster version with the device whose signing key is
  // `signing_key` revoked from `revoked_ms` on (> 0; it may lie in the past, e.g. when
  // a laptop was stolen yesterday, making what it signed since then invalid). Fails
  // with kNotFound if the key is not in the roster, kInvalidInput if it is already
  // revoked or the time is not positive; otherwise as AddEntry.
  Status Revoke(const PublicKey& signing_key, int64_t revoked_ms);

 private:
  City(std::string dir, SigningKey root, Roster roster, const Clock& clock);
  // Signs `entries` as the next version, writes it, and makes it roster_.
  Status Publish(std::vector<RosterEntry> entries);

  std::string dir_;
  SigningKey root_;
  Roster roster_;
  const Clock& clock_;
};

}  // namespace samsync

#endif  // SAMSYNC_CITY_H_
