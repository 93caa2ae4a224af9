// CSV in and out, as district staff keep their lists in spreadsheets.
//
// Reading: UTF-8 (a leading BOM is skipped), a header row naming fields (schema name
// "fromDate" or flag spelling "from-date"; an "id" column updates existing records,
// "type" and "district" columns are ignored), `;` or `,` between fields (detected from
// the header row, as Swedish Excel writes `;`), RFC 4180 quoting, values in the text
// forms of record_fields.h. Row numbers count the header as row 1, as a spreadsheet shows.
//
// Writing: the same header and forms, so an export imports again unchanged.
#ifndef SAMSYNC_CSV_H_
#define SAMSYNC_CSV_H_

#include <string>
#include <string_view>
#include <vector>

#include "samsync/record.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync {

// Parses and checks every row; one bad row fails the whole file with
// "row N, column C: reason" and nothing is returned. Each Put in the batch is
// labelled "row N" so that store-side errors (a missing school) name the row too.
Result<WriteBatch> ParseCsv(RecordType type, std::string_view contents);

struct CsvWriteOptions {
  char separator = ';';
  bool byte_order_mark = true;  // what makes Excel read UTF-8 as UTF-8
};

// Header "id;district;<fields...>" then one row per record, CRLF line ends.
std::string RecordsToCsv(RecordType type, const std::vector<Record>& records, CsvWriteOptions options = {});

}  // namespace samsync

#endif  // SAMSYNC_CSV_H_
