// Small-cell suppression (suppression.h states the rule). The indicators' values are
// read through JSON pointers; which figures are cells, which are derived from them and
// which add up to which comes from each indicator's definition (followup.cc).
#include "samsync/suppression.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace samsync {
namespace {

using nlohmann::json;

// A figure: which report (0..rows-1 the rows, rows the total), which indicator, where.
struct CellId {
  size_t report = 0;
  std::string key;
  std::string pointer;
  auto operator<=>(const CellId&) const = default;
};

struct Group {
  std::vector<CellId> parts;
  std::optional<CellId> total;
};

// "key:/pointer" names another indicator's figure; "/pointer" one of `key`'s own.
std::pair<std::string, std::string> Resolve(const std::string& key, const std::string& path) {
  size_t colon = path.find(':');
  if (colon == std::string::npos) return {key, path};
  return {path.substr(0, colon), path.substr(colon + 1)};
}

class Suppressor {
 public:
  explicit Suppressor(std::vector<FollowupReport*> reports) : reports_(std::move(reports)) {}

  void Run(bool has_total) {
    CollectCells();
    for (const auto& [id, value] : cells_) {
      if (!value || *value < kMinPublishedCount) hidden_.insert(id);
    }
    BuildGroups(has_total);
    while (SecondaryStep()) {
    }
    Apply();
  }

 private:
  IndicatorResult* Find(size_t report, const std::string& key) {
    FollowupReport* r = reports_[report];
    if (r == nullptr) return nullptr;
    for (IndicatorResult& result : r->indicators) {
      if (result.indicator.key == key) return &result;
    }
    return nullptr;
  }

  json* Figure(const CellId& id) {
    IndicatorResult* result = Find(id.report, id.key);
    if (result == nullptr) return nullptr;
    json::json_pointer pointer(id.pointer);
    if (!result->values.contains(pointer)) return nullptr;
    return &result->values[pointer];
  }

  // A cell's count; nullopt when it is already hidden (a second run).
  void AddCell(const CellId& id) {
    json* figure = Figure(id);
    if (figure == nullptr) return;
    if (figure->is_number_integer() || figure->is_number_unsigned()) {
      cells_[id] = figure->get<int64_t>();
    } else if (IsSuppressed(*figure)) {
      cells_[id] = std::nullopt;
    }
  }

  // Every share object's numerator and denominator, below `at`.
  void AddShares(size_t report, const std::string& key, const json& value, const std::string& at) {
    if (!value.is_object()) return;
    if (value.contains("numerator") && value.contains("denominator")) {
      AddCell({report, key, at + "/numerator"});
      AddCell({report, key, at + "/denominator"});
    }
    for (const auto& [name, child] : value.items()) {
      if (child.is_object()) AddShares(report, key, child, at + "/" + name);
    }
  }

  void CollectCells() {
    for (size_t r = 0; r < reports_.size(); ++r) {
      if (reports_[r] == nullptr) continue;
      for (const IndicatorResult& result : reports_[r]->indicators) {
        const std::string& key = result.indicator.key;
        AddShares(r, key, result.values, "");
        for (const std::string& count : result.indicator.cells.counts) AddCell({r, key, count});
      }
    }
  }

  void BuildGroups(bool has_total) {
    size_t rows = has_total ? reports_.size() - 1 : reports_.size();
    // (a) One figure across the rows, the city's as the total.
    if (has_total) {
      std::map<std::pair<std::string, std::string>, Group> across;
      for (const auto& [id, value] : cells_) {
        Group& group = across[{id.key, id.pointer}];
        if (id.report < rows) {
          group.parts.push_back(id);
        } else {
          group.total = id;
        }
      }
      for (auto& [where, group] : across) {
        if (group.total) groups_.push_back(std::move(group));
      }
    }
    // (b) Parts and totals within one report.
    for (size_t r = 0; r < reports_.size(); ++r) {
      if (reports_[r] == nullptr) continue;
      for (const IndicatorResult& result : reports_[r]->indicators) {
        for (const auto& [total, parts] : result.indicator.cells.sums) {
          auto [total_key, total_pointer] = Resolve(result.indicator.key, total);
          CellId total_id{r, total_key, total_pointer};
          if (!cells_.count(total_id)) continue;
          Group group;
          group.total = total_id;
          for (const std::string& part : parts) {
            auto [part_key, part_pointer] = Resolve(result.indicator.key, part);
            CellId part_id{r, part_key, part_pointer};
            if (cells_.count(part_id)) group.parts.push_back(part_id);
          }
          groups_.push_back(std::move(group));
        }
        // A cell published twice: both names hidden together.
        for (const auto& [target, sources] : result.indicator.cells.derived) {
          auto [target_key, target_pointer] = Resolve(result.indicator.key, target);
          CellId target_id{r, target_key, target_pointer};
          if (!cells_.count(target_id)) continue;
          for (const std::string& source : sources) {
            auto [source_key, source_pointer] = Resolve(result.indicator.key, source);
            CellId source_id{r, source_key, source_pointer};
            if (cells_.count(source_id)) aliases_.emplace_back(source_id, target_id);
          }
        }
      }
    }
  }

  // One pass over the groups; whether anything more was hidden.
  bool SecondaryStep() {
    bool changed = false;
    for (const auto& [source, target] : aliases_) {
      if (hidden_.count(source) && hidden_.insert(target).second) changed = true;
    }
    for (const Group& group : groups_) {
      size_t hidden = 0;
      for (const CellId& part : group.parts) hidden += hidden_.count(part);
      if (group.total) hidden += hidden_.count(*group.total);
      if (hidden != 1) continue;
      const CellId* pick = nullptr;
      int64_t smallest = 0;
      for (const CellId& part : group.parts) {
        if (hidden_.count(part)) continue;
        int64_t value = cells_.at(part).value_or(0);
        if (pick == nullptr || value < smallest) {
          pick = &part;
          smallest = value;
        }
      }
      if (pick == nullptr && group.total && !hidden_.count(*group.total)) pick = &*group.total;
      if (pick != nullptr) {
        hidden_.insert(*pick);
        changed = true;
      }
    }
    return changed;
  }

  static bool Hidden(const json& values, const std::string& pointer) {
    json::json_pointer p(pointer);
    return values.contains(p) && IsSuppressed(values[p]);
  }

  // Hides the share of every share object below `value` whose numerator or
  // denominator is hidden.
  static void HideShares(json& value) {
    if (!value.is_object()) return;
    if (value.contains("numerator") && value.contains("denominator") &&
        (IsSuppressed(value["numerator"]) || IsSuppressed(value["denominator"]))) {
      value["share"] = SuppressedFigure();
    }
    for (auto& [name, child] : value.items()) HideShares(child);
  }

  void Apply() {
    for (const CellId& id : hidden_) {
      if (json* figure = Figure(id)) *figure = SuppressedFigure();
    }
    for (size_t r = 0; r < reports_.size(); ++r) {
      if (reports_[r] == nullptr) continue;
      for (IndicatorResult& result : reports_[r]->indicators) HideShares(result.values);
      // Derived figures, until none changes (one may be derived from another).
      for (bool changed = true; changed;) {
        changed = false;
        for (IndicatorResult& result : reports_[r]->indicators) {
          for (const auto& [target, sources] : result.indicator.cells.derived) {
            auto [target_key, target_pointer] = Resolve(result.indicator.key, target);
            IndicatorResult* owner = Find(r, target_key);
            if (owner == nullptr || Hidden(owner->values, target_pointer)) continue;
            json::json_pointer target_p(target_pointer);
            if (!owner->values.contains(target_p)) continue;
            bool from_hidden = std::any_of(sources.begin(), sources.end(), [&](const std::string& source) {
              auto [source_key, source_pointer] = Resolve(result.indicator.key, source);
              IndicatorResult* from = Find(r, source_key);
              return from != nullptr && Hidden(from->values, source_pointer);
            });
            if (from_hidden) {
              owner->values[target_p] = SuppressedFigure();
              changed = true;
            }
          }
        }
      }
      for (IndicatorResult& result : reports_[r]->indicators) {
        json::json_pointer headline(result.indicator.headline);
        if (result.values.contains(headline)) {
          const json& figure = result.values[headline];
          bool hidden = IsSuppressed(figure) || (figure.is_object() && figure.contains("share") &&
                                                 IsSuppressed(figure["share"]));
          if (hidden) {
            result.suppressed = true;
            result.met = std::nullopt;
          }
        }
        result.summary = IndicatorHeadline(result);
      }
    }
  }

  std::vector<FollowupReport*> reports_;
  std::map<CellId, std::optional<int64_t>> cells_;
  std::set<CellId> hidden_;
  std::vector<Group> groups_;
  std::vector<std::pair<CellId, CellId>> aliases_;  // (source, target): hide target with source
};

}  // namespace

json SuppressedFigure() { return {{"suppressed", true}}; }

bool IsSuppressed(const json& figure) {
  return figure.is_object() && figure.size() == 1 && figure.contains("suppressed") &&
         figure["suppressed"] == true;
}

void SuppressSmallCells(const std::vector<FollowupReport*>& rows, FollowupReport* total) {
  std::vector<FollowupReport*> reports = rows;
  if (total != nullptr) reports.push_back(total);
  Suppressor(std::move(reports)).Run(total != nullptr);
}

}  // namespace samsync
