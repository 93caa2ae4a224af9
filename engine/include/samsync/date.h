// Calendar dates and school terms as the records hold them.
//
// A Date is stored as the number yyyymmdd (20160315); 0 means "no date". Terms are
// spring (VT, 1 January–30 June) and autumn (HT, 1 July–31 December), written "2016VT".
#ifndef SAMSYNC_DATE_H_
#define SAMSYNC_DATE_H_

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "samsync/status.h"

namespace samsync {

class Clock;

class Date {
 public:
  Date() = default;  // no date
  // `yyyymmdd` must be a real calendar date or 0; use Parse/FromNumber for input.
  static Result<Date> FromNumber(uint32_t yyyymmdd);
  // Accepts ISO 8601 "2016-03-15" only.
  static Result<Date> Parse(std::string_view iso);
  static Date FromDays(int32_t days_since_epoch);
  static Date Today(const Clock& clock);  // in UTC

  bool empty() const { return yyyymmdd_ == 0; }
  uint32_t number() const { return yyyymmdd_; }
  int year() const { return static_cast<int>(yyyymmdd_ / 10000); }
  int month() const { return static_cast<int>(yyyymmdd_ / 100 % 100); }
  int day() const { return static_cast<int>(yyyymmdd_ % 100); }
  int32_t Days() const;  // days since 1970-01-01; requires !empty()
  Date AddDays(int32_t days) const { return FromDays(Days() + days); }
  std::string ToString() const;  // "2016-03-15", or "" when empty

  auto operator<=>(const Date&) const = default;

 private:
  explicit Date(uint32_t yyyymmdd) : yyyymmdd_(yyyymmdd) {}
  uint32_t yyyymmdd_ = 0;
};

// Days from `a` to `b` (negative if b is earlier). Both must be non-empty.
int32_t DaysBetween(Date a, Date b);

struct Term {
  int year = 0;
  bool autumn = false;  // HT when true, VT when false

  // Accepts "2016HT", "2016VT", "HT2016", "VT2016" (case-insensitive).
  static Result<Term> Parse(std::string_view text);
  static Term Of(Date date);
  Date Start() const;
  Date End() const;
  Term Previous() const;
  Term Next() const;
  std::string ToString() const;  // "2016HT"
  auto operator<=>(const Term&) const = default;
};

}  // namespace samsync

#endif  // SAMSYNC_DATE_H_
