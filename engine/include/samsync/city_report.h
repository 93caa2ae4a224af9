// The citywide follow-up report: what the central office reads each term, computed
// from the sync server's city-wide store (`samsync-server report`).
//
// Contract
// - Rows. One row per district of the city (Districts(), in that order), then any
//   other district named by records, in name order. Each row is that district's 13
//   indicators (followup.h), computed from its own records; the city's row is computed
//   from every district's records pooled (ComputeCityFollowup), never from the rows.
// - Freshness. Each row says when the district last completed a sync session (as the
//   server recorded it: Store::DistrictSyncTimes) and how many unresolved conflicts
//   its records have. A district that never synced, or whose last sync is more than
//   `stale_days` days before `now_ms`, is stale: the report shows "stale" rather than
//   figures, never zeros. A district with no records at all has no figures
//   (`report` is nullopt); one with records keeps them (JSON and CSV carry them, marked
//   stale) so the reader can see what the server last had.
// - Suppression. ComputeCityReport applies SuppressSmallCells (suppression.h) to the
//   rows and the city's row before returning: a CityReport holds nothing that may not
//   leave a district, and every format below only reads it.
// - The formats are stable: fields and columns are only ever added. docs/formats.md,
//   "The citywide follow-up report", describes them.
// - Pure functions of their input apart from the loader; any thread may call them.
#ifndef SAMSYNC_CITY_REPORT_H_
#define SAMSYNC_CITY_REPORT_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/date.h"
#include "samsync/followup.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync {

inline constexpr int32_t kDefaultStaleDays = 30;

struct CityFollowupInput {
  // One input per district with records, each holding that district's records (by the
  // record's own district field).
  std::vector<FollowupInput> districts;
  std::map<std::string, uint64_t> conflicts;     // unresolved conflicts per district
  std::map<std::string, int64_t> last_sync_ms;   // Store::DistrictSyncTimes
};

// Reads every record, conflict and sync time of the city-wide store `store`. Fails with
// kInvalidInput for a district's store, and otherwise with the store's error.
Result<CityFollowupInput> LoadCityFollowupInput(const Store& store);

struct CityReportOptions {
  Term term;
  Date reference_date;  // empty: the term's end (then clamped as ComputeFollowup does)
  int64_t now_ms = 0;   // what staleness is measured against
  int32_t stale_days = kDefaultStaleDays;  // a sync more than this many days old is stale
};

struct DistrictFollowup {
  std::string district;
  std::optional<int64_t> last_sync_ms;   // nullopt: never synced
  std::optional<int64_t> sync_age_days;  // whole days from the last sync to now_ms
  bool stale = true;
  uint64_t conflicts = 0;
  std::optional<FollowupReport> report;  // nullopt: no records at all
};

struct CityReport {
  Term term;
  Date period_start;
  Date reference_date;
  int64_t generated_ms = 0;  // now_ms
  int32_t stale_days = kDefaultStaleDays;
  std::vector<DistrictFollowup> districts;
  FollowupReport citywide;     // district ""
  uint64_t conflicts = 0;      // over every district
  uint64_t stale_districts = 0;
};

// Computes every row and the city's, and suppresses them (see the contract). Fails
// with kInvalidInput when the reference date is before the term starts or
// `stale_days` is negative.
Result<CityReport> ComputeCityReport(const CityFollowupInput& input, const CityReportOptions& options);

// How a cell reads at a glance: "stale" (the district's row is stale), "suppressed",
// "met", "not_met", "no_data" (a target but no verdict) or "no_target".
std::string_view IndicatorStatus(const DistrictFollowup* row, const IndicatorResult& result);

// {"format": "samsync-city-followup", "version": 1, ...}: docs/formats.md.
nlohmann::json CityReportToJson(const CityReport& report);

// For a terminal: a title, a table of districts × indicators (each cell the headline
// with ✓ met, ✗ not met, nothing without a target; "<5" suppressed; "stale"), the
// city's row below a rule, then a legend of the indicators. UTF-8, ends with a newline.
std::string CityReportToTable(const CityReport& report);

// For Swedish Excel and for programs: UTF-8 with a BOM, `;` between fields, decimal
// commas, CRLF line ends; one row per figure (docs/formats.md).
std::string CityReportToCsv(const CityReport& report);

}  // namespace samsync

#endif  // SAMSYNC_CITY_REPORT_H_
