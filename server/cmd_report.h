// samsync-server report: the citywide follow-up (samsync/city_report.h) of the
// server's city-wide store, as a table for a person, JSON for programs or CSV for
// Swedish Excel. Everything it prints has been through small-cell suppression.
#ifndef SAMSYNC_SERVER_CMD_REPORT_H_
#define SAMSYNC_SERVER_CMD_REPORT_H_

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "samsync/city_report.h"
#include "samsync/clock.h"
#include "samsync/store.h"

namespace samsync::server {

struct ReportOptions {
  std::string term;              // default: the term of the reference date
  std::string date;              // default: today, or a past --term's last day
  std::string format = "table";  // table, json or csv
  int32_t stale_days = kDefaultStaleDays;
};

// Adds --term, --date, --format and --stale-days to the `report` subcommand.
void AddReportOptions(CLI::App& command, ReportOptions& options);

// Checks the options (a bad term or date: one line on stderr, kExitInvalid) before
// calling `open` for the city-wide store, then prints the report on stdout. `json`
// (the common --json flag) means --format json. Returns the exit code.
int RunReport(const ReportOptions& options, bool json, const Clock& clock,
              const std::function<Result<std::unique_ptr<Store>>()>& open);

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_CMD_REPORT_H_
