// Private: the store's use of libsodium. Values are sealed with XChaCha20-Poly1305
// (IETF): a random 24-byte nonce, then the ciphertext with its 16-byte tag. Random
// nonces are safe at this size for any number of values one store will hold.
#ifndef SAMSYNC_ENGINE_CRYPTO_H_
#define SAMSYNC_ENGINE_CRYPTO_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "samsync/secret.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kSealOverhead = 24 + 16;

using Bytes = std::span<const uint8_t>;

// Plain bytes that may hold personal data: wiped when destroyed.
class PlainBytes {
 public:
  explicit PlainBytes(size_t size) : bytes_(size) {}
  ~PlainBytes() { WipeMemory(bytes_.data(), bytes_.size()); }
  PlainBytes(PlainBytes&&) = default;
  PlainBytes(const PlainBytes&) = delete;
  PlainBytes& operator=(const PlainBytes&) = delete;
  uint8_t* data() { return bytes_.data(); }
  Bytes span() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// Seals `plaintext` under `key` (32 bytes) binding `ad`; appends to `out`.
void Seal(const SecretBytes& key, Bytes ad, Bytes plaintext, std::vector<uint8_t>& out);
// Fails with kCorruption (no detail: the caller names what failed) if the bytes were
// altered, moved to another `ad`, or sealed under another key.
Result<PlainBytes> Open(const SecretBytes& key, Bytes ad, Bytes sealed);
Result<SecretBytes> OpenSecret(const SecretBytes& key, Bytes ad, Bytes sealed);

// Argon2id. Fails with kIoError only if the memory cannot be had.
Result<SecretBytes> DeriveFromPassphrase(const SecretBytes& passphrase, Bytes salt,
                                         uint64_t ops_limit, uint64_t mem_limit);
// libsodium's Argon2id limits for a strength preset.
void PasswordHashLimits(KdfStrength strength, uint64_t& ops_limit, uint64_t& mem_limit);

// A 32-byte subkey of `key` for one purpose (crypto_kdf, context "samsync_").
SecretBytes DeriveSubkey(const SecretBytes& key, uint64_t purpose);

}  // namespace samsync::crypto

#endif  // SAMSYNC_ENGINE_CRYPTO_H_
