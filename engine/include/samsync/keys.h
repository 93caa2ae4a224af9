// Ed25519 signing keys, X25519 transport keys, SHA-256: the primitives of identity
// and history. Secret halves live in SecretBytes; public halves are plain values.
//
// Text forms: public keys and hashes are lowercase hexadecimal (64 characters for 32
// bytes), which is what `samsync whoami` prints and `roster add` takes.
#ifndef SAMSYNC_KEYS_H_
#define SAMSYNC_KEYS_H_

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "samsync/secret.h"
#include "samsync/status.h"

namespace samsync {

// 32 public bytes: an Ed25519 or X25519 public key, or a SHA-256 hash.
struct Bytes32 {
  std::array<uint8_t, 32> bytes{};

  bool IsZero() const;
  std::string ToHex() const;
  std::span<const uint8_t> span() const { return bytes; }
  auto operator<=>(const Bytes32&) const = default;

  // Fails with kInvalidInput naming `what` unless `hex` is 64 hex characters.
  static Result<Bytes32> FromHex(std::string_view hex, std::string_view what = "key");
  // Fails with kInvalidInput unless `bytes` is exactly 32 bytes long.
  static Result<Bytes32> FromBytes(std::span<const uint8_t> bytes, std::string_view what = "key");
};

using PublicKey = Bytes32;
using Hash = Bytes32;
using Signature = std::array<uint8_t, 64>;

Hash Sha256(std::span<const uint8_t> data);

// An incremental SHA-256.
class Sha256Hasher {
 public:
  Sha256Hasher();
  void Update(std::span<const uint8_t> data);
  void UpdateU64(uint64_t value);  // 8 bytes, big-endian
  Hash Finish();

 private:
  alignas(64) uint8_t state_[256];  // crypto_hash_sha256_state, opaque here
};

// An Ed25519 key pair; the secret (libsodium's 64-byte seed‖public form) in
// sodium_malloc memory.
class SigningKey {
 public:
  static SigningKey Generate();
  // From a 32-byte RFC 8032 seed (tests use the RFC's vectors).
  static SigningKey FromSeed(std::span<const uint8_t> seed);
  // From libsodium's 64-byte secret key, as stored. Fails unless 64 bytes whose last
  // 32 are the public key of the first 32.
  static Result<SigningKey> FromSecret(std::span<const uint8_t> secret);

  const PublicKey& public_key() const { return public_; }
  const SecretBytes& secret() const { return secret_; }
  Signature Sign(std::span<const uint8_t> message) const;

 private:
  SecretBytes secret_;
  PublicKey public_;
};

// True when `signature` is a valid Ed25519 signature of `message` by `key`.
bool VerifySignature(const PublicKey& key, std::span<const uint8_t> message, std::span<const uint8_t> signature);

// An X25519 key pair for ZeroMQ CURVE transport.
class TransportKey {
 public:
  static TransportKey Generate();
  static Result<TransportKey> FromSecret(std::span<const uint8_t> secret);
  const PublicKey& public_key() const { return public_; }
  const SecretBytes& secret() const { return secret_; }

 private:
  SecretBytes secret_;
  PublicKey public_;
};

}  // namespace samsync

#endif  // SAMSYNC_KEYS_H_
