#include "crypto.h"

#include <sodium.h>

#include "random_pool.h"

namespace samsync::crypto {

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES ==
              kSealOverhead);

void Seal(const SecretBytes& key, Bytes ad, Bytes plaintext, std::vector<uint8_t>& out) {
  size_t start = out.size();
  out.resize(start + kSealOverhead + plaintext.size());
  uint8_t* nonce = out.data() + start;
  PooledRandomBytes(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &written, plaintext.data(),
      plaintext.size(), ad.data(), ad.size(), nullptr, nonce, key.data());
}

Result<PlainBytes> Open(const SecretBytes& key, Bytes ad, Bytes sealed) {
  if (sealed.size() < kSealOverhead) return Status::Corruption("sealed value is too short");
  PlainBytes plain(sealed.size() - kSealOverhead);
  const uint8_t* nonce = sealed.data();
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain.data(), &written, nullptr, nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          sealed.size() - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad.data(), ad.size(), nonce,
          key.data()) != 0) {
    return Status::Corruption("authentication failed");
  }
  return plain;
}

Result<SecretBytes> OpenSecret(const SecretBytes& key, Bytes ad, Bytes sealed) {
  SAMSYNC_ASSIGN_OR_RETURN(PlainBytes plain, Open(key, ad, sealed));
  return SecretBytes::CopyOf(plain.span());
}

Result<SecretBytes> DeriveFromPassphrase(const SecretBytes& passphrase, Bytes salt,
                                         uint64_t ops_limit, uint64_t mem_limit) {
  if (salt.size() != crypto_pwhash_SALTBYTES) return Status::Corruption("the store header's salt has the wrong size");
  if (ops_limit < crypto_pwhash_OPSLIMIT_MIN || ops_limit > crypto_pwhash_OPSLIMIT_MAX ||
      mem_limit < crypto_pwhash_MEMLIMIT_MIN || mem_limit > (uint64_t{4} << 30)) {
    return Status::Corruption("the store header's key-derivation parameters are out of range");
  }
  SecretBytes key(kKeyBytes);
  if (crypto_pwhash(key.data(), key.size(), reinterpret_cast<const char*>(passphrase.data()),
                    passphrase.size(), salt.data(), ops_limit, static_cast<size_t>(mem_limit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::Io("not enough memory to derive the key from the passphrase");
  }
  return key;
}

void PasswordHashLimits(KdfStrength strength, uint64_t& ops_limit, uint64_t& mem_limit) {
  switch (strength) {
    case KdfStrength::kInteractive:
      ops_limit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
      mem_limit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
      return;
    case KdfStrength::kModerate:
      ops_limit = crypto_pwhash_OPSLIMIT_MODERATE;
      mem_limit = crypto_pwhash_MEMLIMIT_MODERATE;
      return;
    case KdfStrength::kSensitive:
      ops_limit = crypto_pwhash_OPSLIMIT_SENSITIVE;
      mem_limit = crypto_pwhash_MEMLIMIT_SENSITIVE;
      return;
  }
}

SecretBytes DeriveSubkey(const SecretBytes& key, uint64_t purpose) {
  SecretBytes subkey(kKeyBytes);
  crypto_kdf_derive_from_key(subkey.data(), subkey.size(), purpose, "samsync_", key.data());
  return subkey;
}

}  // namespace samsync::crypto
