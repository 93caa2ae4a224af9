// For fuzz targets whose code under test reads a file: one private folder per fuzzer
// process (under $TMPDIR, else /dev/shm when writable, else /tmp), removed when the
// process exits normally, and the input written to a file in it.
#ifndef SAMSYNC_TESTS_FUZZ_FUZZ_FILES_H_
#define SAMSYNC_TESTS_FUZZ_FUZZ_FILES_H_

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace samsync::fuzz {

class FuzzDir {
 public:
  FuzzDir() {
    std::string base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR")
                       : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                          : "/tmp";
    std::string pattern = base + "/samsync-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~FuzzDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  FuzzDir(const FuzzDir&) = delete;
  FuzzDir& operator=(const FuzzDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

  // Writes `data` to Sub(name), replacing any file there, and returns its path.
  std::string WriteInput(const std::string& name, const uint8_t* data, size_t size) const {
    std::string file = Sub(name);
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out.flush()) std::abort();
    return file;
  }

 private:
  std::string path_;
};

}  // namespace samsync::fuzz

#endif  // SAMSYNC_TESTS_FUZZ_FUZZ_FILES_H_
