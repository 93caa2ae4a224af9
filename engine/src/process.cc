#include "samsync/process.h"

#include <malloc.h>

namespace samsync {

void KeepFreedMemoryForReuse() {
  // Buffers below 8 MiB (a sync batch is at most 4 MiB) come from the heap, and the
  // heap keeps up to 16 MiB free before it shrinks. Both only trade memory the
  // process used anyway for fewer page faults; a sanitizer's allocator ignores them.
  ::mallopt(M_MMAP_THRESHOLD, 8 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

}  // namespace samsync
