#include "samsync/keys.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace samsync {

static_assert(sizeof(crypto_hash_sha256_state) <= 256);

bool Bytes32::IsZero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

std::string Bytes32::ToHex() const {
  std::string hex(65, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  hex.pop_back();
  return hex;
}

Result<Bytes32> Bytes32::FromHex(std::string_view hex, std::string_view what) {
  Bytes32 out;
  size_t written = 0;
  if (hex.size() != 64 ||
      sodium_hex2bin(out.bytes.data(), out.bytes.size(), hex.data(), hex.size(), nullptr, &written, nullptr) != 0 ||
      written != 32) {
    return Status::Invalid(std::string(what) + " must be 64 hexadecimal characters");
  }
  return out;
}

Result<Bytes32> Bytes32::FromBytes(std::span<const uint8_t> bytes, std::string_view what) {
  if (bytes.size() != 32) {
    return Status::Invalid(std::string(what) + " must be 32 bytes, not " + std::to_string(bytes.size()));
  }
  Bytes32 out;
  std::copy(bytes.begin(), bytes.end(), out.bytes.begin());
  return out;
}

Hash Sha256(std::span<const uint8_t> data) {
  Hash out;
  crypto_hash_sha256(out.bytes.data(), data.data(), data.size());
  return out;
}

Sha256Hasher::Sha256Hasher() { crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_)); }

void Sha256Hasher::Update(std::span<const uint8_t> data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_), data.data(), data.size());
}

void Sha256Hasher::UpdateU64(uint64_t value) {
  uint8_t be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<uint8_t>(value >> (8 * (7 - i)));
  Update(be);
}

Hash Sha256Hasher::Finish() {
  Hash out;
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), out.bytes.data());
  return out;
}

SigningKey SigningKey::Generate() {
  SigningKey key;
  key.secret_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(key.public_.bytes.data(), key.secret_.data());
  return key;
}

SigningKey SigningKey::FromSeed(std::span<const uint8_t> seed) {
  SigningKey key;
  key.secret_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(key.public_.bytes.data(), key.secret_.data(), seed.data());
  return key;
}

Result<SigningKey> SigningKey::FromSecret(std::span<const uint8_t> secret) {
  if (secret.size() != crypto_sign_SECRETKEYBYTES) return Status::Corruption("a signing key must be 64 bytes");
  SigningKey key = FromSeed(secret.first(crypto_sign_SEEDBYTES));
  if (std::memcmp(key.public_.bytes.data(), secret.data() + crypto_sign_SEEDBYTES, 32) != 0) {
    return Status::Corruption("a signing key's public half does not match its seed");
  }
  return key;
}

Signature SigningKey::Sign(std::span<const uint8_t> message) const {
  Signature signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_.data());
  return signature;
}

bool VerifySignature(const PublicKey& key, std::span<const uint8_t> message, std::span<const uint8_t> signature) {
  return signature.size() == crypto_sign_BYTES &&
         crypto_sign_verify_detached(signature.data(), message.data(), message.size(), key.bytes.data()) == 0;
}

TransportKey TransportKey::Generate() {
  TransportKey key;
  key.secret_ = SecretBytes(crypto_box_SECRETKEYBYTES);
  crypto_box_keypair(key.public_.bytes.data(), key.secret_.data());
  return key;
}

Result<TransportKey> TransportKey::FromSecret(std::span<const uint8_t> secret) {
  if (secret.size() != crypto_box_SECRETKEYBYTES) return Status::Corruption("a transport key must be 32 bytes");
  TransportKey key;
  key.secret_ = SecretBytes::CopyOf(secret);
  crypto_scalarmult_base(key.public_.bytes.data(), key.secret_.data());
  return key;
}

}  // namespace samsync
