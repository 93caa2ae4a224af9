#include "samsync/date.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "samsync/clock.h"

namespace samsync {
namespace {

bool ValidYmd(int y, int m, int d) {
  if (y < 1900 || y > 2999) return false;  // the domain's range; catches typos like 0216
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                  std::chrono::day{static_cast<unsigned>(d)}};
  return ymd.ok();
}

}  // namespace

Result<Date> Date::FromNumber(uint32_t yyyymmdd) {
  if (yyyymmdd == 0) return Date();
  int y = static_cast<int>(yyyymmdd / 10000), m = static_cast<int>(yyyymmdd / 100 % 100),
      d = static_cast<int>(yyyymmdd % 100);
  if (!ValidYmd(y, m, d)) return Status::Invalid("not a valid date: " + std::to_string(yyyymmdd));
  return Date(yyyymmdd);
}

Result<Date> Date::Parse(std::string_view iso) {
  auto bad = [&] {
    return Status::Invalid("'" + std::string(iso) + "' is not a date (expected YYYY-MM-DD)");
  };
  if (iso.size() != 10 || iso[4] != '-' || iso[7] != '-') return bad();
  auto num = [&](size_t pos, size_t len, int& out) {
    for (size_t i = pos; i < pos + len; ++i)
      if (!std::isdigit(static_cast<unsigned char>(iso[i]))) return false;
    std::from_chars(iso.data() + pos, iso.data() + pos + len, out);
    return true;
  };
  int y = 0, m = 0, d = 0;
  if (!num(0, 4, y) || !num(5, 2, m) || !num(8, 2, d) || !ValidYmd(y, m, d)) return bad();
  return Date(static_cast<uint32_t>(y * 10000 + m * 100 + d));
}

Date Date::FromDays(int32_t days_since_epoch) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days_since_epoch}}};
  return Date(static_cast<uint32_t>(static_cast<int>(ymd.year()) * 10000 +
                                    static_cast<int>(static_cast<unsigned>(ymd.month())) * 100 +
                                    static_cast<int>(static_cast<unsigned>(ymd.day()))));
}

Date Date::Today(const Clock& clock) {
  return FromDays(static_cast<int32_t>(clock.NowMs() / 86'400'000));
}

int32_t Date::Days() const {
  std::chrono::year_month_day ymd{std::chrono::year{year()},
                                  std::chrono::month{static_cast<unsigned>(month())},
                                  std::chrono::day{static_cast<unsigned>(day())}};
  return static_cast<int32_t>(std::chrono::sys_days{ymd}.time_since_epoch().count());
}

std::string Date::ToString() const {
  if (empty()) return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year(), month(), day());
  return buf;
}

int32_t DaysBetween(Date a, Date b) { return b.Days() - a.Days(); }

Result<Term> Term::Parse(std::string_view text) {
  auto bad = [&] {
    return Status::Invalid("'" + std::string(text) + "' is not a term (expected e.g. 2016HT or 2016VT)");
  };
  if (text.size() != 6) return bad();
  std::string_view year_part, half;
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    year_part = text.substr(0, 4);
    half = text.substr(4);
  } else {
    half = text.substr(0, 2);
    year_part = text.substr(2);
  }
  int year = 0;
  for (char c : year_part)
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad();
  std::from_chars(year_part.data(), year_part.data() + 4, year);
  std::string h{static_cast<char>(std::toupper(static_cast<unsigned char>(half[0]))),
                static_cast<char>(std::toupper(static_cast<unsigned char>(half[1])))};
  if ((h != "HT" && h != "VT") || year < 1900 || year > 2999) return bad();
  return Term{year, h == "HT"};
}

Term Term::Of(Date date) { return Term{date.year(), date.month() >= 7}; }

Date Term::Start() const {
  return Date::FromNumber(static_cast<uint32_t>(year * 10000 + (autumn ? 701 : 101))).value();
}

Date Term::End() const {
  return Date::FromNumber(static_cast<uint32_t>(year * 10000 + (autumn ? 1231 : 630))).value();
}

Term Term::Previous() const { return autumn ? Term{year, false} : Term{year - 1, true}; }
Term Term::Next() const { return autumn ? Term{year + 1, false} : Term{year, true}; }

std::string Term::ToString() const { return std::to_string(year) + (autumn ? "HT" : "VT"); }

}  // namespace samsync
