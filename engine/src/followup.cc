// The 13 indicators of the follow-up model: one table of definitions (kIndicators, at
// the end) and one compute function per indicator above it. The keys each function
// writes into `values` are part of the JSON format (followup.h lists them): add keys,
// never rename or drop one.
#include "samsync/followup.h"

#include "samsync/suppression.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

namespace samsync {
namespace {

using nlohmann::json;

constexpr int32_t kInformWithinDays = 14;
constexpr int32_t kYearDays = 365;
constexpr int32_t kSkolfamMaxGapDays = 56;
constexpr double kParityTarget = 0.9;
constexpr double kSchoolsPerWorkerNorm = 2.0;

// A date field as a Date; a number that is not a calendar date counts as no date
// (records from the store were validated; hand-built input may not be).
Date ToDate(uint32_t yyyymmdd) {
  auto date = Date::FromNumber(yyyymmdd);
  return date.ok() ? *date : Date();
}

// A 16-byte Data field as an id; anything else is the zero id.
Id16 ToId(capnp::Data::Reader data) {
  Id16 id;
  if (data.size() == id.bytes.size()) std::copy(data.begin(), data.end(), id.bytes.begin());
  return id;
}

// Whether an interval [from, to] (to empty = ongoing) contains `day`.
bool ActiveOn(Date from, Date to, Date day) {
  return !from.empty() && from <= day && (to.empty() || to >= day);
}

// {"share": numerator/denominator or null, "numerator", "denominator"}.
json ShareJson(int64_t numerator, int64_t denominator) {
  json share = denominator == 0 ? json(nullptr)
                                : json(static_cast<double>(numerator) / static_cast<double>(denominator));
  return {{"share", share}, {"numerator", numerator}, {"denominator", denominator}};
}

// 0–100. The percentage never rounds up to 100 or down to 0 when that would hide a
// missing or a present case. Requires denominator > 0.
int64_t Percent(int64_t numerator, int64_t denominator) {
  auto percent = static_cast<int64_t>(
      std::lround(100.0 * static_cast<double>(numerator) / static_cast<double>(denominator)));
  if (numerator < denominator) percent = std::min<int64_t>(percent, 99);
  if (numerator > 0) percent = std::max<int64_t>(percent, 1);
  return percent;
}

// "93 % (14/15)", or "no data".
std::string ShareText(int64_t numerator, int64_t denominator) {
  if (denominator == 0) return "no data";
  return std::to_string(Percent(numerator, denominator)) + " % (" + std::to_string(numerator) + "/" +
         std::to_string(denominator) + ")";
}

std::optional<bool> AllOf(int64_t numerator, int64_t denominator) {
  if (denominator == 0) return std::nullopt;
  return numerator == denominator;
}

// The median; of an even count, the mean of the two middle values.
std::optional<double> Median(std::vector<int32_t> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  if (values.size() % 2 == 1) return values[mid];
  return (static_cast<double>(values[mid - 1]) + static_cast<double>(values[mid])) / 2.0;
}

json OrNull(std::optional<double> value) { return value ? json(*value) : json(nullptr); }

// A number for a person: "12", "1.5", "-2.25" (up to two decimals, no trailing zeros).
std::string NumberText(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", value);
  std::string text = buf;
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text == "-0" ? "0" : text;
}

std::string DaysText(std::optional<double> days) {
  return days ? NumberText(*days) + (*days == 1.0 ? " day" : " days") : "none";
}

struct SchoolInfo {
  schema::Principal principal = schema::Principal::UNSPECIFIED;
  Date closed;
  bool ppss_focus = false;
};

// What every indicator needs: the dates, the schools by id and the records of every
// input (one district's, or every district's for the city).
struct Context {
  std::vector<const FollowupInput*> inputs;
  bool city = false;  // the pooled records of several districts
  Term term;
  Date start;  // the period T is [start, ref]
  Date ref;    // R
  std::map<RecordId, SchoolInfo> schools;
  std::array<std::vector<const Record*>, kRecordTypeCount> records;  // of every input

  const std::vector<const Record*>& Of(RecordType type) const { return records[static_cast<int>(type)]; }

  bool InPeriod(Date day) const { return !day.empty() && day >= start && day <= ref; }
  // Known on R: set, and not after R.
  bool KnownBy(Date day) const { return !day.empty() && day <= ref; }
  bool SchoolActive(const SchoolInfo& school) const { return school.closed.empty() || school.closed > ref; }
  const SchoolInfo* School(const RecordId& id) const {
    auto it = schools.find(id);
    return it == schools.end() ? nullptr : &it->second;
  }
  // Whether an enrolment [from, to] overlaps T.
  bool OverlapsPeriod(Date from, Date to) const {
    return !from.empty() && from <= ref && (to.empty() || to >= start);
  }
};

// 1. values: share of all active schools, plus "municipal" and "independent" shares.
void ContactCoverage(const Context& c, IndicatorResult& out) {
  std::set<RecordId> covered;
  for (const Record* record : c.Of(RecordType::kContact)) {
    auto contact = record->reader().getBody().getContact();
    if (ActiveOn(ToDate(contact.getFromDate()), ToDate(contact.getToDate()), c.ref)) {
      covered.insert(ToId(contact.getSchoolId()));
    }
  }
  int64_t num = 0, den = 0, mun_num = 0, mun_den = 0, ind_num = 0, ind_den = 0;
  for (const auto& [id, school] : c.schools) {
    if (!c.SchoolActive(school)) continue;
    bool has = covered.count(id) != 0;
    ++den;
    num += has;
    if (school.principal == schema::Principal::MUNICIPAL) {
      ++mun_den;
      mun_num += has;
    } else if (school.principal == schema::Principal::INDEPENDENT) {
      ++ind_den;
      ind_num += has;
    }
  }
  out.values = ShareJson(num, den);
  out.values["municipal"] = ShareJson(mun_num, mun_den);
  out.values["independent"] = ShareJson(ind_num, ind_den);
  out.met = AllOf(num, den);
  out.summary = ShareText(num, den);
  if (den != 0) {
    out.summary += "; municipal " + ShareText(mun_num, mun_den) + ", independent " + ShareText(ind_num, ind_den);
  }
}

// 2. values: share informed within 14 days; "informed" (by R, at any delay);
// "median_days" to informing of those (null if none); "pending": changes not informed
// by R whose 14 days had not yet run out on R (they count as not informed in time).
//
// An assignment is a change when the school's assignment just before it (the latest
// earlier fromDate) was another person's; the same person registered again is not.
void ContactChanges(const Context& c, IndicatorResult& out) {
  struct Start {
    Date from;
    std::string worker;
  };
  std::map<RecordId, std::vector<Start>> by_school;
  for (const Record* record : c.Of(RecordType::kContact)) {
    auto contact = record->reader().getBody().getContact();
    Date from = ToDate(contact.getFromDate());
    if (!from.empty()) by_school[ToId(contact.getSchoolId())].push_back({from, contact.getSocialWorker().cStr()});
  }
  auto is_change = [&](const RecordId& school, Date from, const std::string& worker) {
    Date previous;
    for (const Start& s : by_school[school]) {
      if (s.from < from) previous = std::max(previous, s.from);
    }
    if (previous.empty()) return false;  // the school's first contact person
    for (const Start& s : by_school[school]) {
      if (s.from == previous && s.worker == worker) return false;
    }
    return true;
  };
  int64_t changes = 0, within = 0, informed = 0, pending = 0;
  std::vector<int32_t> days;
  for (const Record* record : c.Of(RecordType::kContact)) {
    auto contact = record->reader().getBody().getContact();
    Date from = ToDate(contact.getFromDate());
    if (!c.InPeriod(from) || !is_change(ToId(contact.getSchoolId()), from, contact.getSocialWorker().cStr())) continue;
    ++changes;
    Date told = ToDate(contact.getInformedDate());
    if (c.KnownBy(told)) {
      ++informed;
      int32_t delay = DaysBetween(from, told);
      days.push_back(delay);
      within += delay <= kInformWithinDays;
    } else if (DaysBetween(from, c.ref) < kInformWithinDays) {
      ++pending;
    }
  }
  auto median = Median(days);
  out.values = ShareJson(within, changes);
  out.values["informed"] = informed;
  out.values["median_days"] = OrNull(median);
  out.values["pending"] = pending;
  out.met = AllOf(within, changes);
  out.summary = ShareText(within, changes);
  if (changes != 0) out.summary += " within 14 days; median " + DaysText(median);
}

// 3. values: "workers" (distinct socialWorker values with an active assignment on R),
// "school_links" (distinct worker–school pairs), "mean" and "max" schools per worker
// (null with no workers), "norm": 2.
void SchoolsPerContact(const Context& c, IndicatorResult& out) {
  // Staff references are a district's own: the same one in two districts is two people.
  std::map<std::pair<std::string, std::string>, std::set<RecordId>> by_worker;  // (district, worker)
  for (const FollowupInput* input : c.inputs) {
    for (const Record& record : input->Of(RecordType::kContact)) {
      auto contact = record.reader().getBody().getContact();
      RecordId school_id = ToId(contact.getSchoolId());
      const SchoolInfo* school = c.School(school_id);
      if (school == nullptr || !c.SchoolActive(*school)) continue;
      if (!ActiveOn(ToDate(contact.getFromDate()), ToDate(contact.getToDate()), c.ref)) continue;
      by_worker[{input->district, contact.getSocialWorker().cStr()}].insert(school_id);
    }
  }
  int64_t links = 0, max = 0;
  for (const auto& [worker, schools] : by_worker) {
    links += static_cast<int64_t>(schools.size());
    max = std::max(max, static_cast<int64_t>(schools.size()));
  }
  auto workers = static_cast<int64_t>(by_worker.size());
  std::optional<double> mean;
  if (workers != 0) mean = static_cast<double>(links) / static_cast<double>(workers);
  out.values = {{"workers", workers},
                {"school_links", links},
                {"mean", OrNull(mean)},
                {"max", workers == 0 ? json(nullptr) : json(max)},
                {"norm", kSchoolsPerWorkerNorm}};
  out.met = std::nullopt;
  out.summary = workers == 0 ? "no data"
                             : "mean " + NumberText(*mean) + ", max " + std::to_string(max) + " (" +
                                   std::to_string(workers) + (workers == 1 ? " worker)" : " workers)");
}

// 4. values: "has_agreement"; "version", "adopted", "last_revised" (YYYY-MM-DD),
// "days_since_revision" (all null without an agreement); "limit_days": 365.
void AgreementCurrency(const Context& c, IndicatorResult& out) {
  const Record* best = nullptr;
  uint32_t best_version = 0;
  Date best_adopted;
  for (const Record* record : c.Of(RecordType::kAgreement)) {
    auto agreement = record->reader().getBody().getAgreement();
    Date adopted = ToDate(agreement.getAdoptedDate());
    if (!c.KnownBy(adopted)) continue;
    uint32_t version = agreement.getVersion();
    if (best == nullptr || version > best_version || (version == best_version && adopted > best_adopted)) {
      best = record;
      best_version = version;
      best_adopted = adopted;
    }
  }
  out.values = {{"has_agreement", best != nullptr}, {"version", nullptr}, {"adopted", nullptr},
                {"last_revised", nullptr},          {"days_since_revision", nullptr},
                {"limit_days", kYearDays}};
  if (best == nullptr) {
    out.met = false;
    out.summary = "no agreement";
    return;
  }
  Date last = best_adopted;
  for (uint32_t revision : best->reader().getBody().getAgreement().getRevisionDates()) {
    Date day = ToDate(revision);
    if (c.KnownBy(day)) last = std::max(last, day);
  }
  int32_t days = DaysBetween(last, c.ref);
  out.values["version"] = best_version;
  out.values["adopted"] = best_adopted.ToString();
  out.values["last_revised"] = last.ToString();
  out.values["days_since_revision"] = days;
  out.met = days <= kYearDays;
  out.summary = std::to_string(days) + " days since " + last.ToString() + " (version " +
                std::to_string(best_version) + ")";
}

// 5. values: share of units reached in the 365 days up to R.
void MaterialReach(const Context& c, IndicatorResult& out) {
  // (district, unit) → latest dissemination on or before R: a unit is a district's own.
  std::map<std::pair<std::string, std::string>, Date> latest;
  for (const FollowupInput* input : c.inputs) {
    for (const Record& record : input->Of(RecordType::kMaterial)) {
      auto material = record.reader().getBody().getMaterial();
      Date day = ToDate(material.getDate());
      if (!c.KnownBy(day)) continue;
      std::string unit = material.getUnit().cStr();
      size_t first = unit.find_first_not_of(" \t"), last = unit.find_last_not_of(" \t");
      unit = first == std::string::npos ? "" : unit.substr(first, last - first + 1);
      Date& seen = latest[{input->district, unit}];
      seen = std::max(seen, day);
    }
  }
  int64_t reached = 0;
  for (const auto& [unit, day] : latest) reached += DaysBetween(day, c.ref) < kYearDays;
  auto units = static_cast<int64_t>(latest.size());
  out.values = ShareJson(reached, units);
  out.met = AllOf(reached, units);
  out.summary = ShareText(reached, units);
}

// 6. values: "steering_group", "managers", "local_forum": each {"held", "norm_min",
// "met"} ("local_forum" also "norm_max": 3); "transition": {"held"}; "cancelled":
// cancelled meetings of any kind in T.
void ForumCadence(const Context& c, IndicatorResult& out) {
  int64_t steering = 0, managers = 0, local = 0, transition = 0, cancelled = 0;
  for (const Record* record : c.Of(RecordType::kForum)) {
    auto forum = record->reader().getBody().getForum();
    Date day = ToDate(forum.getDate());
    bool in_period = c.InPeriod(day);
    if (forum.getCancelled()) {
      cancelled += in_period;
      continue;
    }
    switch (forum.getKind()) {
      case schema::ForumKind::STEERING_GROUP: steering += in_period; break;
      case schema::ForumKind::MANAGERS: managers += c.KnownBy(day) && DaysBetween(day, c.ref) < kYearDays; break;
      case schema::ForumKind::TRANSITION: transition += in_period; break;
      case schema::ForumKind::LOCAL_FORUM: local += in_period; break;
      case schema::ForumKind::UNSPECIFIED: break;
    }
  }
  bool steering_met = steering >= 1, managers_met = managers >= 1, local_met = local >= 2;
  out.values = {{"steering_group", {{"held", steering}, {"norm_min", 1}, {"met", steering_met}}},
                {"managers", {{"held", managers}, {"norm_min", 1}, {"met", managers_met}}},
                {"local_forum", {{"held", local}, {"norm_min", 2}, {"norm_max", 3}, {"met", local_met}}},
                {"transition", {{"held", transition}}},
                {"cancelled", cancelled}};
  out.met = steering_met && managers_met && local_met;
  out.summary = "steering " + std::to_string(steering) + "/1, managers " + std::to_string(managers) +
                "/1 a year, local " + std::to_string(local) + "/2–3, transition " + std::to_string(transition);
}

// Invited and attended school–meeting pairs of the meetings held (not cancelled) in T.
struct Attendance {
  int64_t invited = 0, attended = 0;
  int64_t municipal_invited = 0, municipal_attended = 0;
  int64_t independent_invited = 0, independent_attended = 0;
};

Attendance CountAttendance(const Context& c) {
  Attendance a;
  for (const Record* record : c.Of(RecordType::kForum)) {
    auto forum = record->reader().getBody().getForum();
    if (forum.getCancelled() || !c.InPeriod(ToDate(forum.getDate()))) continue;
    std::set<RecordId> attended;
    for (auto id : forum.getAttendedSchoolIds()) attended.insert(ToId(id));
    for (auto id : forum.getInvitedSchoolIds()) {
      RecordId school_id = ToId(id);
      bool came = attended.count(school_id) != 0;
      ++a.invited;
      a.attended += came;
      const SchoolInfo* school = c.School(school_id);
      if (school == nullptr) continue;
      if (school->principal == schema::Principal::MUNICIPAL) {
        ++a.municipal_invited;
        a.municipal_attended += came;
      } else if (school->principal == schema::Principal::INDEPENDENT) {
        ++a.independent_invited;
        a.independent_attended += came;
      }
    }
  }
  return a;
}

// 7. values: "independent" and "municipal" attendance shares; "ratio" (independent
// rate / municipal rate; null when either has no invitations or municipal schools
// attended none); "target_ratio": 0.9.
void ParticipationParity(const Context& c, IndicatorResult& out) {
  Attendance a = CountAttendance(c);
  out.values = {{"independent", ShareJson(a.independent_attended, a.independent_invited)},
                {"municipal", ShareJson(a.municipal_attended, a.municipal_invited)},
                {"ratio", nullptr},
                {"target_ratio", kParityTarget}};
  if (a.independent_invited == 0 || a.municipal_invited == 0) {
    out.met = std::nullopt;
    out.summary = "no data";
    return;
  }
  std::string rates = "independent " + ShareText(a.independent_attended, a.independent_invited) +
                      ", municipal " + ShareText(a.municipal_attended, a.municipal_invited);
  if (a.municipal_attended == 0) {
    // Independent schools attended at least as much as municipal ones (which is none).
    out.met = true;
    out.summary = "ratio undefined; " + rates;
    return;
  }
  // In integers first, so that equal rates give exactly 1.
  double ratio = static_cast<double>(a.independent_attended * a.municipal_invited) /
                 static_cast<double>(a.independent_invited * a.municipal_attended);
  out.values["ratio"] = ratio;
  out.met = ratio >= kParityTarget;
  out.summary = "ratio " + NumberText(ratio) + "; " + rates;
}

// 8. values: share of invited school–meeting pairs that attended.
void ForumAttendance(const Context& c, IndicatorResult& out) {
  Attendance a = CountAttendance(c);
  out.values = ShareJson(a.attended, a.invited);
  out.met = std::nullopt;
  out.summary = ShareText(a.attended, a.invited);
}

// 9. values: share with feedback by R; "median_days" from receipt to feedback (null
// if none).
void ConcernFeedback(const Context& c, IndicatorResult& out) {
  int64_t reports = 0, answered = 0;
  std::vector<int32_t> days;
  for (const Record* record : c.Of(RecordType::kConcern)) {
    auto concern = record->reader().getBody().getConcern();
    Date received = ToDate(concern.getReceivedDate());
    if (!c.InPeriod(received)) continue;
    ++reports;
    Date feedback = ToDate(concern.getFeedbackDate());
    if (c.KnownBy(feedback)) {
      ++answered;
      days.push_back(DaysBetween(received, feedback));
    }
  }
  auto median = Median(days);
  out.values = ShareJson(answered, reports);
  out.values["median_days"] = OrNull(median);
  out.met = AllOf(answered, reports);
  out.summary = ShareText(answered, reports);
  if (answered != 0) out.summary += "; median " + DaysText(median);
}

// 10. values: share of placed-child enrolments active on R with a school plan.
void PlacedSchoolPlan(const Context& c, IndicatorResult& out) {
  int64_t placed = 0, planned = 0;
  for (const Record* record : c.Of(RecordType::kEnrolment)) {
    auto enrolment = record->reader().getBody().getEnrolment();
    if (enrolment.getProgramme() != schema::Programme::PLACED) continue;
    if (!ActiveOn(ToDate(enrolment.getStartDate()), ToDate(enrolment.getEndDate()), c.ref)) continue;
    ++placed;
    planned += enrolment.getHasSchoolPlan();
  }
  out.values = ShareJson(planned, placed);
  out.met = AllOf(planned, placed);
  out.summary = ShareText(planned, placed);
}

// Each child's follow-up dates on or before R, in order.
std::map<ChildRef, std::vector<Date>> FollowupDates(const Context& c) {
  std::map<ChildRef, std::vector<Date>> dates;
  for (const Record* record : c.Of(RecordType::kFollowup)) {
    auto followup = record->reader().getBody().getFollowup();
    Date day = ToDate(followup.getDate());
    if (c.KnownBy(day)) dates[ToId(followup.getChildRef())].push_back(day);
  }
  for (auto& [child, days] : dates) std::sort(days.begin(), days.end());
  return dates;
}

// 11. values: share of children timely; "without_followup": children with no
// follow-up in T; "max_gap_days": 56.
void SkolfamTimeliness(const Context& c, IndicatorResult& out) {
  std::map<ChildRef, std::vector<Date>> starts;  // of every SkolFam enrolment begun by R
  std::set<ChildRef> enrolled;                   // those with one overlapping T
  for (const Record* record : c.Of(RecordType::kEnrolment)) {
    auto enrolment = record->reader().getBody().getEnrolment();
    if (enrolment.getProgramme() != schema::Programme::SKOLFAM) continue;
    Date start = ToDate(enrolment.getStartDate()), end = ToDate(enrolment.getEndDate());
    if (!c.KnownBy(start)) continue;
    ChildRef child = ToId(enrolment.getChildRef());
    starts[child].push_back(start);
    if (c.OverlapsPeriod(start, end)) enrolled.insert(child);
  }
  std::map<ChildRef, std::vector<Date>> followups = FollowupDates(c);
  int64_t timely = 0, without = 0;
  for (const ChildRef& child : enrolled) {
    const std::vector<Date>& days = followups[child];
    bool any = false, late = false;
    for (size_t i = 0; i < days.size(); ++i) {
      if (!c.InPeriod(days[i])) continue;
      any = true;
      // The clock runs from the previous follow-up, or from the start of an enrolment
      // begun since (a new enrolment starts the clock again).
      Date anchor = i > 0 ? days[i - 1] : Date();
      for (Date start : starts[child]) {
        if (start <= days[i]) anchor = std::max(anchor, start);
      }
      if (!anchor.empty() && DaysBetween(anchor, days[i]) > kSkolfamMaxGapDays) late = true;
    }
    without += !any;
    timely += any && !late;
  }
  auto children = static_cast<int64_t>(enrolled.size());
  out.values = ShareJson(timely, children);
  out.values["without_followup"] = without;
  out.values["max_gap_days"] = kSkolfamMaxGapDays;
  out.met = AllOf(timely, children);
  out.summary = ShareText(timely, children);
}

// 12. values: "enrolled" (children with a PPSS enrolment overlapping T);
// "focus_schools" (active schools on R marked ppssFocus); "with_both_terms" (enrolled
// children with a follow-up in the previous term and in this one); "mean_attendance_change"
// (percentage points, last follow-up of this term minus last of the previous; null if
// none); "passed_rose": share of those whose subjectsPassedPct rose;
// "eligible_year9": share of enrolled children whose last year-9 follow-up of the term
// says eligibleUpperSecondary.
void PpssOutcomes(const Context& c, IndicatorResult& out) {
  std::set<ChildRef> enrolled;
  for (const Record* record : c.Of(RecordType::kEnrolment)) {
    auto enrolment = record->reader().getBody().getEnrolment();
    if (enrolment.getProgramme() != schema::Programme::PPSS) continue;
    if (c.OverlapsPeriod(ToDate(enrolment.getStartDate()), ToDate(enrolment.getEndDate()))) {
      enrolled.insert(ToId(enrolment.getChildRef()));
    }
  }
  int64_t focus = 0;
  for (const auto& [id, school] : c.schools) focus += school.ppss_focus && c.SchoolActive(school);

  // A follow-up belongs to the term its `term` field names, or to its date's term.
  using FollowUpReader = schema::FollowUp::Reader;
  struct Latest {
    std::optional<FollowUpReader> previous, current, year9;
    Date previous_day, current_day, year9_day;
  };
  auto keep_later = [](std::optional<FollowUpReader>& slot, Date& slot_day, FollowUpReader f, Date day) {
    if (!slot || day >= slot_day) {
      slot = f;
      slot_day = day;
    }
  };
  std::map<ChildRef, Latest> latest;
  Term previous = c.term.Previous();
  for (const Record* record : c.Of(RecordType::kFollowup)) {
    auto followup = record->reader().getBody().getFollowup();
    ChildRef child = ToId(followup.getChildRef());
    Date day = ToDate(followup.getDate());
    if (!enrolled.count(child) || !c.KnownBy(day)) continue;
    Term term = Term::Of(day);
    if (followup.hasTerm() && followup.getTerm().size() > 0) {
      auto named = Term::Parse(followup.getTerm().cStr());
      if (named.ok()) term = *named;
    }
    Latest& l = latest[child];
    if (term == previous) keep_later(l.previous, l.previous_day, followup, day);
    if (term == c.term) {
      keep_later(l.current, l.current_day, followup, day);
      if (followup.getSchoolYear() == 9) keep_later(l.year9, l.year9_day, followup, day);
    }
  }
  int64_t both = 0, rose = 0, year9 = 0, eligible = 0;
  double change_sum = 0.0;
  for (const auto& [child, l] : latest) {
    if (l.year9) {
      ++year9;
      eligible += l.year9->getEligibleUpperSecondary();
    }
    if (!l.previous || !l.current) continue;
    ++both;
    change_sum += static_cast<double>(l.current->getAttendancePct()) -
                  static_cast<double>(l.previous->getAttendancePct());
    rose += l.current->getSubjectsPassedPct() > l.previous->getSubjectsPassedPct();
  }
  std::optional<double> mean_change;
  if (both != 0) mean_change = change_sum / static_cast<double>(both);
  auto children = static_cast<int64_t>(enrolled.size());
  out.values = {{"enrolled", children},
                {"focus_schools", focus},
                {"with_both_terms", both},
                {"mean_attendance_change", OrNull(mean_change)},
                {"passed_rose", ShareJson(rose, both)},
                {"eligible_year9", ShareJson(eligible, year9)}};
  out.met = std::nullopt;
  out.summary = std::to_string(children) + " enrolled, " + std::to_string(focus) +
                (focus == 1 ? " focus school" : " focus schools");
  if (mean_change) {
    out.summary += "; attendance " + std::string(*mean_change > 0 ? "+" : "") + NumberText(*mean_change) +
                   " pp; passed rose " + ShareText(rose, both);
  }
}

// 13. values: share of flags where social services was contacted by R.
void AbsenceEscalation(const Context& c, IndicatorResult& out) {
  int64_t flags = 0, contacted = 0;
  for (const Record* record : c.Of(RecordType::kAbsence)) {
    auto absence = record->reader().getBody().getAbsence();
    if (!c.InPeriod(ToDate(absence.getFlaggedDate()))) continue;
    ++flags;
    contacted += c.KnownBy(ToDate(absence.getContactedDate()));
  }
  out.values = ShareJson(contacted, flags);
  out.met = std::nullopt;
  out.summary = ShareText(contacted, flags);
}

using ComputeFn = void (*)(const Context&, IndicatorResult&);

bool HasRecords(const FollowupInput& input) {
  return std::any_of(input.records.begin(), input.records.end(), [](const auto& list) { return !list.empty(); });
}

Context MakeContext(std::vector<const FollowupInput*> inputs, bool city, Term term, Date start, Date ref) {
  Context context{std::move(inputs), city, term, start, ref, {}, {}};
  for (const FollowupInput* input : context.inputs) {
    for (RecordType type : AllRecordTypes()) {
      auto& list = context.records[static_cast<int>(type)];
      for (const Record& record : input->Of(type)) list.push_back(&record);
    }
  }
  for (const Record* record : context.Of(RecordType::kSchool)) {
    auto school = record->reader().getBody().getSchool();
    context.schools[record->id()] =
        SchoolInfo{school.getPrincipal(), ToDate(school.getClosedDate()), school.getPpssFocus()};
  }
  return context;
}

// The city's figure of an indicator about a district's own routine: of the districts
// with any record, how many meet it. values: "districts_met", "districts".
void DistrictsMeeting(const Context& c, IndicatorResult& out, ComputeFn compute) {
  int64_t districts = 0, met = 0;
  for (const FollowupInput* input : c.inputs) {
    if (!HasRecords(*input)) continue;
    IndicatorResult one;
    compute(MakeContext({input}, false, c.term, c.start, c.ref), one);
    ++districts;
    met += one.met == std::optional<bool>(true);
  }
  out.values = {{"districts_met", met}, {"districts", districts}};
  out.met = districts == 0 ? std::nullopt : std::optional<bool>(met == districts);
  out.summary =
      std::to_string(met) + " of " + std::to_string(districts) + (districts == 1 ? " district" : " districts");
}

struct IndicatorSpec {
  IndicatorDefinition definition;
  ComputeFn compute;
  ComputeFn city = nullptr;  // the citywide figure, when it is not `compute` over the pooled records
};

constexpr char kPooled[] = "The same over the pooled records of every district.";

// The one definition of each indicator. R is the reference date, T the period from the
// term's start to R.
const std::vector<IndicatorSpec>& Specs() {
  static const std::vector<IndicatorSpec> kIndicators = {
      {{1, "contact_coverage", "Kontaktpersonstäckning", "Contact coverage",
        "Share of schools active on R (no closing date, or one after R) that have a contact assignment "
        "running on R (from on or before R, to empty or on or after R), overall and split into municipal "
        "and independent schools.",
        "100 %", kPooled, "", HeadlineKind::kShare,
        {.counts = {},
         .derived = {},
         .sums = {{"/numerator", {"/municipal/numerator", "/independent/numerator"}},
                  {"/denominator", {"/municipal/denominator", "/independent/denominator"}}}}},
       ContactCoverage},
      {{2, "contact_changes_informed", "Byte av kontaktperson meddelat", "Contact changes communicated",
        "Of the contact assignments starting in T that change a school's contact person (the school's "
        "assignment just before was another person's), the share where the school was informed by R "
        "and within 14 days of the start; with the median days to informing of those informed by R.",
        "100 % within 14 days", kPooled, "", HeadlineKind::kShare,
        {.counts = {"/informed", "/pending"}, .derived = {{"/median_days", {"/informed"}}}, .sums = {}}},
       ContactChanges},
      {{3, "schools_per_contact", "Skolor per kontaktperson", "Schools per contact person",
        "Of the contact assignments running on R at schools active on R, the number of distinct schools "
        "per social worker: mean and max (about 2 is the norm seen; no target).",
        "",
        "The same over the pooled records, a social worker told apart by district (the same staff "
        "reference in two districts is two people).",
        "/mean", HeadlineKind::kNumber,
        {.counts = {"/workers", "/school_links"},
         .derived = {{"/mean", {"/workers", "/school_links"}}, {"/max", {"/workers", "/school_links"}}},
         .sums = {}}},
       SchoolsPerContact},
      {{4, "agreement_currency", "Överenskommelsens aktualitet", "Agreement currency",
        "Days from the last revision (the latest of its adoption date and revision dates on or before R) of "
        "the highest-version local agreement adopted by R, to R; not met when over 365 days or when there "
        "is no agreement.",
        "≤ 365 days",
        "Of the districts with any record, the number whose own agreement is current (values "
        "\"districts_met\", \"districts\"); met when every one's is.",
        "/days_since_revision", HeadlineKind::kDays, {.counts = {}, .derived = {}, .sums = {}}},
       AgreementCurrency,
       [](const Context& c, IndicatorResult& out) { DistrictsMeeting(c, out, AgreementCurrency); }},
      {{5, "material_reach", "Stödmaterialets spridning", "Support material reach",
        "Of the units with any support-material dissemination dated on or before R, the share reached in "
        "the 365 days up to R (a dissemination after R − 365 days and on or before R).",
        "100 %", "The same over the pooled records, a unit told apart by district.", "", HeadlineKind::kShare,
        {.counts = {}, .derived = {}, .sums = {}}},
       MaterialReach},
      {{6, "forum_cadence", "Mötesfrekvens i samverkansforum", "Forum cadence",
        "Forum meetings held (not cancelled) per kind against the norm: steering group in T at least 1, "
        "managers' forum in the 365 days up to R at least 1, local forum in T at least 2 (norm 2–3), "
        "transition meetings in T counted without a norm; met when every norm is met.",
        "every norm met",
        "Of the districts with any record, the number that meet every norm in their own forums (values "
        "\"districts_met\", \"districts\"); met when every one does.",
        "", HeadlineKind::kCadence, {.counts = {}, .derived = {}, .sums = {}}},
       ForumCadence,
       [](const Context& c, IndicatorResult& out) { DistrictsMeeting(c, out, ForumCadence); }},
      {{7, "participation_parity", "Fristående skolors deltagande", "Participation parity",
        "Over forum meetings held (not cancelled) in T, the attendance rate (attended / invited, counting "
        "each school–meeting pair) of independent schools divided by that of municipal schools.",
        "≥ 0.9", kPooled, "/ratio", HeadlineKind::kNumber,
        {.counts = {},
         .derived = {{"/ratio",
                      {"/independent/numerator", "/independent/denominator", "/municipal/numerator",
                       "/municipal/denominator"}}},
         .sums = {}}},
       ParticipationParity},
      {{8, "forum_attendance", "Skolors närvaro i forum", "School attendance at forums",
        "Over forum meetings held (not cancelled) in T, the share of invited school–meeting pairs where the "
        "school attended.",
        "", kPooled, "", HeadlineKind::kShare,
        {.counts = {},
         .derived = {},
         .sums = {{"/numerator",
                   {"participation_parity:/independent/numerator", "participation_parity:/municipal/numerator"}},
                  {"/denominator",
                   {"participation_parity:/independent/denominator",
                    "participation_parity:/municipal/denominator"}}}}},
       ForumAttendance},
      {{9, "concern_feedback", "Återkoppling efter orosanmälan", "Feedback after reports of concern",
        "Of the reports of concern received in T, the share with feedback to the school by R; with the "
        "median days from receipt to feedback.",
        "100 %", kPooled, "", HeadlineKind::kShare,
        {.counts = {}, .derived = {{"/median_days", {"/numerator"}}}, .sums = {}}},
       ConcernFeedback},
      {{10, "placed_school_plan", "Placerade barn med skolplanering", "Placed children with a school plan",
        "Of the placed-child enrolments running on R (start on or before R, end empty or on or after R), "
        "the share with a school plan.",
        "100 %", kPooled, "", HeadlineKind::kShare, {.counts = {}, .derived = {}, .sums = {}}},
       PlacedSchoolPlan},
      {{11, "skolfam_timeliness", "SkolFam: uppföljning i tid", "SkolFam follow-up timeliness",
        "Of the children with a SkolFam enrolment running at some time in T, the share with at least one "
        "follow-up dated in T where each follow-up in T is at most 56 days after the child's previous "
        "follow-up, or after the enrolment's start if that is later.",
        "100 %",
        "The same over the pooled records: a child is counted once, with every follow-up and enrolment "
        "the city holds for them in any district.",
        "", HeadlineKind::kShare, {.counts = {"/without_followup"}, .derived = {}, .sums = {}}},
       SkolfamTimeliness},
      {{12, "ppss_outcomes", "PPSS: resultat", "PPSS outcomes",
        "Children with a PPSS enrolment running at some time in T and focus schools active on R; of those "
        "children with a follow-up in both the previous term and this one (by the follow-up's term, dated "
        "on or before R; the last of each term), the mean change in attendance and the share whose share of "
        "passed subjects rose; the share eligible for upper secondary by each child's last year-9 follow-up "
        "of the term.",
        "",
        "The same over the pooled records: a child is counted once, with every follow-up the city holds "
        "for them in any district.",
        "/passed_rose", HeadlineKind::kShare,
        {.counts = {"/enrolled", "/focus_schools", "/with_both_terms"},
         .derived = {{"/mean_attendance_change", {"/with_both_terms"}},
                     {"/with_both_terms", {"/passed_rose/denominator"}},
                     {"/passed_rose/denominator", {"/with_both_terms"}}},
         .sums = {}}},
       PpssOutcomes},
      {{13, "absence_escalation", "Olovlig frånvaro: kontakt med socialtjänsten", "Absence escalation",
        "Of the unauthorised-absence flags raised in T, the share where social services was contacted by R.",
        "", kPooled, "", HeadlineKind::kShare, {.counts = {}, .derived = {}, .sums = {}}},
       AbsenceEscalation},
  };
  return kIndicators;
}

Result<FollowupReport> Compute(std::vector<const FollowupInput*> inputs, bool city, std::string district, Term term,
                               Date reference_date) {
  Date start = term.Start(), end = term.End();
  Date ref = reference_date.empty() ? end : std::min(end, reference_date);
  if (ref < start) {
    return Status::Invalid("the reference date " + ref.ToString() + " is before term " + term.ToString() +
                           " starts (" + start.ToString() + ")");
  }
  Context context = MakeContext(std::move(inputs), city, term, start, ref);
  FollowupReport report;
  report.district = std::move(district);
  report.term = term;
  report.period_start = start;
  report.reference_date = ref;
  for (const IndicatorSpec& spec : Specs()) {
    IndicatorResult result;
    result.indicator = spec.definition;
    (city && spec.city != nullptr ? spec.city : spec.compute)(context, result);
    report.indicators.push_back(std::move(result));
  }
  return report;
}

}  // namespace

const std::vector<IndicatorDefinition>& FollowupIndicators() {
  static const std::vector<IndicatorDefinition> kDefinitions = [] {
    std::vector<IndicatorDefinition> out;
    for (const IndicatorSpec& spec : Specs()) out.push_back(spec.definition);
    return out;
  }();
  return kDefinitions;
}

Result<FollowupInput> LoadFollowupInput(const Store& store) {
  FollowupInput input;
  input.district = store.district();
  for (RecordType type : AllRecordTypes()) {
    SAMSYNC_ASSIGN_OR_RETURN(input.Of(type), store.ListAll(type));
  }
  return input;
}

Result<FollowupReport> ComputeFollowup(const FollowupInput& input, Term term, Date reference_date) {
  return Compute({&input}, false, input.district, term, reference_date);
}

std::string IndicatorHeadline(const IndicatorResult& result) {
  constexpr char kHidden[] = "<5";
  const json& values = result.values;
  if (result.suppressed) return kHidden;
  if (!values.is_object()) return "no data";
  if (values.contains("districts_met")) {  // the city's 4 and 6
    return values["districts_met"].dump() + "/" + values["districts"].dump();
  }
  json::json_pointer pointer(result.indicator.headline);
  if (result.indicator.headline_kind == HeadlineKind::kCadence) {
    std::string out;
    for (const auto& [key, letter] : {std::pair{"steering_group", "S"}, {"managers", "M"}, {"local_forum", "L"}}) {
      const json& held = values.contains(key) ? values[key].value("held", json()) : json();
      out += (out.empty() ? "" : " ") + std::string(letter) + (held.is_number() ? held.dump() : "?");
    }
    return out;
  }
  if (!values.contains(pointer)) return "no data";
  const json& figure = values[pointer];
  if (IsSuppressed(figure)) return kHidden;
  switch (result.indicator.headline_kind) {
    case HeadlineKind::kShare: {
      if (!figure.is_object()) return "no data";
      const json& share = figure.value("share", json());
      if (IsSuppressed(share)) return kHidden;
      if (!share.is_number()) return "no data";
      const json& numerator = figure.value("numerator", json());
      const json& denominator = figure.value("denominator", json());
      if (numerator.is_number_integer() && denominator.is_number_integer() && denominator.get<int64_t>() > 0) {
        return std::to_string(Percent(numerator.get<int64_t>(), denominator.get<int64_t>())) + " %";
      }
      return std::to_string(std::lround(100.0 * share.get<double>())) + " %";
    }
    case HeadlineKind::kNumber: return figure.is_number() ? NumberText(figure.get<double>()) : "no data";
    case HeadlineKind::kDays:
      if (figure.is_number()) return NumberText(figure.get<double>()) + " d";
      return values.value("has_agreement", true) ? "no data" : "no agreement";
    case HeadlineKind::kCadence: break;
  }
  return "no data";
}

Result<FollowupReport> ComputeCityFollowup(const std::vector<FollowupInput>& districts, Term term,
                                           Date reference_date) {
  std::vector<const FollowupInput*> inputs;
  for (const FollowupInput& input : districts) inputs.push_back(&input);
  return Compute(std::move(inputs), true, "", term, reference_date);
}

}  // namespace samsync
