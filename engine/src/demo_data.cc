// The demo-data generator. It plans the whole district in memory from one seeded
// PRNG (no store access, so the plan depends on nothing but the options and the
// district), then adds the children to the identity table, patches their references
// into the records and writes the records in one batch.
//
// Every random choice uses integer arithmetic on the PRNG's output; the few doubles
// (the scale) are only multiplied once and truncated, so results are the same on
// every platform and standard library.
#include "samsync/demo_data.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "samsync/districts.h"
#include "samsync/record.h"

namespace samsync {
namespace {

// ------------------------------------------------------------------ randomness

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** (Blackman and Vigna), seeded through splitmix64. Its output is defined
// bit for bit, which <random>'s distributions are not.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }

  uint64_t Next() {
    uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n); the modulo bias is negligible for the small n used here.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi]; requires lo <= hi.
  int Between(int lo, int hi) { return lo + static_cast<int>(Below(static_cast<uint64_t>(hi - lo) + 1)); }
  bool Permille(int p) { return static_cast<int>(Below(1000)) < p; }
  // An index drawn in proportion to `weights` (not all zero).
  size_t Weighted(std::initializer_list<int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int r = static_cast<int>(Below(static_cast<uint64_t>(total)));
    size_t index = 0;
    for (int w : weights) {
      if (r < w) return index;
      r -= w;
      ++index;
    }
    return index - 1;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[Below(i)]);
  }
  // `x` rounded down, plus one with the probability of its fraction: counts then
  // grow smoothly with the scale.
  int Scaled(double x) {
    if (!(x > 0)) return 0;
    auto whole = static_cast<int>(x);
    auto fraction = static_cast<uint64_t>((x - whole) * 1e6);
    return whole + (Below(1000000) < fraction ? 1 : 0);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (char c : text) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

// ----------------------------------------------------------------------- dates

Date Ymd(int year, int month, int day) {
  return Date::FromNumber(static_cast<uint32_t>(year * 10000 + month * 100 + day)).value();
}

// Requires from <= to.
Date RandomDate(Rng& rng, Date from, Date to) {
  return from.AddDays(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(DaysBetween(from, to)) + 1)));
}

// A Saturday or Sunday moves back to the Friday before (1970-01-01 was a Thursday).
Date Workday(Date date) {
  int weekday = (date.Days() % 7 + 10) % 7;  // 0 = Monday
  return weekday >= 5 ? date.AddDays(4 - weekday) : date;
}

// The summer and Christmas breaks, when schools file little and meet nobody.
bool InSummer(Date date) { return date.month() == 7 || (date.month() == 8 && date.day() < 15); }
bool InChristmas(Date date) {
  return (date.month() == 12 && date.day() >= 22) || (date.month() == 1 && date.day() <= 6);
}
bool OnBreak(Date date) { return InSummer(date) || InChristmas(date); }

// The weeks of a term in which meetings are held.
std::pair<Date, Date> TeachingWindow(Term term) {
  if (term.autumn) return {Ymd(term.year, 8, 20), Ymd(term.year, 12, 15)};
  return {Ymd(term.year, 1, 15), Ymd(term.year, 6, 10)};
}

// The calendar year in which the school year containing `date` began.
int AcademicYear(Date date) { return date.month() >= 7 ? date.year() : date.year() - 1; }

// Förskoleklass (year 0) starts in the autumn of the year a child turns six.
int SchoolYearAt(Date birth, Date date) { return AcademicYear(date) - 6 - birth.year(); }

int AgeAt(Date birth, Date date) {
  int age = date.year() - birth.year();
  if (date.month() < birth.month() || (date.month() == birth.month() && date.day() < birth.day())) --age;
  return age;
}

schema::AgeBand AgeBandAt(Date birth, Date date) {
  int age = AgeAt(birth, date);
  if (age <= 5) return schema::AgeBand::AGE0TO5;
  if (age <= 9) return schema::AgeBand::AGE6TO9;
  if (age <= 12) return schema::AgeBand::AGE10TO12;
  if (age <= 15) return schema::AgeBand::AGE13TO15;
  return schema::AgeBand::AGE16TO20;
}

// ------------------------------------------------------------------- the city

struct DistrictProfile {
  std::string_view name;
  std::string_view code;     // prefix of social workers' staff references
  int schools;               // at scale 1, give or take two
  int independent_permille;  // share of independent schools
  bool ppss;                 // has PPSS focus schools (the eight districts of the 2015 evaluation)
  int need;                  // ‰ of the city mean: reports, absences, placements
  std::vector<std::string_view> places;  // for school names; none ends in "s"
};

const std::vector<DistrictProfile>& Profiles() {
  // clang-format off
  static const std::vector<DistrictProfile> kProfiles = {
      {"Rinkeby-Kista", "RK", 28, 250, true, 1400, {"Rinkeby", "Kista", "Husby", "Akalla", "Hansta"}},
      {"Spånga-Tensta", "ST", 25, 280, true, 1300,
       {"Spånga", "Tensta", "Hjulsta", "Bromsten", "Flysta", "Solhem", "Lunda"}},
      {"Hässelby-Vällingby", "HV", 31, 250, true, 1050,
       {"Hässelby", "Vällingby", "Råcksta", "Grimsta", "Hässelby strand", "Hässelby gård", "Kälvesta",
        "Vinsta", "Nälsta"}},
      {"Bromma", "BR", 31, 380, false, 750,
       {"Alvik", "Abrahamsberg", "Ålsten", "Äppelviken", "Nockeby", "Olovslund", "Blackeberg",
        "Beckomberga", "Ulvsunda", "Riksby", "Traneberg", "Åkeshov"}},
      {"Kungsholmen", "KH", 24, 480, false, 700,
       {"Kungsholmen", "Fredhäll", "Marieberg", "Stadshagen", "Kristineberg", "Lilla Essingen",
        "Stora Essingen"}},
      {"Norrmalm", "NM", 24, 520, false, 650,
       {"Vasastan", "Norrmalm", "Hagastaden", "Tegnérlunden", "Sibirien", "Rödaberg"}},
      {"Östermalm", "OM", 26, 550, false, 600,
       {"Östermalm", "Gärdet", "Lärkstaden", "Hjorthagen", "Ropsten", "Djurgården", "Villastaden"}},
      {"Södermalm", "SO", 32, 480, false, 850,
       {"Högalid", "Katarina", "Sofia", "Maria", "Hornstull", "Skanstull", "Hammarby sjöstad",
        "Reimersholme", "Eriksdal", "Tanto"}},
      {"Enskede-Årsta-Vantör", "EAV", 33, 300, true, 1150,
       {"Enskede", "Årsta", "Enskededalen", "Högdalen", "Rågsved", "Hagsätra", "Stureby", "Bandhagen",
        "Johanneshov", "Örby", "Svedmyra"}},
      {"Skarpnäck", "SK", 23, 260, true, 1000,
       {"Skarpnäck", "Bagarmossen", "Björkhagen", "Kärrtorp", "Hammarbyhöjden", "Skarpnäcksfältet"}},
      {"Farsta", "FA", 26, 240, true, 1100,
       {"Farsta", "Hökarängen", "Gubbängen", "Sköndal", "Fagersjö", "Larsboda", "Farsta strand",
        "Tallkrogen"}},
      {"Älvsjö", "AL", 22, 300, true, 900,
       {"Älvsjö", "Solberga", "Liseberg", "Långbro", "Herrängen", "Långsjö", "Örby slott"}},
      {"Hägersten-Liljeholmen", "HL", 30, 360, false, 850,
       {"Hägersten", "Liljeholmen", "Aspudden", "Midsommarkransen", "Västertorp", "Fruängen",
        "Mälarhöjden", "Hägerstensåsen", "Västberga", "Axelsberg"}},
      {"Skärholmen", "SH", 22, 220, true, 1400, {"Skärholmen", "Bredäng", "Sätra", "Vårberg", "Vårby"}},
  };
  // clang-format on
  return kProfiles;
}

// What a school teaches. School years: -5..-1 preschool, 0 förskoleklass, 1–9
// grundskola, 10–12 gymnasium.
struct FormSet {
  bool preschool, preschool_class, compulsory, upper_secondary;
  int lowest_year, highest_year;
  int municipal_weight, independent_weight;
};

enum FormIndex : size_t { kF9, kF6, k79, kGymnasium, kPreschoolAndF9, kPreschool, kFormSetCount };

constexpr FormSet kFormSets[kFormSetCount] = {
    {false, true, true, false, 0, 9, 34, 22},     // F–9
    {false, true, true, false, 0, 6, 30, 14},     // F–6
    {false, false, true, false, 7, 9, 14, 10},    // 7–9
    {false, false, false, true, 10, 12, 8, 24},   // gymnasium
    {true, true, true, false, -5, 9, 2, 10},      // förskola och skola
    {true, false, false, false, -5, -1, 12, 20},  // förskola
};

constexpr std::string_view kStems[] = {"Ek",  "Björk", "Lind", "Lönn", "Hassel", "Rönn", "Tall", "Gran",
                                       "Sol", "Sjö",   "Lärk", "Svan", "Klöver", "Hägg", "Sälg", "Vide"};
constexpr std::string_view kSchoolEndings[] = {"backsskolan", "dalsskolan", "gårdsskolan",
                                               "lundsskolan", "ängsskolan", "hagsskolan",
                                               "bergsskolan", "viksskolan", "parkskolan"};
constexpr std::string_view kPlaceNouns[] = {"backen", "gläntan", "dalen",  "gården", "lunden",
                                            "ängen",  "hagen",   "berget", "viken",  "stigen"};
constexpr std::string_view kChains[] = {
    "Engelska skolan", "Montessoriskolan", "Kunskapsskolan", "Vittraskolan", "Waldorfskolan",
    "Freinetskolan",   "Naturskolan",      "Friskolan",      "Musikskolan",  "Språkskolan"};
constexpr std::string_view kGymnasiumChains[] = {
    "Praktiska gymnasiet", "Teknikgymnasiet", "Estetiska gymnasiet", "Handelsgymnasiet",
    "Idrottsgymnasiet",    "Designgymnasiet", "Vårdgymnasiet",       "Naturvetargymnasiet"};

constexpr std::string_view kGirlNames[] = {
    "Alice", "Maja",  "Elsa",   "Ella",  "Wilma",  "Ebba",  "Saga", "Julia", "Alva",   "Olivia",
    "Agnes", "Freja", "Linnea", "Emma",  "Ida",    "Klara", "Moa",  "Nora",  "Selma",  "Amina",
    "Sara",  "Hanna", "Tilde",  "Ellen", "Stella", "Vera",  "Lea",  "Meja",  "Nellie", "Mariam"};
constexpr std::string_view kBoyNames[] = {
    "William", "Lucas",    "Liam",   "Elias",  "Hugo",  "Oliver",  "Alexander", "Oscar", "Adam",  "Noah",
    "Ali",     "Mohammed", "Filip",  "Viktor", "Leo",   "Isak",    "Emil",      "Anton", "Axel",  "Ludvig",
    "Erik",    "Theo",     "Melvin", "Gustav", "Albin", "Vincent", "Charlie",   "Omar",  "Josef", "Sixten"};
constexpr std::string_view kSurnames[] = {
    "Andersson", "Johansson",  "Karlsson",   "Nilsson", "Eriksson", "Larsson",   "Olsson",    "Persson",
    "Svensson",  "Gustafsson", "Pettersson", "Jonsson", "Jansson",  "Hansson",   "Bengtsson", "Lindberg",
    "Lindström", "Lindqvist",  "Axelsson",   "Berg",    "Lundberg", "Jakobsson", "Sandberg",  "Ahmed",
    "Mohamed",   "Ali",        "Hassan",     "Hussein", "Abdi",     "Yilmaz",    "Nguyen",    "Nowak"};

// Social-services units that the support material should reach.
constexpr std::string_view kUnits[] = {
    "Mottagningsgruppen", "Barn och ungdom – utredning", "Barn och ungdom – uppföljning",
    "Familjebehandling",  "Fältassistenterna",           "Förebyggande enheten",
    "Förskoleenheten"};

template <typename T, size_t N>
std::string_view PickFrom(Rng& rng, const T (&items)[N]) {
  return items[rng.Below(N)];
}

// Joins the parts of a Swedish compound, where three equal consonants become two
// ("Tall" + "lunden" is "Tallunden").
std::string Compound(std::string_view stem, std::string_view ending) {
  std::string out(stem);
  size_t n = stem.size();
  if (n >= 2 && !ending.empty() && stem[n - 1] == stem[n - 2] && stem[n - 1] == ending[0]) {
    ending.remove_prefix(1);
  }
  out += ending;
  return out;
}

// "Rinkeby" + "skolan" is "Rinkebyskolan", but "Bagarmossen" takes "Bagarmossens skola".
std::string PlaceCompound(std::string_view place, std::string_view joined, std::string_view genitive) {
  bool one_word = place.find(' ') == std::string_view::npos;
  unsigned char last = static_cast<unsigned char>(place.back());
  bool vowel = std::string_view("aeiouy").find(static_cast<char>(last)) != std::string_view::npos ||
               (place.size() >= 2 && static_cast<unsigned char>(place[place.size() - 2]) == 0xC3 &&
                (last == 0xA5 || last == 0xA4 || last == 0xB6));  // å ä ö
  if (one_word && vowel) return std::string(place) + std::string(joined);
  return std::string(place) + "s " + std::string(genitive);
}

std::string Personnummer(Date birth, int serial) {
  std::string digits = std::to_string(birth.number());
  std::string serial_text = std::to_string(1000 + serial).substr(1);
  std::string luhn = digits.substr(2) + serial_text;  // YYMMDDNNN
  int sum = 0;
  for (size_t i = 0; i < luhn.size(); ++i) {
    int v = (luhn[i] - '0') * (i % 2 == 0 ? 2 : 1);
    sum += v > 9 ? v - 9 : v;
  }
  return digits + "-" + serial_text + std::to_string((10 - sum % 10) % 10);
}

// ------------------------------------------------------------------ the plan

struct SchoolPlan {
  RecordId id;
  std::string name;
  bool independent = false;
  size_t forms = kF9;
  bool focus = false;
  Date closed;                     // empty while active
  int propensity = 1000;           // ‰ multiplier on forum attendance
  int need = 1000;                 // ‰ multiplier on reports and absences
  int area = 0;                    // the local forum it belongs to
  std::vector<uint32_t> reported;  // children reported from here
  std::vector<uint32_t> ppss;      // children in PPSS here

  const FormSet& form_set() const { return kFormSets[forms]; }
  bool ActiveOn(Date date) const { return closed.empty() || date < closed; }
};

struct ChildPlan {
  Date birth;
  std::string personnummer;
  std::string name;
  bool core_subjects = false;  // passes Swedish, English and maths: year-9 eligibility
};

struct Worker {
  std::string ref;
  std::vector<uint32_t> schools;
  Date hired;
  size_t active_pos = 0;  // index in the active list
};

struct Assignment {
  uint32_t school = 0;
  uint32_t worker = 0;
  Date from, to, informed;
  bool change = false;   // follows an earlier contact (not the first one we know of)
  bool dropped = false;  // ended before it began
};

class Generator {
 public:
  Generator(const DistrictProfile& profile, size_t district_index, std::string district,
            const DemoOptions& options)
      : profile_(profile),
        district_index_(static_cast<int>(district_index)),
        district_(std::move(district)),
        scale_(options.scale),
        seed_(options.seed),
        records_per_commit_(options.records_per_commit),
        today_(options.today),
        rng_(options.seed ^ (Fnv1a(district_) * 0x9E3779B97F4A7C15ull)),
        ids_(options.seed ^ Fnv1a(district_) ^ 0xD1B54A32D192ED03ull) {
    Term term = Term::Of(today_);
    for (int i = 0; i < 3; ++i) term = term.Previous();
    for (; term <= Term::Of(today_); term = term.Next()) terms_.push_back(term);
    period_start_ = terms_.front().Start();
    id_base_ms_ = static_cast<uint64_t>(today_.Days()) * 86400000u + 6 * 3600000u;
  }

  Status Plan() {
    // District-wide habits, drawn first so that they do not depend on the scale.
    turnover_permille_ = rng_.Between(300, 500);  // a year: high, as the audits found
    informed_in_time_permille_ = rng_.Between(450, 750);
    feedback_permille_ = rng_.Between(600, 850);
    independent_attendance_ = rng_.Between(450, 850);
    absence_contact_permille_ = rng_.Between(450, 750);
    school_plan_permille_ = rng_.Between(700, 920);
    skolfam_on_time_permille_ = rng_.Between(800, 950);

    PlanSchools();
    PlanAgreement();
    PlanContacts();
    PlanMaterials();
    PlanForums();
    PlanConcerns();
    PlanEnrolments();
    PlanAbsences();
    return failure_;
  }

  Result<DemoSummary> Write(Store& store) {
    std::vector<std::pair<std::string, std::string>> persons;
    persons.reserve(children_.size());
    for (const ChildPlan& child : children_) persons.emplace_back(child.personnummer, child.name);
    SAMSYNC_ASSIGN_OR_RETURN(std::vector<ChildRef> refs, store.AddPersons(persons));
    for (const auto& [record, child] : child_patches_) SetChildRef(records_[record], refs[child]);

    DemoSummary summary;
    uint64_t* counts[kRecordTypeCount] = {&summary.schools,    &summary.contacts,  &summary.agreements,
                                          &summary.materials,  &summary.forums,    &summary.concerns,
                                          &summary.enrolments, &summary.followups, &summary.absences};
    size_t per_commit = records_per_commit_ == 0 ? records_.size() : static_cast<size_t>(records_per_commit_);
    for (size_t first = 0; first < records_.size(); first += per_commit) {
      WriteBatch batch;
      batch.set_note("demo-data seed " + std::to_string(seed_));
      for (size_t i = first; i < std::min(records_.size(), first + per_commit); ++i) {
        RecordType type = records_[i].type();
        ++*counts[static_cast<int>(type)];
        batch.Put(std::move(records_[i]), "demo " + std::string(RecordTypeName(type)) + " " + std::to_string(i + 1));
      }
      auto applied = store.Apply(batch);
      if (!applied.ok()) return applied.status();
    }
    records_.clear();
    summary.children = children_.size();
    return summary;
  }

 private:
  // ---------------------------------------------------------------- records

  // A new record with the next id: today's first milliseconds plus a counter, then
  // 80 bits from the id stream. Ids so increase in batch order and repeat per seed.
  Record& Add(RecordType type) {
    RecordId id;
    uint64_t ms = id_base_ms_ + next_id_++;
    for (int i = 0; i < 6; ++i) id.bytes[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
    uint64_t a = ids_.Next(), b = ids_.Next();
    for (int i = 0; i < 8; ++i) id.bytes[6 + i] = static_cast<uint8_t>(a >> (8 * (7 - i)));
    id.bytes[14] = static_cast<uint8_t>(b >> 56);
    id.bytes[15] = static_cast<uint8_t>(b >> 48);
    records_.emplace_back(type);
    Record& record = records_.back();
    record.set_id(id);
    record.set_district(district_);
    return record;
  }

  // The last record added is about `child`; its reference is set once the child is added.
  void AboutChild(uint32_t child) { child_patches_.emplace_back(records_.size() - 1, child); }

  static void SetChildRef(Record& record, const ChildRef& ref) {
    capnp::Data::Reader data(ref.bytes.data(), ref.bytes.size());
    auto body = record.builder().getBody();
    switch (record.type()) {
      case RecordType::kConcern:
        body.getConcern().setChildRef(data);
        break;
      case RecordType::kEnrolment:
        body.getEnrolment().setChildRef(data);
        break;
      case RecordType::kFollowup:
        body.getFollowup().setChildRef(data);
        break;
      case RecordType::kAbsence:
        body.getAbsence().setChildRef(data);
        break;
      default:
        break;
    }
  }

  static capnp::Data::Reader IdData(const RecordId& id) { return {id.bytes.data(), id.bytes.size()}; }

  // --------------------------------------------------------------- children

  // A new child in `school_year` at `date`, with a personnummer no other child of this
  // run has. Serials are split between districts (70 a district), so two districts
  // never make the same child.
  uint32_t NewChild(int school_year, Date date) {
    int birth_year = AcademicYear(date) - 6 - school_year;
    ChildPlan child;
    bool girl = false;
    for (int attempt = 0;; ++attempt) {
      if (attempt == 64) {
        failure_ = Status::Invalid("demo data: ran out of made-up personnummer; use a smaller scale");
        break;
      }
      Date first = Ymd(birth_year, 1, 1);
      child.birth = first.AddDays(static_cast<int32_t>(
          rng_.Below(static_cast<uint64_t>(DaysBetween(first, Ymd(birth_year, 12, 31)) + 1))));
      girl = rng_.Permille(500);
      // An odd serial is a boy's, an even one a girl's.
      int serial = district_index_ * 70 + 1 + 2 * rng_.Between(0, 34) + (girl ? 1 : 0);
      child.personnummer = Personnummer(child.birth, serial);
      if (used_personnummer_.insert(child.personnummer).second) break;
    }
    child.name = std::string(girl ? PickFrom(rng_, kGirlNames) : PickFrom(rng_, kBoyNames));
    child.name += " ";
    child.name += PickFrom(rng_, kSurnames);
    child.core_subjects = rng_.Permille(550);
    children_.push_back(std::move(child));
    return static_cast<uint32_t>(children_.size() - 1);
  }

  uint32_t NewChildAt(const SchoolPlan& school, Date date, int lowest = -5, int highest = 12) {
    const FormSet& forms = school.form_set();
    int lo = std::max(forms.lowest_year, lowest), hi = std::min(forms.highest_year, highest);
    if (lo > hi) lo = hi = forms.highest_year;
    return NewChild(rng_.Between(lo, hi), date);
  }

  // A school day in [from, to], mostly outside the summer break.
  Date SchoolDay(Date from, Date to) {
    Date date = RandomDate(rng_, from, to);
    for (int retry = 0; retry < 3 && OnBreak(date); ++retry) date = RandomDate(rng_, from, to);
    return Workday(date);
  }

  // `count` dates spread over [from, to], one in each equal slice.
  std::vector<Date> Spread(int count, Date from, Date to) {
    std::vector<Date> dates;
    int32_t span = DaysBetween(from, to) + 1;
    for (int i = 0; i < count; ++i) {
      int32_t slice = span / count;
      dates.push_back(
          Workday(from.AddDays(i * slice + static_cast<int32_t>(rng_.Below(static_cast<uint64_t>(slice))))));
    }
    return dates;
  }

  // ----------------------------------------------------------------- schools

  std::string UniqueName(std::string name) {
    if (used_names_.insert(name).second) return name;
    for (int n = 2;; ++n) {
      std::string numbered = name + " " + std::to_string(n);
      if (used_names_.insert(numbered).second) return numbered;
    }
  }

  std::string SchoolName(const SchoolPlan& school) {
    std::string name;
    for (int attempt = 0; attempt < 20; ++attempt) {
      // One draw per statement: the order of evaluation of arguments is unspecified.
      std::string_view place = rng_.Pick(profile_.places);
      std::string_view stem = PickFrom(rng_, kStems);
      std::string generic = Compound(stem, PickFrom(rng_, kPlaceNouns));
      bool by_place = rng_.Permille(500);
      if (school.forms == kPreschool) {
        name =
            !school.independent && by_place ? "Förskoleområde " + std::string(place) : "Förskolan " + generic;
      } else if (school.forms == kGymnasium) {
        name = school.independent ? std::string(PickFrom(rng_, kGymnasiumChains)) + " " + std::string(place)
                                  : PlaceCompound(place, "gymnasiet", "gymnasium");
      } else if (school.independent) {
        name = by_place || rng_.Permille(300)
                   ? std::string(PickFrom(rng_, kChains)) + " " + std::string(place)
                   : generic + "s friskola";
      } else {
        name = by_place ? PlaceCompound(place, "skolan", "skola")
                        : Compound(stem, PickFrom(rng_, kSchoolEndings));
      }
      if (!used_names_.count(name)) break;
    }
    return UniqueName(std::move(name));
  }

  void PlanSchools() {
    int count = std::max(4, rng_.Scaled((profile_.schools + rng_.Between(-2, 2)) * scale_));
    for (int i = 0; i < count; ++i) {
      SchoolPlan school;
      // The first two make every district have a municipal F–9 and an independent school.
      school.independent = i == 1 || (i > 1 && rng_.Permille(profile_.independent_permille));
      if (i > 0) {
        size_t pick = school.independent
                          ? rng_.Weighted({kFormSets[0].independent_weight, kFormSets[1].independent_weight,
                                           kFormSets[2].independent_weight, kFormSets[3].independent_weight,
                                           kFormSets[4].independent_weight, kFormSets[5].independent_weight})
                          : rng_.Weighted({kFormSets[0].municipal_weight, kFormSets[1].municipal_weight,
                                           kFormSets[2].municipal_weight, kFormSets[3].municipal_weight,
                                           kFormSets[4].municipal_weight, kFormSets[5].municipal_weight});
        school.forms = pick;
      }
      school.propensity = rng_.Between(700, 1150);
      school.need = rng_.Between(600, 1500);
      school.name = SchoolName(school);
      schools_.push_back(std::move(school));
    }

    // PPSS focus schools are municipal schools with years 7–9.
    std::vector<uint32_t> candidates;
    for (uint32_t i = 0; i < schools_.size(); ++i) {
      if (!schools_[i].independent && (schools_[i].forms == kF9 || schools_[i].forms == k79))
        candidates.push_back(i);
    }
    rng_.Shuffle(candidates);
    int focus = profile_.ppss ? std::max(1, rng_.Scaled(2.0 * scale_)) : 0;
    for (size_t k = 0; k < candidates.size() && k < static_cast<size_t>(focus); ++k) {
      schools_[candidates[k]].focus = true;
    }

    // One or two close at the end of a term.
    std::vector<Date> term_ends;
    for (Term term : terms_) {
      if (term.End() < today_.AddDays(-14)) term_ends.push_back(term.End());
    }
    candidates.clear();
    for (uint32_t i = 2; i < schools_.size(); ++i) {
      if (!schools_[i].focus) candidates.push_back(i);
    }
    rng_.Shuffle(candidates);
    int closures = std::max(1, rng_.Scaled(1.5 * scale_));
    for (size_t k = 0; k < candidates.size() && k < static_cast<size_t>(closures) && !term_ends.empty();
         ++k) {
      schools_[candidates[k]].closed = rng_.Pick(term_ends);
    }

    // Each local forum gathers the schools of one area, about ten.
    std::vector<uint32_t> order(schools_.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    rng_.Shuffle(order);
    for (size_t k = 0; k < order.size(); ++k) schools_[order[k]].area = static_cast<int>(k / 10);
    areas_ = static_cast<int>((order.size() + 9) / 10);

    for (SchoolPlan& school : schools_) {
      Record& record = Add(RecordType::kSchool);
      school.id = record.id();
      auto body = record.builder().getBody().getSchool();
      body.setName(school.name.c_str());
      body.setPrincipal(school.independent ? schema::Principal::INDEPENDENT : schema::Principal::MUNICIPAL);
      const FormSet& f = school.form_set();
      std::vector<schema::SchoolForm> forms;
      if (f.preschool) forms.push_back(schema::SchoolForm::PRESCHOOL);
      if (f.preschool_class) forms.push_back(schema::SchoolForm::PRESCHOOL_CLASS);
      if (f.compulsory) forms.push_back(schema::SchoolForm::COMPULSORY);
      if (f.upper_secondary) forms.push_back(schema::SchoolForm::UPPER_SECONDARY);
      auto list = body.initForms(static_cast<unsigned>(forms.size()));
      for (unsigned i = 0; i < forms.size(); ++i) list.set(i, forms[i]);
      body.setPpssFocus(school.focus);
      body.setClosedDate(school.closed.number());
    }
  }

  // --------------------------------------------------------------- agreement

  void PlanAgreement() {
    struct Version {
      Date adopted;
      std::vector<std::string> parties;
      std::vector<Date> revisions;
    };
    std::vector<std::string> parties = {district_ + " stadsdelsnämnd", "Utbildningsnämnden"};
    std::vector<Version> versions = {{Workday(today_.AddDays(-rng_.Between(1600, 2100))), parties, {}}};
    Date second = versions[0].adopted.AddDays(rng_.Between(700, 1100));
    if (second <= today_.AddDays(-60)) {
      if (rng_.Permille(600)) parties.push_back("Fristående skolor i stadsdelsområdet");
      versions.push_back({Workday(second), parties, {}});
      Date third = second.AddDays(rng_.Between(500, 900));
      if (rng_.Permille(400) && third <= today_.AddDays(-30)) {
        if (rng_.Permille(500)) parties.push_back("Lokalpolisområde " + district_);
        versions.push_back({Workday(third), parties, {}});
      }
    }
    // Revised about yearly, except that some districts let the latest lapse.
    bool lapsed = rng_.Permille(350);
    for (size_t v = 0; v < versions.size(); ++v) {
      bool latest = v + 1 == versions.size();
      Date until = latest ? today_ : versions[v + 1].adopted.AddDays(-1);
      if (latest && lapsed) until = today_.AddDays(-rng_.Between(380, 540));
      for (Date r = versions[v].adopted.AddDays(rng_.Between(300, 420)); r <= until;
           r = r.AddDays(rng_.Between(300, 450))) {
        versions[v].revisions.push_back(Workday(r));
      }
    }
    for (size_t v = 0; v < versions.size(); ++v) {
      auto body = Add(RecordType::kAgreement).builder().getBody().getAgreement();
      body.setVersion(static_cast<uint32_t>(v + 1));
      auto list = body.initParties(static_cast<unsigned>(versions[v].parties.size()));
      for (unsigned i = 0; i < versions[v].parties.size(); ++i) list.set(i, versions[v].parties[i].c_str());
      body.setAdoptedDate(versions[v].adopted.number());
      auto revisions = body.initRevisionDates(static_cast<unsigned>(versions[v].revisions.size()));
      for (unsigned i = 0; i < versions[v].revisions.size(); ++i)
        revisions.set(i, versions[v].revisions[i].number());
    }
  }

  // ---------------------------------------------------------------- contacts

  uint32_t Hire(Date from) {
    Worker worker;
    std::string number = std::to_string(next_staff_++);
    worker.ref = std::string(profile_.code) + "-SS" +
                 std::string(number.size() < 3 ? 3 - number.size() : 0, '0') + number;
    worker.hired = from;
    worker.active_pos = active_.size();
    workers_.push_back(std::move(worker));
    auto index = static_cast<uint32_t>(workers_.size() - 1);
    active_.push_back(index);
    if (from >= period_start_) hires_.push_back(from);
    return index;
  }

  void Retire(uint32_t worker) {
    size_t pos = workers_[worker].active_pos;
    active_[pos] = active_.back();
    workers_[active_[pos]].active_pos = pos;
    active_.pop_back();
  }

  // The least loaded of three active workers picked at random: who has room.
  uint32_t Available() {
    uint32_t best = rng_.Pick(active_);
    for (int i = 0; i < 2; ++i) {
      uint32_t other = rng_.Pick(active_);
      if (workers_[other].schools.size() < workers_[best].schools.size()) best = other;
    }
    return best;
  }

  Date Informed(Date from, bool change) {
    int in_time = change ? informed_in_time_permille_ : 850;
    size_t kind = rng_.Weighted({in_time, (1000 - in_time) * 6 / 10, (1000 - in_time) * 4 / 10});
    Date informed;
    if (kind == 0) informed = from.AddDays(rng_.Between(0, 14));
    if (kind == 1) informed = from.AddDays(rng_.Between(15, 120));
    return informed > today_ ? Date() : informed;
  }

  void Assign(uint32_t school, uint32_t worker, Date from, bool change) {
    Assignment a;
    a.school = school;
    a.worker = worker;
    a.from = from;
    a.informed = Informed(from, change);
    a.change = change;
    current_[school] = static_cast<int64_t>(assignments_.size());
    assignments_.push_back(a);
    workers_[worker].schools.push_back(school);
  }

  void EndAssignment(uint32_t school, Date to) {
    if (current_[school] < 0) return;
    Assignment& a = assignments_[static_cast<size_t>(current_[school])];
    if (to < a.from) {
      a.dropped = true;  // the worker left before taking over
    } else {
      a.to = to;
    }
    auto& list = workers_[a.worker].schools;
    list.erase(std::find(list.begin(), list.end(), school));
    current_[school] = -1;
  }

  // `worker` leaves on `date`; after a vacancy, a new hire or colleagues take over.
  void Leave(uint32_t worker, Date date) {
    size_t vacancy = rng_.Weighted({65, 22, 13});
    int gap = vacancy == 0 ? 0 : vacancy == 1 ? rng_.Between(1, 30) : rng_.Between(31, 80);
    Date from = date.AddDays(1 + gap);
    std::vector<uint32_t> schools = workers_[worker].schools;
    Retire(worker);
    bool hire = active_.empty() || rng_.Permille(800);
    uint32_t successor = 0;
    if (hire && from <= today_) successor = Hire(from);
    for (uint32_t school : schools) {
      EndAssignment(school, date);
      if (from > today_) continue;  // still vacant today
      Assign(school, hire ? successor : Available(), from, true);
    }
  }

  void PlanContacts() {
    current_.assign(schools_.size(), -1);
    std::vector<uint32_t> order(schools_.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    rng_.Shuffle(order);
    // Some independent schools get their first named contact only during the period.
    std::vector<std::pair<Date, uint32_t>> late;
    std::vector<uint32_t> covered;
    for (uint32_t school : order) {
      if (schools_[school].independent && rng_.Permille(120)) {
        late.emplace_back(RandomDate(rng_, period_start_.AddDays(20), today_.AddDays(-20)), school);
      } else {
        covered.push_back(school);
      }
    }
    // One social worker per two schools.
    for (size_t i = 0; i < covered.size(); i += 2) {
      Date hired = period_start_.AddDays(-rng_.Between(100, 1000));
      uint32_t worker = Hire(hired);
      for (size_t j = i; j < std::min(i + 2, covered.size()); ++j) {
        Assign(covered[j], worker, hired.AddDays(rng_.Between(0, 150)), false);
      }
    }
    std::sort(late.begin(), late.end());
    std::vector<std::pair<Date, uint32_t>> closing;
    for (uint32_t i = 0; i < schools_.size(); ++i) {
      if (!schools_[i].closed.empty()) closing.emplace_back(schools_[i].closed, i);
    }
    std::sort(closing.begin(), closing.end());

    // Week by week: closures, first assignments, then who leaves.
    auto weekly = static_cast<uint64_t>(turnover_permille_) * 100 / 52;  // per 100 000
    size_t next_late = 0, next_close = 0;
    for (Date week = period_start_; week <= today_; week = week.AddDays(7)) {
      Date week_end = week.AddDays(6);
      for (; next_close < closing.size() && closing[next_close].first <= week_end; ++next_close) {
        EndAssignment(closing[next_close].second, closing[next_close].first);
      }
      for (; next_late < late.size() && late[next_late].first <= week_end; ++next_late) {
        auto [date, school] = late[next_late];
        if (!schools_[school].ActiveOn(date)) continue;
        Assign(school, active_.empty() ? Hire(date) : Available(), date, true);
      }
      std::vector<uint32_t> leaving;
      for (uint32_t worker : active_) {
        if (!workers_[worker].schools.empty() && DaysBetween(workers_[worker].hired, week) > 90 &&
            rng_.Below(100000) < weekly) {
          leaving.push_back(worker);
        }
      }
      for (uint32_t worker : leaving) Leave(worker, std::min(today_, week.AddDays(rng_.Between(0, 6))));
    }

    // Every demo shows the audit's findings: some changes told late, some never.
    std::vector<Assignment*> changes;
    for (Assignment& a : assignments_) {
      if (a.change && !a.dropped) changes.push_back(&a);
    }
    if (changes.size() >= 3) {
      auto late_told = [](const Assignment* a) {
        return !a->informed.empty() && DaysBetween(a->from, a->informed) > 14;
      };
      auto never_told = [](const Assignment* a) { return a->informed.empty(); };
      if (std::none_of(changes.begin(), changes.end(), late_told)) {
        Date informed = changes.front()->from.AddDays(rng_.Between(15, 60));
        if (informed <= today_) changes.front()->informed = informed;
      }
      if (std::none_of(changes.begin(), changes.end(), never_told)) {
        // The latest change not told late, so that a late one stays.
        auto in_time = std::find_if(changes.rbegin(), changes.rend(),
                                    [&](const Assignment* a) { return !late_told(a); });
        (in_time != changes.rend() ? *in_time : changes.back())->informed = Date();
      }
    }

    for (const Assignment& a : assignments_) {
      if (a.dropped) continue;
      auto body = Add(RecordType::kContact).builder().getBody().getContact();
      body.setSchoolId(IdData(schools_[a.school].id));
      body.setSocialWorker(workers_[a.worker].ref.c_str());
      body.setFromDate(a.from.number());
      body.setToDate(a.to.number());
      body.setInformedDate(a.informed.number());
    }
  }

  // --------------------------------------------------------------- materials

  void AddMaterial(const std::string& unit, Date date, schema::MaterialForm form) {
    auto body = Add(RecordType::kMaterial).builder().getBody().getMaterial();
    body.setUnit(unit.c_str());
    body.setDate(date.number());
    body.setForm(form);
  }

  void PlanMaterials() {
    for (Term term : terms_) {
      auto [from, to] = TeachingWindow(term);
      if (from > today_) continue;
      to = std::min(to, today_);
      for (std::string_view unit : kUnits) {
        if (!rng_.Permille(450)) continue;
        Date date = Workday(RandomDate(rng_, from, to));
        AddMaterial(std::string(unit), date,
                    rng_.Permille(900) ? schema::MaterialForm::GROUP_MEETING : schema::MaterialForm::OTHER);
      }
      if (rng_.Permille(300)) {
        AddMaterial(std::string(kUnits[1]), Workday(RandomDate(rng_, from, to)),
                    schema::MaterialForm::NEW_STAFF_INTRODUCTION);
      }
      // Student health teams of the schools.
      for (const SchoolPlan& school : schools_) {
        if (school.forms == kPreschool || !school.ActiveOn(to)) continue;
        if (!rng_.Permille(school.independent ? 80 : 140)) continue;
        Date date = Workday(RandomDate(rng_, from, to));
        AddMaterial("Elevhälsoteamet, " + school.name, date,
                    rng_.Permille(850) ? schema::MaterialForm::GROUP_MEETING : schema::MaterialForm::OTHER);
      }
    }
    // Most new contact persons are introduced to the material when they start.
    for (Date hired : hires_) {
      if (!rng_.Permille(750)) continue;
      Date date = Workday(hired.AddDays(rng_.Between(2, 40)));
      if (date <= today_)
        AddMaterial("Mottagningsgruppen", date, schema::MaterialForm::NEW_STAFF_INTRODUCTION);
    }
  }

  // ------------------------------------------------------------------ forums

  int AttendancePermille(const SchoolPlan& school, int base) const {
    int64_t p = static_cast<int64_t>(base) * (school.independent ? independent_attendance_ : 1000) / 1000 *
                school.propensity / 1000;
    return static_cast<int>(std::clamp<int64_t>(p, 50, 970));
  }

  // `invite` says which schools are asked; closed schools never are.
  template <typename Invite>
  void AddForum(schema::ForumKind kind, Date date, int base, Invite invite) {
    bool cancelled = rng_.Permille(60);
    std::vector<RecordId> invited, attended;
    for (const SchoolPlan& school : schools_) {
      if (!school.ActiveOn(date) || !invite(school)) continue;
      invited.push_back(school.id);
      if (!cancelled && rng_.Permille(AttendancePermille(school, base))) attended.push_back(school.id);
    }
    if (date > today_) return;  // planned, not yet held
    auto body = Add(RecordType::kForum).builder().getBody().getForum();
    body.setKind(kind);
    body.setDate(date.number());
    auto invited_list = body.initInvitedSchoolIds(static_cast<unsigned>(invited.size()));
    for (unsigned i = 0; i < invited.size(); ++i) invited_list.set(i, IdData(invited[i]));
    auto attended_list = body.initAttendedSchoolIds(static_cast<unsigned>(attended.size()));
    for (unsigned i = 0; i < attended.size(); ++i) attended_list.set(i, IdData(attended[i]));
    body.setCancelled(cancelled);
  }

  void PlanForums() {
    // The managers' forum meets once a year, in the autumn or the spring.
    int first_year = terms_.front().year;
    std::vector<bool> managers_in_autumn;
    for (int year = first_year; year <= terms_.back().year; ++year)
      managers_in_autumn.push_back(rng_.Permille(600));

    for (Term term : terms_) {
      auto [from, to] = TeachingWindow(term);
      auto steering = static_cast<int>(rng_.Weighted({8, 72, 20}));
      for (Date date : Spread(steering, from, to)) {
        AddForum(schema::ForumKind::STEERING_GROUP, date, 0, [](const SchoolPlan&) { return false; });
      }
      if (term.autumn == managers_in_autumn[static_cast<size_t>(term.year - first_year)] &&
          rng_.Permille(900)) {
        AddForum(schema::ForumKind::MANAGERS, Spread(1, from, to)[0], 650,
                 [](const SchoolPlan&) { return true; });
      }
      if (term.autumn ? rng_.Permille(200) : rng_.Permille(850)) {
        Date date = term.autumn ? Spread(1, Ymd(term.year, 9, 1), Ymd(term.year, 10, 31))[0]
                                : Spread(1, Ymd(term.year, 3, 1), Ymd(term.year, 5, 31))[0];
        AddForum(schema::ForumKind::TRANSITION, date, 720, [](const SchoolPlan& school) {
          return school.form_set().preschool || school.form_set().preschool_class;
        });
      }
      for (int area = 0; area < areas_; ++area) {
        int meetings = 1 + static_cast<int>(rng_.Weighted({15, 50, 35}));
        for (Date date : Spread(meetings, from, to)) {
          // Independent schools are to be invited; now and then one is forgotten.
          AddForum(schema::ForumKind::LOCAL_FORUM, date, 780, [&](const SchoolPlan& school) {
            return school.area == area && (!school.independent || rng_.Permille(900));
          });
        }
      }
    }
  }

  // ----------------------------------------------------------------- children

  // How many events at `rate_tenths` a year (times the district's and the school's
  // need) fall in [from, to].
  int EventCount(int rate_tenths, const SchoolPlan& school, Date from, Date to) {
    int64_t days = DaysBetween(from, to) + 1;
    int64_t numerator = int64_t{rate_tenths} * profile_.need * school.need * days;
    int64_t denominator = int64_t{10} * 1000 * 1000 * 365;
    return static_cast<int>(numerator / denominator) +
           (rng_.Below(static_cast<uint64_t>(denominator)) < static_cast<uint64_t>(numerator % denominator)
                ? 1
                : 0);
  }

  Date LastDay(const SchoolPlan& school) const {
    return school.closed.empty() ? today_ : std::min(today_, school.closed.AddDays(-1));
  }

  void PlanConcerns() {
    for (SchoolPlan& school : schools_) {
      Date last = LastDay(school);
      if (last < period_start_) continue;
      int rate = school.forms == kPreschool ? 15 : school.forms == kGymnasium ? 50 : 70;
      int count = EventCount(rate, school, period_start_, last);
      for (int i = 0; i < count; ++i) {
        Date received = SchoolDay(period_start_, last);
        uint32_t child = 0;
        if (!school.reported.empty() && rng_.Permille(180)) {
          child = rng_.Pick(school.reported);  // reported again
        } else {
          child = NewChildAt(school, received);
          school.reported.push_back(child);
        }
        Date feedback;
        auto form = schema::FeedbackForm::NONE;
        if (rng_.Permille(feedback_permille_)) {
          form = std::vector<schema::FeedbackForm>{
              schema::FeedbackForm::LETTER, schema::FeedbackForm::PHONE, schema::FeedbackForm::MEETING,
              schema::FeedbackForm::EMAIL}[rng_.Weighted({35, 30, 20, 15})];
          constexpr int kDays[][2] = {{1, 7}, {8, 21}, {22, 60}, {61, 120}};
          size_t speed = rng_.Weighted({40, 35, 20, 5});
          int days = rng_.Between(kDays[speed][0], kDays[speed][1]);
          feedback = std::max(received, Workday(received.AddDays(days)));
          if (feedback > today_) {
            feedback = Date();  // not given yet
            form = schema::FeedbackForm::NONE;
          }
        }
        auto body = Add(RecordType::kConcern).builder().getBody().getConcern();
        AboutChild(child);
        body.setSchoolId(IdData(school.id));
        body.setReceivedDate(received.number());
        body.setFeedbackDate(feedback.number());
        body.setFeedbackForm(form);
      }
    }
  }

  void AddEnrolment(uint32_t child, const SchoolPlan& school, schema::Programme programme, Date start,
                    Date end, bool school_plan) {
    auto body = Add(RecordType::kEnrolment).builder().getBody().getEnrolment();
    AboutChild(child);
    body.setSchoolId(IdData(school.id));
    body.setProgramme(programme);
    body.setStartDate(start.number());
    body.setEndDate(end.number());
    body.setAgeBand(AgeBandAt(children_[child].birth, start));
    body.setHasSchoolPlan(school_plan);
  }

  // Follow-ups about every eight weeks from `start` until `end` (or today); some late.
  void AddFollowUps(uint32_t child, Date start, Date end, bool skolfam) {
    Date until = end.empty() ? today_ : std::min(end, today_);
    int attendance = skolfam ? rng_.Between(820, 980) : rng_.Between(450, 850);  // tenths of a percent
    int passed = skolfam ? rng_.Between(9, 16) : rng_.Between(3, 12);            // of 16 subjects
    for (Date date = start;;) {
      date = date.AddDays(rng_.Permille(skolfam ? skolfam_on_time_permille_ : 700) ? rng_.Between(42, 56)
                                                                                   : rng_.Between(57, 110));
      if (InChristmas(date)) {
        date = Ymd(date.month() == 12 ? date.year() : date.year() - 1, 12, 20);  // held before the break
      } else if (InSummer(date) && !(skolfam && rng_.Permille(500))) {
        date = Ymd(date.year(), 8, 15 + rng_.Between(0, 9));  // SkolFam may meet the family home in summer
      }
      date = Workday(date);
      if (date > until) break;
      attendance =
          std::clamp(attendance + (skolfam ? rng_.Between(-30, 30) : rng_.Between(-60, 90)), 0, 1000);
      int move = rng_.Between(0, 99);
      if (move < 32)
        passed = std::min(16, passed + rng_.Between(1, 2));
      else if (move < 50)
        passed = std::max(0, passed - 1);
      int year = std::clamp(SchoolYearAt(children_[child].birth, date), 0, 12);
      bool eligible = year == 9 && (passed >= 12 || (passed >= 8 && children_[child].core_subjects));

      auto body = Add(RecordType::kFollowup).builder().getBody().getFollowup();
      AboutChild(child);
      body.setDate(date.number());
      body.setTerm(Term::Of(date).ToString().c_str());
      body.setAttendancePct(static_cast<float>(attendance) / 10.0f);
      body.setSubjectsPassedPct(static_cast<float>(passed) * 100.0f / 16.0f);
      body.setSchoolYear(static_cast<uint8_t>(year));
      body.setEligibleUpperSecondary(eligible);
    }
  }

  // A random school that is open on `date` and teaches `year`, if one is found.
  const SchoolPlan* SchoolFor(int year, Date date) {
    for (int attempt = 0; attempt < 30; ++attempt) {
      const SchoolPlan& school = rng_.Pick(schools_);
      const FormSet& f = school.form_set();
      if (school.ActiveOn(date) && f.lowest_year <= year && year <= f.highest_year) return &school;
    }
    return nullptr;
  }

  void PlanEnrolments() {
    std::vector<Term> intake;  // terms whose intake had begun by today
    for (Term term = terms_.front().Previous(); term <= terms_.back(); term = term.Next()) {
      if (TeachingWindow(term).first.AddDays(40) <= today_) intake.push_back(term);
    }
    auto intake_date = [&] {
      Date term_start = TeachingWindow(rng_.Pick(intake)).first;
      return Workday(term_start.AddDays(rng_.Between(0, 40)));
    };

    // PPSS: about ten children a focus school, mostly in years 7–9, until year 9 ends.
    for (SchoolPlan& school : schools_) {
      if (!school.focus) continue;
      int count = rng_.Between(7, 12);
      for (int i = 0; i < count; ++i) {
        Date start = intake_date();
        int year = rng_.Between(std::max(school.form_set().lowest_year, 6), school.form_set().highest_year);
        uint32_t child = NewChild(year, start);
        school.ppss.push_back(child);
        Date end = rng_.Permille(300) ? start.AddDays(rng_.Between(250, 420)) : Date();
        Date leaves = Ymd(AcademicYear(start) + 9 - year + 1, 6, 12);
        if (end.empty() || leaves < end) end = leaves;
        if (end > today_) end = Date();
        AddEnrolment(child, school, schema::Programme::PPSS, start, end, false);
        AddFollowUps(child, start, end, false);
      }
    }

    // SkolFam: children of 6–12 placed in family homes, followed up every eight weeks.
    int skolfam = rng_.Scaled(6.0 * profile_.need / 1000 * scale_);
    for (int i = 0; i < skolfam; ++i) {
      Date start = intake_date();
      int year = rng_.Between(0, 6);
      const SchoolPlan* school = SchoolFor(year, start);
      if (school == nullptr) school = &schools_[0];  // the district's F–9, never closed
      uint32_t child = NewChild(year, start);
      Date end = rng_.Permille(250) ? start.AddDays(rng_.Between(300, 600)) : Date();
      if (end > today_) end = Date();
      Date placed_on = start.AddDays(-rng_.Between(60, 700));
      AddEnrolment(child, *school, schema::Programme::PLACED, placed_on, end, rng_.Permille(950));
      AddEnrolment(child, *school, schema::Programme::SKOLFAM, start, end, false);
      AddFollowUps(child, start, end, true);
    }

    // Other placed children, of every age; most have a school plan.
    int placed = rng_.Scaled(14.0 * profile_.need / 1000 * scale_);
    for (int i = 0; i < placed; ++i) {
      constexpr int kYears[][2] = {{0, 3}, {4, 6}, {7, 9}, {10, 12}};  // ages 6–9, 10–12, 13–15, 16–20
      size_t band = rng_.Weighted({20, 20, 35, 25});
      int year = rng_.Between(kYears[band][0], kYears[band][1]);
      Date start = RandomDate(rng_, period_start_.AddDays(-500), today_.AddDays(-14));
      const SchoolPlan* school = SchoolFor(year, start);
      if (school == nullptr) {
        school = &schools_[0];
        year = std::min(year, 9);
      }
      uint32_t child = NewChild(year, start);
      Date end = rng_.Permille(300) ? start.AddDays(rng_.Between(90, 600)) : Date();
      if (end > today_) end = Date();
      AddEnrolment(child, *school, schema::Programme::PLACED, start, end,
                   rng_.Permille(school_plan_permille_));
    }
  }

  void PlanAbsences() {
    for (SchoolPlan& school : schools_) {
      if (!school.form_set().compulsory) continue;
      Date last = LastDay(school);
      if (last < period_start_) continue;
      int count = EventCount(25, school, period_start_, last);
      for (int i = 0; i < count; ++i) {
        Date flagged = SchoolDay(period_start_, last);
        int who = rng_.Between(0, 99);
        uint32_t child = 0;
        if (who < 35 && !school.reported.empty()) {
          child = rng_.Pick(school.reported);
        } else if (who < 55 && !school.ppss.empty()) {
          child = rng_.Pick(school.ppss);
        } else {
          child = NewChildAt(school, flagged, 1, 9);
        }
        Date contacted;
        if (rng_.Permille(absence_contact_permille_)) {
          contacted = std::max(flagged, Workday(flagged.AddDays(rng_.Between(0, 30))));
          if (contacted > today_) contacted = Date();
        }
        auto body = Add(RecordType::kAbsence).builder().getBody().getAbsence();
        AboutChild(child);
        body.setSchoolId(IdData(school.id));
        body.setFlaggedDate(flagged.number());
        body.setContactedDate(contacted.number());
      }
    }
  }

  const DistrictProfile& profile_;
  int district_index_;
  std::string district_;
  double scale_;
  uint64_t seed_;
  uint64_t records_per_commit_;
  Date today_;
  Rng rng_;                  // every choice of content
  Rng ids_;                  // the random part of record ids
  std::vector<Term> terms_;  // the four terms up to today's
  Date period_start_;
  uint64_t id_base_ms_ = 0;
  uint64_t next_id_ = 0;
  Status failure_;

  int turnover_permille_ = 0;
  int informed_in_time_permille_ = 0;
  int feedback_permille_ = 0;
  int independent_attendance_ = 0;
  int absence_contact_permille_ = 0;
  int school_plan_permille_ = 0;
  int skolfam_on_time_permille_ = 0;

  std::vector<SchoolPlan> schools_;
  std::unordered_set<std::string> used_names_;
  int areas_ = 0;
  std::vector<Worker> workers_;
  std::vector<uint32_t> active_;
  std::vector<Assignment> assignments_;
  std::vector<int64_t> current_;  // each school's open assignment, or -1
  std::vector<Date> hires_;       // start dates of staff hired during the period
  int next_staff_ = 1;
  std::vector<ChildPlan> children_;
  std::unordered_set<std::string> used_personnummer_;

  std::vector<Record> records_;
  std::vector<std::pair<size_t, uint32_t>> child_patches_;  // record index, child index
};

}  // namespace

Result<DemoSummary> GenerateDemoDistrict(Store& store, const DemoOptions& options) {
  if (options.today.empty()) return Status::Invalid("demo data: today's date is required");
  if (!(options.scale >= 0.01 && options.scale <= 250)) {
    return Status::Invalid("demo data: scale must be from 0.01 to 250");
  }
  const std::vector<std::string>& districts = Districts();
  auto index = static_cast<size_t>(std::find(districts.begin(), districts.end(), store.district()) -
                                   districts.begin());
  const DistrictProfile* profile = nullptr;
  for (const DistrictProfile& p : Profiles()) {
    if (p.name == store.district()) profile = &p;
  }
  if (profile == nullptr || index >= districts.size()) {
    return Status::Invalid("demo data: no profile for district '" + store.district() + "'");
  }
  Generator generator(*profile, index, store.district(), options);
  SAMSYNC_RETURN_IF_ERROR(generator.Plan());
  return generator.Write(store);
}

}  // namespace samsync
