// Fuzzes audit-bundle verification (audit.h, VerifyAuditBundle), as `samsync audit
// verify FILE` runs it, with the city root key that signed the seeds' rosters
// (fuzz_keys.h): the input is written to a file and verified fully (format, rosters,
// checkpoint and cosignatures, commits merged into a temporary store, the Merkle
// tree, the state statement). Besides crashes and sanitizer reports it checks the
// contract that the temporary store's folder is gone afterwards, whatever the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "fuzz_files.h"
#include "fuzz_keys.h"
#include "samsync/audit.h"
#include "samsync/clock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const samsync::fuzz::FuzzDir dir;
  static const samsync::FixedClock clock(1479211200000 + 86'400'000);  // a day after the seeds
  static const bool made = std::filesystem::create_directory(dir.Sub("tmp"));
  (void)made;
  std::string path = dir.WriteInput("input.audit", data, size);
  samsync::AuditOptions options;
  options.root_key = samsync::fuzz::RootKey().public_key();
  options.temp_dir = dir.Sub("tmp");
  options.clock = &clock;
  options.chunk_commits = 3;  // several chunks even for the seeds' short history
  auto report = samsync::VerifyAuditBundle(path, options);
  if (report.ok()) (void)report->ok();
  if (!std::filesystem::is_empty(options.temp_dir)) __builtin_trap();
  return 0;
}
