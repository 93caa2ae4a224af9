// Private: random bytes for nonces and ids, drawn from the system's source 4 KiB at a
// time. libsodium 1.0.18 makes one getrandom() call per randombytes_buf, which cost
// as much as the encryption of a record; one call per 4 KiB does not. The buffer is
// per thread and is discarded in a forked child, so no two processes or threads ever
// hand out the same bytes. Not for secret keys (those use SecretBytes::Random).
#ifndef SAMSYNC_ENGINE_RANDOM_POOL_H_
#define SAMSYNC_ENGINE_RANDOM_POOL_H_

#include <cstddef>
#include <cstdint>

namespace samsync {

// Fills `out` with `size` unpredictable bytes.
void PooledRandomBytes(uint8_t* out, size_t size);

}  // namespace samsync

#endif  // SAMSYNC_ENGINE_RANDOM_POOL_H_
