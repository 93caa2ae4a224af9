// Small-cell suppression: what of the follow-up model may leave a district.
//
// DOMAIN.md: counts under 5 are suppressed in anything published beyond the district,
// so that a small group cannot be re-identified. One function applies the rule, and
// every output that leaves a district (the server's report as a table, JSON and CSV;
// later the dashboard and the exports) is made from reports it has been applied to.
// A district's own `samsync report` stays in the district and is not suppressed.
//
// The rule (docs/formats.md, "The citywide follow-up report", says the same for users)
// 1. Cells. The numerator and the denominator of every share object in an indicator's
//    values, and every count the indicator lists (IndicatorDefinition::cells.counts):
//    numbers of children, schools, reports, staff, school–meeting pairs.
// 2. Primary suppression. A cell under kMinPublishedCount (0 to 4) is hidden.
// 3. Secondary suppression: no hidden cell may be derivable from totals. The groups
//    are (a) one cell of one indicator across every row (district), with the same cell
//    of the total (the city) as their total, and (b) in each report, the parts and
//    total an indicator lists (cells.sums: municipal + independent schools make the
//    whole). In a group where exactly one cell is hidden, one more is hidden: the
//    smallest visible part (the first in row order on a tie), or the total when no part
//    is visible. This repeats until no group has exactly one hidden cell. A figure
//    published twice under two names (cells.derived both ways) is hidden in both.
// 4. What follows from hidden cells. A share is hidden when its numerator or
//    denominator is; a derived figure (a median, mean, ratio: cells.derived) when any
//    of its sources is. When an indicator's headline figure is hidden, so is its
//    verdict: `met` becomes nullopt and `suppressed` is set, because "met" on a
//    100 % target would tell the hidden numerator.
// 5. Every indicator's summary is replaced by its headline (IndicatorHeadline), so
//    no text carries a hidden number.
// Not cells, and shown as they are: meetings held (forum cadence), days, dates,
// versions, norms, targets, and the city's counts of districts (4, 6). The complement
// of a share (denominator − numerator) is not a cell of its own: 19 of 20 is shown.
//
// A hidden figure is the JSON object {"suppressed": true} in place of the number;
// people see "<5".
//
// Pure functions of their input; any thread may call them.
#ifndef SAMSYNC_SUPPRESSION_H_
#define SAMSYNC_SUPPRESSION_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "samsync/followup.h"

namespace samsync {

inline constexpr int64_t kMinPublishedCount = 5;

// {"suppressed": true}: what stands in `values` where a figure is hidden.
nlohmann::json SuppressedFigure();
// Whether `figure` is SuppressedFigure().
bool IsSuppressed(const nlohmann::json& figure);

// Applies the rule to `rows` (one report per district, all of the same term and
// reference date, each with every indicator in number order) and `total` (their
// citywide report, or nullptr when none is published with them), in place. Null
// pointers in `rows` are skipped. Idempotent: a second call changes nothing.
void SuppressSmallCells(const std::vector<FollowupReport*>& rows, FollowupReport* total);

}  // namespace samsync

#endif  // SAMSYNC_SUPPRESSION_H_
