// Memory for secrets: keys and passphrases.
//
// SecretBytes lives in sodium_malloc'd memory (guard pages, never swapped where the
// system allows mlock) and is wiped and freed by its destructor. It is a resource:
// movable, not copyable. Nothing here prints or logs its contents.
#ifndef SAMSYNC_SECRET_H_
#define SAMSYNC_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace samsync {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Allocates `size` zeroed bytes. Aborts if sodium cannot allocate (as `new` would).
  explicit SecretBytes(size_t size);
  // Copies `bytes` into secret memory. The caller wipes its own copy.
  static SecretBytes CopyOf(std::span<const uint8_t> bytes);
  static SecretBytes CopyOf(std::string_view text);
  // `size` bytes from the system's secure random source.
  static SecretBytes Random(size_t size);

  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Wipes memory the compiler would otherwise consider dead (sodium_memzero).
void WipeMemory(void* data, size_t size);

}  // namespace samsync

#endif  // SAMSYNC_SECRET_H_
