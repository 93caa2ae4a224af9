// The citywide report as JSON, a terminal table and CSV. Each only reads a CityReport,
// which ComputeCityReport has already suppressed: nothing here decides what is shown.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "samsync/city_report.h"
#include "samsync/suppression.h"

namespace samsync {
namespace {

using nlohmann::json;

constexpr char kHidden[] = "<5";

// "2016-11-20T10:00:00Z".
std::string IsoTime(int64_t ms) {
  std::time_t whole = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json OrNull(const std::optional<int64_t>& value) { return value ? json(*value) : json(nullptr); }

// Terminal columns of UTF-8 text: one per code point (every character written here is
// one column wide).
size_t Columns(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string Pad(const std::string& text, size_t width, bool right = false) {
  std::string pad(width > Columns(text) ? width - Columns(text) : 0, ' ');
  return right ? pad + text : text + pad;
}

std::string SyncAge(const DistrictFollowup& row) {
  if (!row.sync_age_days) return "never";
  if (*row.sync_age_days == 0) return "today";
  return std::to_string(*row.sync_age_days) + " d ago";
}

// One cell of the table: the headline and the verdict, or why there is none.
std::string Cell(const DistrictFollowup* row, const IndicatorResult& result) {
  std::string_view status = IndicatorStatus(row, result);
  if (status == "stale") return "stale";
  if (status == "suppressed") return kHidden;
  std::string text = IndicatorHeadline(result);
  if (status == "met") return text + " ✓";
  if (status == "not_met") return text + " ✗";
  return text;
}

json IndicatorJson(const DistrictFollowup* row, const IndicatorResult& result) {
  json met = result.suppressed ? SuppressedFigure() : result.met ? json(*result.met) : json(nullptr);
  return {{"number", result.indicator.number},
          {"key", result.indicator.key},
          {"status", std::string(IndicatorStatus(row, result))},
          {"met", std::move(met)},
          {"text", IndicatorHeadline(result)},
          {"values", result.values}};
}

// The 13 entries of a row that has no figures: stale, nothing to show.
json StaleIndicatorsJson() {
  json out = json::array();
  for (const IndicatorDefinition& d : FollowupIndicators()) {
    out.push_back({{"number", d.number},
                   {"key", d.key},
                   {"status", "stale"},
                   {"met", nullptr},
                   {"text", "stale"},
                   {"values", nullptr}});
  }
  return out;
}

// A number for Swedish Excel: integers as they are, fractions with a decimal comma and
// at most 4 decimals ("0,9333"), no trailing zeros.
std::string CsvNumber(const json& number) {
  if (number.is_number_integer() || number.is_number_unsigned()) return number.dump();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4f", number.get<double>());
  std::string text = buf;
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  if (text == "-0") text = "0";
  std::replace(text.begin(), text.end(), '.', ',');
  return text;
}

std::string CsvValue(const json& value) {
  if (IsSuppressed(value)) return kHidden;
  if (value.is_null()) return "";
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return CsvNumber(value);
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(";\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Every figure below `value`: (measure, value), the measure the JSON pointer with dots.
void Leaves(const json& value, const std::string& at, std::vector<std::pair<std::string, const json*>>& out) {
  if (value.is_object() && !IsSuppressed(value)) {
    for (const auto& [name, child] : value.items()) Leaves(child, at.empty() ? name : at + "." + name, out);
    return;
  }
  out.emplace_back(at, &value);
}

}  // namespace

json CityReportToJson(const CityReport& report) {
  json definitions = json::array();
  for (const IndicatorDefinition& d : FollowupIndicators()) {
    definitions.push_back({{"number", d.number},
                           {"key", d.key},
                           {"name_sv", d.name_sv},
                           {"name_en", d.name_en},
                           {"definition", d.definition},
                           {"citywide", d.citywide},
                           {"target", d.target}});
  }
  json districts = json::array();
  for (const DistrictFollowup& row : report.districts) {
    json indicators = json::array();
    if (row.report) {
      for (const IndicatorResult& result : row.report->indicators) indicators.push_back(IndicatorJson(&row, result));
    } else {
      indicators = StaleIndicatorsJson();
    }
    districts.push_back({{"district", row.district},
                         {"last_sync", row.last_sync_ms ? json(IsoTime(*row.last_sync_ms)) : json(nullptr)},
                         {"sync_age_days", OrNull(row.sync_age_days)},
                         {"stale", row.stale},
                         {"conflicts", row.conflicts},
                         {"indicators", std::move(indicators)}});
  }
  json city = json::array();
  for (const IndicatorResult& result : report.citywide.indicators) city.push_back(IndicatorJson(nullptr, result));
  return {{"format", "samsync-city-followup"},
          {"version", 1},
          {"term", report.term.ToString()},
          {"period_start", report.period_start.ToString()},
          {"reference_date", report.reference_date.ToString()},
          {"generated_at", IsoTime(report.generated_ms)},
          {"stale_days", report.stale_days},
          {"min_published_count", kMinPublishedCount},
          {"indicators", std::move(definitions)},
          {"districts", std::move(districts)},
          {"citywide",
           {{"stale_districts", report.stale_districts},
            {"conflicts", report.conflicts},
            {"indicators", std::move(city)}}}};
}

std::string CityReportToTable(const CityReport& report) {
  const std::vector<IndicatorDefinition>& definitions = FollowupIndicators();
  std::vector<std::string> header = {"District", "Last sync", "Conflicts"};
  for (const IndicatorDefinition& d : definitions) header.push_back(std::to_string(d.number));
  std::vector<std::vector<std::string>> rows;
  for (const DistrictFollowup& row : report.districts) {
    std::vector<std::string> cells = {row.district, SyncAge(row), std::to_string(row.conflicts)};
    for (size_t i = 0; i < definitions.size(); ++i) {
      cells.push_back(row.report && !row.stale ? Cell(&row, row.report->indicators[i]) : "stale");
    }
    rows.push_back(std::move(cells));
  }
  std::vector<std::string> city = {"Citywide (pooled)", std::to_string(report.stale_districts) + " stale",
                                   std::to_string(report.conflicts)};
  for (const IndicatorResult& result : report.citywide.indicators) city.push_back(Cell(nullptr, result));

  std::vector<size_t> widths(header.size(), 0);
  for (const auto* line : {&header, &city}) {
    for (size_t c = 0; c < line->size(); ++c) widths[c] = std::max(widths[c], Columns((*line)[c]));
  }
  for (const auto& line : rows) {
    for (size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], Columns(line[c]));
  }
  auto format = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t c = 0; c < line.size(); ++c) {
      bool last = c + 1 == line.size();
      // The district is left-aligned, the conflicts right-aligned, the rest left-aligned.
      std::string cell = Pad(line[c], widths[c], c == 2);
      if (last) cell.erase(cell.find_last_not_of(' ') + 1);
      out += cell + (last ? "" : "  ");
    }
    return out + "\n";
  };
  std::string rule;
  for (size_t c = 0; c < widths.size(); ++c) rule += std::string(widths[c], '-') + (c + 1 < widths.size() ? "  " : "");

  std::string out = "Citywide follow-up " + report.term.ToString() + " (" + report.period_start.ToString() + " – " +
                    report.reference_date.ToString() + "), made " + FormatTime(report.generated_ms, false) + "\n";
  out += "✓ met  ✗ not met  <5 suppressed (a count under 5, or a figure that would reveal one)  stale: no sync in " +
         std::to_string(report.stale_days) + " days\n\n";
  out += format(header);
  out += rule + "\n";
  for (const auto& line : rows) out += format(line);
  out += rule + "\n";
  out += format(city);
  out += "\n";
  for (const IndicatorDefinition& d : definitions) {
    out += Pad(std::to_string(d.number), 2, true) + "  " + d.name_en + " (" + d.name_sv + ")" +
           (d.target.empty() ? "" : ", target " + d.target) + "\n";
    if (d.headline_kind == HeadlineKind::kCadence) {
      out += "    S steering group meetings this term, M managers' forums in the last year, L local forums this "
             "term\n";
    }
  }
  out += "The city's 4 and 6 count the districts that meet them, of those with records; its other figures are "
         "computed from every district's records pooled.\n";
  return out;
}

std::string CityReportToCsv(const CityReport& report) {
  std::string out = "\xEF\xBB\xBF";
  auto line = [&out](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) out += (i == 0 ? "" : ";") + CsvField(fields[i]);
    out += "\r\n";
  };
  line({"scope", "district", "term", "period_start", "reference_date", "last_sync", "sync_age_days", "stale",
        "conflicts", "number", "key", "indicator_sv", "indicator_en", "target", "status", "measure", "value"});
  auto rows = [&](const std::string& scope, const DistrictFollowup* row, const FollowupReport* figures) {
    std::vector<std::string> head = {scope,
                                     row ? row->district : "",
                                     report.term.ToString(),
                                     report.period_start.ToString(),
                                     report.reference_date.ToString(),
                                     row && row->last_sync_ms ? IsoTime(*row->last_sync_ms) : "",
                                     row && row->sync_age_days ? std::to_string(*row->sync_age_days) : "",
                                     row ? (row->stale ? "true" : "false") : "",
                                     std::to_string(row ? row->conflicts : report.conflicts)};
    const std::vector<IndicatorDefinition>& definitions = FollowupIndicators();
    for (size_t i = 0; i < definitions.size(); ++i) {
      const IndicatorDefinition& d = definitions[i];
      std::vector<std::string> fields = head;
      fields.insert(fields.end(), {std::to_string(d.number), d.key, d.name_sv, d.name_en, d.target});
      if (figures == nullptr) {
        fields.insert(fields.end(), {"stale", "", ""});
        line(fields);
        continue;
      }
      const IndicatorResult& result = figures->indicators[i];
      fields.push_back(std::string(IndicatorStatus(row, result)));
      std::vector<std::pair<std::string, const json*>> leaves;
      Leaves(result.values, "", leaves);
      for (const auto& [measure, value] : leaves) {
        std::vector<std::string> figure = fields;
        figure.insert(figure.end(), {measure, CsvValue(*value)});
        line(figure);
      }
    }
  };
  for (const DistrictFollowup& row : report.districts) rows("district", &row, row.report ? &*row.report : nullptr);
  rows("city", nullptr, &report.citywide);
  return out;
}

}  // namespace samsync
