// Fuzzes offline-bundle import (bundle.h, Store::ImportBundle), as `samsync merge
// FILE` runs it: the input is written to a file, read whole by BundleReader (header,
// entries, digest, end entry) and then imported into a Skarpnäck store created once
// per fuzzer process (a fresh store per input would spend its time in LMDB and the
// key derivation). The store has installed bundle_import_roster.bin, the roster that
// enrols the seed bundles' author (written by make_fuzz_seeds), so a bundle whose
// container survives mutation goes on to the importer's commit checks. A crash or
// sanitizer report is a bug; an error Status is the expected answer to bad input.
//
// The store keeps what valid inputs import, so a later input may meet duplicates:
// the same input can take another path on its second run (libFuzzer copes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "fuzz_files.h"
#include "samsync/bundle.h"
#include "samsync/clock.h"
#include "samsync/store.h"

#ifndef SAMSYNC_FUZZ_DIR
#error "SAMSYNC_FUZZ_DIR (tests/fuzz) must be defined"
#endif

namespace {

struct ImportStore {
  samsync::fuzz::FuzzDir dir;
  samsync::FixedClock clock{1479211200000 + 86'400'000};  // a day after the seeds' commits
  std::unique_ptr<samsync::Store> store;

  ImportStore() {
    std::string key = dir.Sub("store.key");
    if (!samsync::CreateKeyFile(key).ok()) std::abort();
    samsync::CreateOptions options;
    options.district = "Skarpnäck";
    auto made = samsync::Store::Create(dir.Sub("store"), samsync::KeySource::KeyFile(key), std::move(options), clock);
    if (!made.ok()) std::abort();
    store = std::move(made).value();
    std::ifstream in(SAMSYNC_FUZZ_DIR "/bundle_import_roster.bin", std::ios::binary);
    std::string roster{std::istreambuf_iterator<char>(in), {}};
    auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(roster.data()), roster.size());
    if (!store->InstallRoster(bytes).ok()) std::abort();
  }
  ~ImportStore() { store.reset(); }  // closed before its folder goes
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ImportStore target;
  std::string path = target.dir.WriteInput("input.bundle", data, size);
  {
    auto reader = samsync::BundleReader::Open(path);
    if (reader.ok()) {
      (void)reader->header();
      while (true) {
        auto next = reader->Next();
        if (!next.ok() || !next->has_value()) break;
        (void)(*next)->SignatureValid();
      }
    }
  }
  (void)target.store->ImportBundle(path);
  return 0;
}
