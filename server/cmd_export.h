// samsync-server export --postgres URI: the citywide follow-up into PostgreSQL for the
// central office's analysts (docs/formats.md, "The PostgreSQL export").
//
// Contract
// - Schema. Everything lands in one schema (`samsync` unless --schema), which the
//   export creates and migrates: samsync.schema_version holds the versions applied;
//   a database already at a newer version than this program knows is refused.
// - Idempotent. One transaction per export: the rows of every table are replaced by
//   what the store holds now (districts, schools, terms, indicators upserted; the
//   indicator values of the exported terms deleted and written anew), so running it
//   twice leaves the same rows, and a failed export leaves the previous one.
// - What leaves the server. Indicator values come from ComputeCityReport, so they
//   have been through small-cell suppression (a hidden figure is a NULL value with
//   suppressed = true). Schools are pseudonymous: id, district, principal type, forms,
//   PPSS focus and closing date; no names.
#ifndef SAMSYNC_SERVER_CMD_EXPORT_H_
#define SAMSYNC_SERVER_CMD_EXPORT_H_

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "samsync/city_report.h"
#include "samsync/clock.h"
#include "samsync/store.h"

namespace samsync::server {

struct ExportOptions {
  std::string postgres;          // a libpq connection URI or keyword string
  std::string schema = "samsync";
  int32_t stale_days = kDefaultStaleDays;
};

void AddExportOptions(CLI::App& command, ExportOptions& options);

// Exports every term with data (ReportTerms) of `store` (a city-wide store). Prints
// one summary line (or JSON with `json`); returns the exit code.
int RunExport(const ExportOptions& options, bool json, const Clock& clock, const Store& store);

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_CMD_EXPORT_H_
