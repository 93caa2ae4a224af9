// report and demo-data: the district's follow-up model and its generated demo district.
#include <iostream>

#include "cli.h"
#include "samsync/demo_data.h"
#include "samsync/followup.h"

namespace samsync::cli {
namespace {

struct ReportOptions {
  std::string term;  // default: the term of the reference date
  std::string date;  // default: today
};

int RunReport(Globals& g, const ReportOptions& o) {
  Date reference = Date::Today(g.clock);
  if (!o.date.empty()) {
    auto date = Date::Parse(o.date);
    if (!date.ok()) return Fail(date.status().WithContext("--date"));
    reference = *date;
  }
  Term term = Term::Of(reference);
  if (!o.term.empty()) {
    auto parsed = Term::Parse(o.term);
    if (!parsed.ok()) return Fail(parsed.status().WithContext("--term"));
    term = *parsed;
    // A past term is reported as of its last day unless a date is given.
    if (o.date.empty() && term.End() < reference) reference = term.End();
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto input = LoadFollowupInput(**store);
  if (!input.ok()) return Fail(input.status());
  auto report = ComputeFollowup(*input, term, reference);
  if (!report.ok()) return Fail(report.status());
  // Figures computed over records whose values are still in dispute say so.
  auto conflicts = (*store)->Conflicts();
  if (!conflicts.ok()) return Fail(conflicts.status());
  size_t unresolved = conflicts->size();
  if (g.json) {
    nlohmann::json json = FollowupToJson(*report);
    json["unresolvedConflicts"] = unresolved;
    PrintJson(json);
  } else {
    std::cout << FollowupToTable(*report);
    if (unresolved == 0) {
      std::cout << "no unresolved conflicts\n";
    } else {
      std::cout << "Rests on " << unresolved << " unresolved conflict" << (unresolved == 1 ? "" : "s")
                << ": see samsync conflicts\n";
    }
  }
  return 0;
}

struct DemoDataOptions {
  uint64_t seed = 1;
  double scale = 1.0;
  uint64_t records_per_commit = 0;  // 0: one commit
  std::string today;  // default: today
};

int RunDemoData(Globals& g, const DemoDataOptions& o) {
  DemoOptions options;
  options.seed = o.seed;
  options.scale = o.scale;
  options.records_per_commit = o.records_per_commit;
  options.today = Date::Today(g.clock);
  if (!o.today.empty()) {
    auto today = Date::Parse(o.today);
    if (!today.ok()) return Fail(today.status().WithContext("--today"));
    options.today = *today;
  }
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto summary = GenerateDemoDistrict(**store, options);
  if (!summary.ok()) return Fail(summary.status());
  const DemoSummary& s = *summary;
  if (g.json) {
    PrintJson({{"district", (*store)->district()}, {"seed", o.seed}, {"scale", o.scale},
               {"today", options.today.ToString()}, {"children", s.children}, {"records", s.records()},
               {"school", s.schools}, {"contact", s.contacts}, {"agreement", s.agreements},
               {"material", s.materials}, {"forum", s.forums}, {"concern", s.concerns},
               {"enrolment", s.enrolments}, {"followup", s.followups}, {"absence", s.absences}});
    return 0;
  }
  std::cout << "generated a demo district for " << (*store)->district() << " (seed " << o.seed << ", scale "
            << o.scale << ", up to " << options.today.ToString() << "): " << s.records() << " records, "
            << s.children << " children\n";
  PrintTable({"type", "records"}, {{"school", std::to_string(s.schools)},
                                   {"contact", std::to_string(s.contacts)},
                                   {"agreement", std::to_string(s.agreements)},
                                   {"material", std::to_string(s.materials)},
                                   {"forum", std::to_string(s.forums)},
                                   {"concern", std::to_string(s.concerns)},
                                   {"enrolment", std::to_string(s.enrolments)},
                                   {"followup", std::to_string(s.followups)},
                                   {"absence", std::to_string(s.absences)}});
  return 0;
}

}  // namespace

void RegisterFollowupCommands(CLI::App& app, Globals& g, Handler& handler) {
  auto report_options = std::make_shared<ReportOptions>();
  CLI::App* report = app.add_subcommand("report", "the follow-up model's 13 indicators for this district");
  report->fallthrough();
  report->add_option("--term", report_options->term, "the term, e.g. 2016HT (default: the current term)");
  report->add_option("--date", report_options->date, "the reference date YYYY-MM-DD (default: today, or the term's last day)");
  report->callback([&g, &handler, report_options] { handler = [&g, report_options] { return RunReport(g, *report_options); }; });

  auto demo_options = std::make_shared<DemoDataOptions>();
  CLI::App* demo = app.add_subcommand("demo-data", "fill the store with a generated, realistic demo district");
  demo->fallthrough();
  demo->add_option("--seed", demo_options->seed, "the same seed gives the same district (default 1)");
  demo->add_option("--scale", demo_options->scale,
                   "0.01 to 250: multiplies the counts (default 1: ~20-35 schools, ~450-1,000 records)")
      ->check(CLI::Range(0.01, 250.0));
  demo->add_option("--records-per-commit", demo_options->records_per_commit,
                   "write the records in signed commits of this many (default: all in one commit)")
      ->check(CLI::PositiveNumber);
  demo->add_option("--today", demo_options->today, "the generator's today, YYYY-MM-DD (default: today)");
  demo->callback([&g, &handler, demo_options] { handler = [&g, demo_options] { return RunDemoData(g, *demo_options); }; });
}

}  // namespace samsync::cli
