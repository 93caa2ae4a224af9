// Settings of the process that runs the engine, made once at its start.
#ifndef SAMSYNC_PROCESS_H_
#define SAMSYNC_PROCESS_H_

namespace samsync {

// Call first in main. A commit being built, signed or merged needs buffers of a few
// hundred KiB to a few MiB, again and again. By default glibc hands such buffers back
// to the kernel when they are freed (unmapped, or trimmed off the heap), so every
// batch touches fresh pages; on a virtual machine a first touch costs 10-20 us a page
// (a bulk Store::Apply ran 12 % faster once they were kept). Freed memory is kept for
// reuse instead, up to a bound.
void KeepFreedMemoryForReuse();

}  // namespace samsync

#endif  // SAMSYNC_PROCESS_H_
