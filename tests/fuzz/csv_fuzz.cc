// Fuzzes CSV import's parsing and checking (csv.h, ParseCsv): the first byte picks
// the record type (its number modulo the count), the rest is the file's contents, as
// `samsync import TYPE FILE` reads them. A crash or sanitizer report is a bug; an
// error Status is the expected answer to bad input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "samsync/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto type = static_cast<samsync::RecordType>(data[0] % samsync::kRecordTypeCount);
  std::string_view contents(reinterpret_cast<const char*>(data + 1), size - 1);
  auto batch = samsync::ParseCsv(type, contents);
  if (batch.ok()) (void)batch->size();
  return 0;
}
