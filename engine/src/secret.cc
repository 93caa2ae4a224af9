#include "samsync/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace samsync {

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size == 0) return;
  // sodium_init is idempotent and thread-safe; secrets can be made before anything else.
  if (sodium_init() < 0) std::abort();
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) std::abort();
  sodium_memzero(data_, size);
}

SecretBytes SecretBytes::CopyOf(std::span<const uint8_t> bytes) {
  SecretBytes secret(bytes.size());
  if (!bytes.empty()) std::memcpy(secret.data_, bytes.data(), bytes.size());
  return secret;
}

SecretBytes SecretBytes::CopyOf(std::string_view text) {
  return CopyOf({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes secret(size);
  if (size > 0) randombytes_buf(secret.data_, size);
  return secret;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);  // wipes before freeing
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void WipeMemory(void* data, size_t size) { sodium_memzero(data, size); }

}  // namespace samsync
