// The follow-up report as JSON (for programs) and as a table (for a person). Both
// only read the report; what each indicator means lives in followup.cc.
#include <algorithm>
#include <string>
#include <vector>

#include "samsync/followup.h"

namespace samsync {
namespace {

// Terminal columns taken by UTF-8 text: one per code point. Every character the
// report writes (Latin letters with diacritics, –, ≥, ≤, ✓, ✗) is one column wide.
size_t Columns(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string MetMark(const std::optional<bool>& met) {
  if (!met) return "–";
  return *met ? "✓" : "✗";
}

}  // namespace

nlohmann::json FollowupToJson(const FollowupReport& report) {
  nlohmann::json indicators = nlohmann::json::array();
  for (const IndicatorResult& result : report.indicators) {
    const IndicatorDefinition& d = result.indicator;
    indicators.push_back({{"number", d.number},
                          {"key", d.key},
                          {"name_sv", d.name_sv},
                          {"name_en", d.name_en},
                          {"definition", d.definition},
                          {"target", d.target},
                          {"met", result.met ? nlohmann::json(*result.met) : nlohmann::json(nullptr)},
                          {"summary", result.summary},
                          {"values", result.values}});
  }
  return {{"format", "samsync-followup"},
          {"version", 1},
          {"district", report.district},
          {"term", report.term.ToString()},
          {"period_start", report.period_start.ToString()},
          {"reference_date", report.reference_date.ToString()},
          {"indicators", std::move(indicators)}};
}

std::string FollowupToTable(const FollowupReport& report) {
  std::vector<std::vector<std::string>> rows = {{"#", "Indicator", "Value", "Target", "Met"}};
  for (const IndicatorResult& result : report.indicators) {
    const IndicatorDefinition& d = result.indicator;
    rows.push_back({std::to_string(d.number), d.name_en, result.summary, d.target.empty() ? "–" : d.target,
                    MetMark(result.met)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], Columns(row[c]));
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(widths[c] - Columns(row[c]), ' ');
      // The number column is right-aligned; the others left-aligned.
      out += c == 0 ? pad + row[c] : row[c];
      if (c + 1 < row.size()) out += (c == 0 ? "" : pad) + "  ";
    }
    return out + "\n";
  };
  std::string out = "Follow-up " + report.district + " " + report.term.ToString() + " (" +
                    report.period_start.ToString() + " – " + report.reference_date.ToString() + ")\n";
  out += line(rows[0]);
  std::vector<std::string> rule;
  for (size_t w : widths) rule.emplace_back(w, '-');
  out += line(rule);
  for (size_t r = 1; r < rows.size(); ++r) out += line(rows[r]);
  return out;
}

}  // namespace samsync
