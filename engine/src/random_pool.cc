#include "random_pool.h"

#include <pthread.h>
#include <sodium.h>

#include <array>
#include <cstring>
#include <mutex>

namespace samsync {
namespace {

struct Pool {
  std::array<uint8_t, 4096> bytes{};
  size_t used = 4096;  // empty

  ~Pool() { sodium_memzero(bytes.data(), bytes.size()); }
};

thread_local Pool pool;

// In a forked child only the forking thread lives on; its buffer must not repeat the
// parent's bytes.
void EmptyPoolInChild() { pool.used = pool.bytes.size(); }
std::once_flag fork_handler_installed;

}  // namespace

void PooledRandomBytes(uint8_t* out, size_t size) {
  if (size > pool.bytes.size() / 4) {
    randombytes_buf(out, size);
    return;
  }
  std::call_once(fork_handler_installed, [] { pthread_atfork(nullptr, nullptr, EmptyPoolInChild); });
  if (pool.bytes.size() - pool.used < size) {
    randombytes_buf(pool.bytes.data(), pool.bytes.size());
    pool.used = 0;
  }
  std::memcpy(out, pool.bytes.data() + pool.used, size);
  sodium_memzero(pool.bytes.data() + pool.used, size);  // handed out once only
  pool.used += size;
}

}  // namespace samsync
