#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace samsync::file_io {

std::string Errno() { return std::strerror(errno); }

Status WriteAll(int fd, std::span<const uint8_t> bytes, const std::string& path) {
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Io("cannot write " + path + ": " + Errno());
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<int> CreatePartial(const std::string& path, std::string_view what, std::string_view doing) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    return Status::Invalid(path + " already exists: " + std::string(what) + " is never overwritten");
  }
  if (errno != ENOENT) return Status::Io("cannot check " + path + ": " + Errno());
  std::string partial = path + ".partial";
  int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  if (errno == EEXIST) {
    return Status::Invalid(partial + " exists: another " + std::string(doing) +
                           " is writing it, or one was interrupted (remove it)");
  }
  if (errno == ENOENT) return Status::NotFound("the folder of " + path + " does not exist");
  return Status::Io("cannot create " + partial + ": " + Errno());
}

Status SyncFolder(const std::filesystem::path& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Io("cannot open folder " + folder.string() + ": " + Errno());
  bool ok = ::fsync(fd) == 0;
  std::string why = ok ? "" : Errno();
  ::close(fd);
  if (!ok) return Status::Io("cannot sync folder " + folder.string() + ": " + why);
  return Status::Ok();
}

Status RenameNoReplace(const std::string& from, const std::string& to, std::string_view what) {
  auto exists = [&] { return Status::Invalid(to + " already exists: " + std::string(what) + " is never overwritten"); };
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return Status::Ok();
  if (errno == EEXIST) return exists();
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    return Status::Io("cannot rename " + from + " to " + to + ": " + Errno());
  }
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return exists();
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::Io("cannot rename " + from + " to " + to + ": " + Errno());
  }
  return Status::Ok();
}

}  // namespace samsync::file_io
