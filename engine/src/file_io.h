// Private: writing a file whole and once, as bundles and audit bundles are written
// (to FILE.partial, fsynced, renamed into place without replacing anything, the
// folder synced). Shared by bundle.cc and audit.cc.
#ifndef SAMSYNC_ENGINE_FILE_IO_H_
#define SAMSYNC_ENGINE_FILE_IO_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "samsync/status.h"

namespace samsync::file_io {

// strerror(errno), for messages.
std::string Errno();

// Writes all of `bytes` to `fd` (retrying short writes and EINTR); kIoError naming
// `path` otherwise.
Status WriteAll(int fd, std::span<const uint8_t> bytes, const std::string& path);

// Creates `path`.partial (mode 0600, exclusively) to write `path` into, and returns
// its descriptor. Fails with kInvalidInput if `path` exists ("<what> is never
// overwritten") or the partial file does (another `doing` writes it, or one was
// interrupted), kNotFound if the folder does not exist, kIoError otherwise.
Result<int> CreatePartial(const std::string& path, std::string_view what, std::string_view doing);

// fsyncs a folder, so that a rename in it is durable.
Status SyncFolder(const std::filesystem::path& folder);

// Renames `from` to `to` unless `to` exists: then kInvalidInput "<to> already exists:
// <what> is never overwritten". RENAME_NOREPLACE makes that one atomic step; on a file
// system without it (NFS) a check comes first, leaving a small window.
Status RenameNoReplace(const std::string& from, const std::string& to, std::string_view what);

}  // namespace samsync::file_io

#endif  // SAMSYNC_ENGINE_FILE_IO_H_
