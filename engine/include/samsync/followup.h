// The follow-up model (uppföljningsmodell): the 13 indicators the central office reads
// about one district for one term (DOMAIN.md, "The follow-up model").
//
// Contract
// - Dates. A report is computed for a term and a reference date. The reference date
//   R is min(term end, the date asked for); the period T is [term start, R], both days
//   included. Every figure is as known on R: a record dated after R, and a date after
//   R in a record (informed, feedback, contacted), counts as not there yet, so a
//   report for a past date does not change when later records arrive.
// - No data. When an indicator's denominator is empty its share is null and `met` is
//   nullopt. "No data" is never reported as 0 %, and nothing is divided by zero.
// - One definition. Each indicator's number, key, names, definition and target live in
//   one table (FollowupIndicators()) beside the function that computes it; reports,
//   the dashboard and exports all read them from there.
// - Counts are not suppressed here. The rule that counts under 5 are hidden applies
//   to what is published beyond the district, and is the publisher's job
//   (suppression.h), guided by each indicator's `cells`.
// - The city. ComputeCityFollowup pools the records of every district: a share is
//   of all the city's cases, never a mean of district shares.
// - Everything here is a pure function of its input; any thread may call it.
#ifndef SAMSYNC_FOLLOWUP_H_
#define SAMSYNC_FOLLOWUP_H_

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "samsync/date.h"
#include "samsync/record.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync {

// Every record of one district, grouped by type. All records are taken to be the
// district's; their own district field is not looked at.
struct FollowupInput {
  std::string district;
  std::array<std::vector<Record>, kRecordTypeCount> records;  // indexed by RecordType

  const std::vector<Record>& Of(RecordType type) const { return records[static_cast<int>(type)]; }
  std::vector<Record>& Of(RecordType type) { return records[static_cast<int>(type)]; }
};

// Reads every record of the store (Store::List, one read transaction per type). Fails
// with the store's error (kCorruption naming the record if one fails authentication).
Result<FollowupInput> LoadFollowupInput(const Store& store);

// Which of an indicator's figures small-cell suppression (suppression.h) protects, and
// how they hang together. Paths are JSON pointers into `values` ("/municipal/numerator");
// one into another indicator's values is written "key:/pointer".
struct IndicatorCells {
  // Counts of people or bodies (children, schools, reports, staff) other than the
  // "numerator" and "denominator" of each share object, which always are cells.
  // Counts of meetings, days, versions and norms are not cells.
  std::vector<std::string> counts;
  // A figure computed from cells (a median, a mean, a ratio, or a count published twice
  // under two names), with its sources: hidden whenever one of them is.
  std::vector<std::pair<std::string, std::vector<std::string>>> derived;
  // A total and the parts that add up to it (or to a little less: a school whose
  // principal is not recorded counts in the total only).
  std::vector<std::pair<std::string, std::vector<std::string>>> sums;
};

// How a one-cell view (a table of districts × indicators) shows an indicator.
enum class HeadlineKind {
  kShare,    // a share object: "93 %"
  kNumber,   // "2.1", "0.85"
  kDays,     // "212 d"
  kCadence,  // forum cadence: "S1 M1 L2" (steering group, managers' forum, local forums)
};

// What an indicator is, independent of any data.
struct IndicatorDefinition {
  int number = 0;           // 1–13, the order of DOMAIN.md
  std::string key;          // stable machine name: "contact_coverage"
  std::string name_sv;      // "Kontaktpersonstäckning"
  std::string name_en;      // "Contact coverage"
  std::string definition;   // numerator, denominator and dates in one sentence
  std::string target;       // "100 %", "≥ 0.9", ...; "" when informational
  std::string citywide;     // how the citywide figure is formed from every district's records
  // The figure a one-cell view shows: a JSON pointer into `values` ("" is `values`
  // itself), and its kind.
  std::string headline;
  HeadlineKind headline_kind = HeadlineKind::kShare;
  IndicatorCells cells;
};

// The 13 definitions, in number order. Valid for the program's life.
const std::vector<IndicatorDefinition>& FollowupIndicators();

struct IndicatorResult {
  IndicatorDefinition indicator;
  // true/false against the target; nullopt when there is no target or no data.
  std::optional<bool> met;
  // The figure in a few words, for a person: "93 % (14/15)", "no data". After
  // suppression, the headline only ("93 %", "<5"): no hidden figure is left in it.
  std::string summary;
  // The figures: an object whose keys are listed below FollowupToJson. After
  // suppression any number in it may be {"suppressed": true} instead.
  nlohmann::json values;
  // Set by suppression when the headline figure is hidden; `met` is then nullopt, as
  // a verdict would tell what the figure hides.
  bool suppressed = false;
};

struct FollowupReport {
  std::string district;
  Term term;
  Date period_start;    // the term's first day
  Date reference_date;  // R, after clamping to the term's end
  std::vector<IndicatorResult> indicators;  // all 13, in number order
};

// Computes every indicator. An empty `reference_date` means the term's end. Fails with
// kInvalidInput when `reference_date` is before the term starts (the term has not
// begun on that day, so there is nothing to follow up).
Result<FollowupReport> ComputeFollowup(const FollowupInput& input, Term term, Date reference_date);

// The citywide report: every indicator over the pooled records of `districts` (each
// input one district's records, its `district` set). Shares count the city's cases
// (a sum of numerators over a sum of denominators, not a mean of district shares);
// a child is counted once even when enrolled in two districts (child references are
// the city's pseudonyms); social workers and units are told apart by district. The
// two indicators about a district's own routine (4 agreement currency, 6 forum
// cadence) count instead the districts with any record that meet them: their values
// are {"districts_met", "districts"}, met when every such district meets it. Each
// definition's `citywide` says which. The report's `district` is "". Errors as
// ComputeFollowup's.
Result<FollowupReport> ComputeCityFollowup(const std::vector<FollowupInput>& districts, Term term,
                                           Date reference_date);

// The headline of `result` in a few characters, for one cell of a table: "93 %",
// "2.1", "212 d", "S1 M1 L2", "9/14" (the city's 4 and 6), "no data", and "<5" when
// the headline figure is suppressed. Tolerates suppressed figures anywhere.
std::string IndicatorHeadline(const IndicatorResult& result);

// {"format": "samsync-followup", "version": 1, "district", "term": "2016HT",
//  "period_start", "reference_date" ("YYYY-MM-DD"),
//  "indicators": [{"number", "key", "name_sv", "name_en", "definition", "target",
//                  "met": true/false/null, "summary", "values": {...}}]}.
// Stable: fields are only ever added.
//
// "values" per indicator. A share is {"share": 0.93 or null, "numerator": 14,
// "denominator": 15}; "share" is null exactly when the denominator is 0. Days are
// whole days, medians may end in .5.
//   1 contact_coverage:  share (active schools covered), "municipal": share,
//                        "independent": share
//   2 contact_changes_informed: share (changes informed within 14 days), "informed"
//                        (by R, at any delay), "median_days" (of those; null if none),
//                        "pending" (not informed by R, fewer than 14 days old on R)
//   3 schools_per_contact: "workers", "school_links" (distinct worker–school pairs),
//                        "mean", "max" (null without workers), "norm": 2
//   4 agreement_currency: "has_agreement", "version", "adopted", "last_revised"
//                        (YYYY-MM-DD), "days_since_revision" (null without an
//                        agreement), "limit_days": 365
//   5 material_reach:    share (units reached in the 365 days up to R)
//   6 forum_cadence:     "steering_group", "managers", "local_forum": {"held",
//                        "norm_min", "met"} (local_forum also "norm_max": 3),
//                        "transition": {"held"}, "cancelled" (in T, any kind)
//   7 participation_parity: "independent", "municipal": share (attended / invited
//                        pairs), "ratio" (null when either has no invitations or
//                        municipal schools attended none), "target_ratio": 0.9
//   8 forum_attendance:  share (attended / invited pairs)
//   9 concern_feedback:  share (reports with feedback by R), "median_days"
//  10 placed_school_plan: share (placed enrolments running on R with a plan)
//  11 skolfam_timeliness: share (children timely), "without_followup",
//                        "max_gap_days": 56
//  12 ppss_outcomes:     "enrolled", "focus_schools", "with_both_terms",
//                        "mean_attendance_change" (percentage points; null if none),
//                        "passed_rose": share, "eligible_year9": share
//  13 absence_escalation: share (flags where social services was contacted by R)
nlohmann::json FollowupToJson(const FollowupReport& report);

// A table for a terminal: a title line, then one row per indicator with aligned
// columns #, indicator (English name), value (the summary), target and met
// (✓ met, ✗ not met, – no target or no data). UTF-8, ends with a newline.
std::string FollowupToTable(const FollowupReport& report);

}  // namespace samsync

#endif  // SAMSYNC_FOLLOWUP_H_
