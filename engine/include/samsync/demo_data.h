// Demo data: a made-up but realistic district, generated from a seed.
//
// What it makes, for the store's own district, over the four terms up to `today`
// (the current term and the three before it), shaped by the district replies and
// audits the project is based on:
// - schools: ~20–35 at scale 1, more independent ones in the inner city; a mix of
//   forms (preschool, F–6, F–9, 7–9, upper secondary); two PPSS focus schools in each
//   of the eight PPSS districts (16 in the city, as in the 2015 evaluation); one or
//   two closed at the end of a term;
// - contact assignments: one social worker per about two schools, with turnover; the
//   school is told of a change within 14 days, late, or never; some vacancies;
// - collaboration agreement versions with their revisions (sometimes none in the last
//   year), support-material dissemination to social-services units, to new staff and
//   to schools' student health teams;
// - forum meetings of each kind near their norms (steering group about once a term,
//   managers' forum once a year, transition forum in the spring, a local forum per
//   area of about ten schools two to three times a term), with invited and attending
//   schools (independent schools attend less often), some cancelled;
// - reports of concern (most with feedback, some without), children in PPSS, SkolFam
//   and placed in care (most placed children with a school plan), follow-ups about
//   every eight weeks (some late), unauthorised-absence flags (some escalated).
// Names of schools and children are invented; they may match real ones by chance.
// Every personnummer is valid (date and Luhn digit), drawn from a serial range of
// its own per district so that two districts never make the same child.
//
// Determinism: the same seed, scale, today and district give the same records with
// the same ids, and the same persons (personnummer and name), on any platform (the
// generator has its own PRNG and integer arithmetic). Only child references differ
// between stores whose pseudonymisation keys differ. Running it again on the same
// store therefore replaces the records it wrote before instead of duplicating them.
//
// At scale 1 a district gets about 450–1 000 records and 250–550 children (more in
// the districts with more need, such as Rinkeby-Kista). Counts grow linearly with the
// scale: schools, social workers, local forums,
// children and everything about them scale; the district's one agreement, steering
// group, managers' forum and transition forum do not.
#ifndef SAMSYNC_DEMO_DATA_H_
#define SAMSYNC_DEMO_DATA_H_

#include <cstdint>

#include "samsync/date.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync {

struct DemoOptions {
  uint64_t seed = 1;
  // Multiplies the counts: 0.1 is a handful of schools, 10 a very large district.
  // Must be from 0.01 to 250 (at 110 the 14 districts hold about 1,000,000 records).
  double scale = 1.0;
  // Records per signed commit (one Store::Apply each), the last one smaller; 0: all
  // in one commit. The city workload of the benchmark writes small commits, as a
  // district does over the years (1,000,000 records in 100,000 commits at 10).
  uint64_t records_per_commit = 0;
  // The generator's "now": every date it writes is on or before it. Required.
  Date today;
};

// How many records of each type were written, and how many children were added.
struct DemoSummary {
  uint64_t schools = 0;
  uint64_t contacts = 0;
  uint64_t agreements = 0;
  uint64_t materials = 0;
  uint64_t forums = 0;
  uint64_t concerns = 0;
  uint64_t enrolments = 0;
  uint64_t followups = 0;
  uint64_t absences = 0;
  uint64_t children = 0;

  uint64_t records() const {
    return schools + contacts + agreements + materials + forums + concerns + enrolments + followups +
           absences;
  }
};

// Generates a district into `store`: first adds the children to its identity table
// (Store::AddPersons, one transaction), then writes every record in one Store::Apply
// (one signed commit, noted "demo-data seed N"), or in commits of
// `records_per_commit` records.
//
// Fails with kInvalidInput on an empty `today`, a scale out of range or a district
// without a profile (every district of districts.h has one), and otherwise with the
// store's error; the records are then not written, though children already added
// stay in the identity table (harmless: nothing refers to them); with
// records_per_commit, the commits applied before the failing one stay. Uses `store` from
// the calling thread only.
Result<DemoSummary> GenerateDemoDistrict(Store& store, const DemoOptions& options);

}  // namespace samsync

#endif  // SAMSYNC_DEMO_DATA_H_
