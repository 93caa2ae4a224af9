// The citywide report: loading the city-wide store, the rows, freshness and
// suppression. The formats are in city_report_format.cc.
#include <algorithm>
#include <set>
#include <unordered_map>
#include <utility>

#include "samsync/city_report.h"
#include "samsync/districts.h"
#include "samsync/suppression.h"

namespace samsync {
namespace {

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

// The record a conflict is about: its district, from the records held, or (a deleted
// record's) from the writes in conflict.
std::string ConflictDistrict(const Conflict& conflict, const std::map<RecordId, std::string>& held) {
  if (auto it = held.find(conflict.id); it != held.end()) return it->second;
  if (conflict.deleted_by && conflict.deleted_by->value) return conflict.deleted_by->value->district();
  for (const ConflictWrite& write : conflict.writes) {
    if (write.value) return write.value->district();
  }
  return "";
}

}  // namespace

Result<CityFollowupInput> LoadCityFollowupInput(const Store& store) {
  if (!store.city_wide()) return Status::Invalid("the citywide report is made from the sync server's city-wide store");
  CityFollowupInput input;
  SAMSYNC_ASSIGN_OR_RETURN(std::vector<Conflict> conflicts, store.Conflicts());
  std::set<RecordId> conflicted;
  for (const Conflict& conflict : conflicts) conflicted.insert(conflict.id);
  std::map<RecordId, std::string> conflicted_district;
  std::map<std::string, size_t> index;  // district → position in input.districts
  auto slot = [&](const std::string& district) -> FollowupInput& {
    auto [it, added] = index.emplace(district, input.districts.size());
    if (added) {
      input.districts.emplace_back();
      input.districts.back().district = district;
    }
    return input.districts[it->second];
  };
  for (RecordType type : AllRecordTypes()) {
    SAMSYNC_ASSIGN_OR_RETURN(std::vector<Record> records, store.ListAll(type));
    for (Record& record : records) {
      std::string district = record.district();
      if (conflicted.count(record.id())) conflicted_district[record.id()] = district;
      slot(district).Of(type).push_back(std::move(record));
    }
  }
  for (const Conflict& conflict : conflicts) ++input.conflicts[ConflictDistrict(conflict, conflicted_district)];
  SAMSYNC_ASSIGN_OR_RETURN(input.last_sync_ms, store.DistrictSyncTimes());
  return input;
}

Result<CityReport> ComputeCityReport(const CityFollowupInput& input, const CityReportOptions& options) {
  if (options.stale_days < 0) return Status::Invalid("the days after which a sync is stale cannot be negative");
  CityReport report;
  report.term = options.term;
  report.generated_ms = options.now_ms;
  report.stale_days = options.stale_days;
  SAMSYNC_ASSIGN_OR_RETURN(report.citywide,
                           ComputeCityFollowup(input.districts, options.term, options.reference_date));
  report.period_start = report.citywide.period_start;
  report.reference_date = report.citywide.reference_date;

  // The city's districts in their usual order, then any other named anywhere.
  std::vector<std::string> names = Districts();
  std::set<std::string> others;
  for (const FollowupInput& district : input.districts) others.insert(district.district);
  for (const auto& [district, ms] : input.last_sync_ms) others.insert(district);
  for (const auto& [district, count] : input.conflicts) others.insert(district);
  for (const std::string& name : names) others.erase(name);
  others.erase("");  // a conflict whose record's district is unknown counts in the city's total only
  names.insert(names.end(), others.begin(), others.end());

  std::unordered_map<std::string, const FollowupInput*> by_name;
  for (const FollowupInput& district : input.districts) by_name[district.district] = &district;
  for (const std::string& name : names) {
    DistrictFollowup row;
    row.district = name;
    if (auto it = input.last_sync_ms.find(name); it != input.last_sync_ms.end()) {
      row.last_sync_ms = it->second;
      int64_t age_ms = std::max<int64_t>(0, options.now_ms - it->second);
      row.sync_age_days = age_ms / kDayMs;
      row.stale = age_ms > int64_t{options.stale_days} * kDayMs;
    }
    if (auto it = input.conflicts.find(name); it != input.conflicts.end()) row.conflicts = it->second;
    // A district that synced but holds no records has figures (of nothing); one that
    // never synced and holds none has none.
    if (auto it = by_name.find(name); it != by_name.end()) {
      SAMSYNC_ASSIGN_OR_RETURN(row.report, ComputeFollowup(*it->second, options.term, options.reference_date));
    } else if (row.last_sync_ms) {
      FollowupInput empty;
      empty.district = name;
      SAMSYNC_ASSIGN_OR_RETURN(row.report, ComputeFollowup(empty, options.term, options.reference_date));
    }
    report.stale_districts += row.stale;
    report.districts.push_back(std::move(row));
  }

  for (const auto& [district, count] : input.conflicts) report.conflicts += count;

  std::vector<FollowupReport*> rows;
  for (DistrictFollowup& row : report.districts) rows.push_back(row.report ? &*row.report : nullptr);
  SuppressSmallCells(rows, &report.citywide);
  return report;
}

std::string_view IndicatorStatus(const DistrictFollowup* row, const IndicatorResult& result) {
  if (row != nullptr && row->stale) return "stale";
  if (result.suppressed) return "suppressed";
  if (result.met) return *result.met ? "met" : "not_met";
  return result.indicator.target.empty() ? "no_target" : "no_data";
}

}  // namespace samsync
