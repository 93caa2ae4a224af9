// samsync-server report (cmd_report.h).
#include "cmd_report.h"

#include <iostream>

#include "cli.h"

namespace samsync::server {

void AddReportOptions(CLI::App& command, ReportOptions& options) {
  command.add_option("--term", options.term,
                     "the term, e.g. 2016HT or 2016VT (default: the term of --date, or of today)");
  command.add_option("--date", options.date,
                     "the reference date YYYY-MM-DD: figures as known that day (default: today, or the last day of "
                     "a past --term)");
  command.add_option("--format", options.format,
                     "table (for a person), json (for programs) or csv (UTF-8 with BOM, ';' and decimal commas, for "
                     "Swedish Excel)")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  command.add_option("--stale-days", options.stale_days,
                     "a district whose last sync is more than this many days old is shown as stale")
      ->check(CLI::Range(0, 36500))
      ->capture_default_str();
}

int RunReport(const ReportOptions& options, bool json, const Clock& clock,
              const std::function<Result<std::unique_ptr<Store>>()>& open) {
  Date reference = Date::Today(clock);
  if (!options.date.empty()) {
    auto date = Date::Parse(options.date);
    if (!date.ok()) return cli::Fail(date.status().WithContext("--date"));
    reference = *date;
  }
  Term term = Term::Of(reference);
  if (!options.term.empty()) {
    auto parsed = Term::Parse(options.term);
    if (!parsed.ok()) return cli::Fail(parsed.status().WithContext("--term"));
    term = *parsed;
    // A past term is reported as of its last day unless a date is given.
    if (options.date.empty() && term.End() < reference) reference = term.End();
  }
  if (reference < term.Start()) {
    return cli::Fail(Status::Invalid("--date " + reference.ToString() + " is before term " + term.ToString() +
                                     " starts (" + term.Start().ToString() + ")"));
  }
  auto store = open();
  if (!store.ok()) return cli::Fail(store.status());
  auto input = LoadCityFollowupInput(**store);
  if (!input.ok()) return cli::Fail(input.status());
  CityReportOptions report_options;
  report_options.term = term;
  report_options.reference_date = reference;
  report_options.now_ms = clock.NowMs();
  report_options.stale_days = options.stale_days;
  auto report = ComputeCityReport(*input, report_options);
  if (!report.ok()) return cli::Fail(report.status());
  std::string format = json ? "json" : options.format;
  if (format == "json") {
    cli::PrintJson(CityReportToJson(*report));
  } else if (format == "csv") {
    std::cout << CityReportToCsv(*report);
  } else {
    std::cout << CityReportToTable(*report);
  }
  std::cout.flush();
  return std::cout ? cli::kExitOk : cli::kExitIo;
}

}  // namespace samsync::server
