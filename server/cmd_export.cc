// samsync-server export (cmd_export.h).
#include "cmd_export.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli.h"
#include "dashboard.h"
#include "samsync/record_fields.h"
#include "samsync/suppression.h"

namespace samsync::server {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;

// Migration 1. Names are schema-qualified by the caller's search_path.
constexpr char kMigration1[] = R"SQL(
CREATE TABLE districts (
  district      text PRIMARY KEY,
  last_sync     timestamptz,
  conflicts     bigint NOT NULL
);
CREATE TABLE schools (
  school_id     text PRIMARY KEY,
  district      text NOT NULL REFERENCES districts,
  principal     text NOT NULL,
  forms         text[] NOT NULL,
  ppss_focus    boolean NOT NULL,
  closed_date   date
);
CREATE TABLE terms (
  term          text PRIMARY KEY,
  period_start  date NOT NULL,
  reference_date date NOT NULL
);
CREATE TABLE indicators (
  number        integer PRIMARY KEY,
  key           text NOT NULL UNIQUE,
  name_sv       text NOT NULL,
  name_en       text NOT NULL,
  definition    text NOT NULL,
  citywide      text NOT NULL,
  target        text NOT NULL
);
CREATE TABLE indicator_status (
  term          text NOT NULL REFERENCES terms ON DELETE CASCADE,
  district      text NOT NULL,
  indicator     text NOT NULL REFERENCES indicators (key),
  status        text NOT NULL,
  met           boolean,
  headline      text NOT NULL,
  stale         boolean NOT NULL,
  PRIMARY KEY (term, district, indicator)
);
CREATE TABLE indicator_values (
  term          text NOT NULL REFERENCES terms ON DELETE CASCADE,
  district      text NOT NULL,
  indicator     text NOT NULL REFERENCES indicators (key),
  measure       text NOT NULL,
  value         double precision,
  value_text    text,
  suppressed    boolean NOT NULL,
  PRIMARY KEY (term, district, indicator, measure)
);
)SQL";

// The citywide row's district in indicator_status and indicator_values.
constexpr char kCitywide[] = "(citywide)";

std::optional<std::string> IsoDate(const json& value) {
  if (value.is_string() && !value.get<std::string>().empty()) return value.get<std::string>();
  return std::nullopt;
}

// Every figure below `value`, as (dotted measure, figure).
void Leaves(const json& value, const std::string& at, std::vector<std::pair<std::string, json>>& out) {
  if (value.is_object() && !IsSuppressed(value)) {
    for (const auto& [name, child] : value.items()) Leaves(child, at.empty() ? name : at + "." + name, out);
    return;
  }
  out.emplace_back(at, value);
}

void WriteIndicators(pqxx::work& tx, const std::string& term, const std::string& district,
                     const DistrictFollowup* row, const std::vector<IndicatorResult>& indicators, bool stale) {
  for (const IndicatorResult& result : indicators) {
    std::string status(IndicatorStatus(row, result));
    std::optional<bool> met = result.suppressed ? std::nullopt : result.met;
    tx.exec_params("INSERT INTO indicator_status VALUES ($1, $2, $3, $4, $5, $6, $7)", term, district,
                   result.indicator.key, status, met, IndicatorHeadline(result), stale);
    std::vector<std::pair<std::string, json>> leaves;
    Leaves(result.values, "", leaves);
    for (const auto& [measure, figure] : leaves) {
      bool suppressed = IsSuppressed(figure);
      std::optional<double> number;
      std::optional<std::string> text;
      if (figure.is_number()) number = figure.get<double>();
      else if (figure.is_boolean()) number = figure.get<bool>() ? 1.0 : 0.0;
      else if (figure.is_string()) text = figure.get<std::string>();
      else if (!figure.is_null() && !suppressed) text = figure.dump();
      tx.exec_params("INSERT INTO indicator_values VALUES ($1, $2, $3, $4, $5, $6, $7)", term, district,
                     result.indicator.key, measure.empty() ? std::string("value") : measure, number, text, suppressed);
    }
  }
}

}  // namespace

void AddExportOptions(CLI::App& command, ExportOptions& options) {
  command.add_option("--postgres", options.postgres, "the PostgreSQL database: postgresql://USER@HOST:PORT/DB")
      ->required()
      ->envname("SAMSYNC_POSTGRES");
  command.add_option("--schema", options.schema, "the schema to create, migrate and fill")
      ->check([](const std::string& name) -> std::string {
        bool ok = !name.empty() && name.size() <= 63 &&
                  name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
        return ok ? "" : "--schema: lower-case letters, digits and _ only";
      })
      ->capture_default_str();
  command.add_option("--stale-days", options.stale_days,
                     "a district whose last sync is more than this many days old is marked stale")
      ->check(CLI::Range(0, 36500))
      ->capture_default_str();
}

int RunExport(const ExportOptions& options, bool as_json, const Clock& clock, const Store& store) {
  if (options.schema.empty() || options.schema.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
                                    std::string::npos) {
    return cli::Fail(Status::Invalid("--schema: lower-case letters, digits and _ only"));
  }
  auto input = LoadCityFollowupInput(store);
  if (!input.ok()) return cli::Fail(input.status());
  Date today = Date::Today(clock);
  std::vector<Term> terms = ReportTerms(*input, today, 1000);
  std::vector<CityReport> reports;
  for (const Term& term : terms) {
    CityReportOptions report_options;
    report_options.term = term;
    report_options.reference_date = std::min(today, term.End());
    report_options.now_ms = clock.NowMs();
    report_options.stale_days = options.stale_days;
    auto report = ComputeCityReport(*input, report_options);
    if (!report.ok()) return cli::Fail(report.status());
    reports.push_back(std::move(report).value());
  }
  uint64_t schools = 0, values = 0;
  try {
    pqxx::connection connection(options.postgres);
    pqxx::work tx(connection, "samsync export");
    // One export at a time: a second waits for the first to commit.
    tx.exec("SELECT pg_advisory_xact_lock(7355001)");
    tx.exec("CREATE SCHEMA IF NOT EXISTS " + options.schema);
    tx.exec("SET LOCAL search_path TO " + options.schema);
    tx.exec("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT "
            "NULL DEFAULT now())");
    int version = tx.exec("SELECT coalesce(max(version), 0) FROM schema_version")[0][0].as<int>();
    if (version > kSchemaVersion) {
      return cli::Fail(Status::Invalid("schema " + options.schema + " is at version " + std::to_string(version) +
                                       ", newer than this samsync-server knows (" + std::to_string(kSchemaVersion) +
                                       ")"));
    }
    if (version < 1) {
      tx.exec(kMigration1);
      tx.exec("INSERT INTO schema_version (version) VALUES (1)");
    }
    // Replace everything: the rows are those of the store now.
    tx.exec("TRUNCATE indicator_values, indicator_status, terms, schools, districts, indicators");
    for (const IndicatorDefinition& d : FollowupIndicators()) {
      tx.exec_params("INSERT INTO indicators VALUES ($1, $2, $3, $4, $5, $6, $7)", d.number, d.key, d.name_sv,
                     d.name_en, d.definition, d.citywide, d.target);
    }
    const CityReport& latest = reports.back();
    for (const DistrictFollowup& row : latest.districts) {
      std::optional<std::string> last_sync;
      if (row.last_sync_ms) last_sync = std::to_string(static_cast<double>(*row.last_sync_ms) / 1000.0);
      tx.exec_params("INSERT INTO districts VALUES ($1, to_timestamp($2::double precision), $3)", row.district,
                     last_sync, static_cast<int64_t>(row.conflicts));
    }
    for (const FollowupInput& district : input->districts) {
      for (const Record& school : district.Of(RecordType::kSchool)) {
        json record = RecordToJson(school);
        std::string forms = "{";
        for (const json& form : record.value("forms", json::array())) {
          forms += (forms.size() > 1 ? "," : "") + ("\"" + form.get<std::string>() + "\"");
        }
        forms += "}";
        tx.exec_params("INSERT INTO schools VALUES ($1, $2, $3, $4::text[], $5, $6::date)", record.value("id", ""),
                       district.district, record.value("principal", ""), forms, record.value("ppssFocus", false),
                       IsoDate(record.value("closedDate", json(nullptr))));
        ++schools;
      }
    }
    for (const CityReport& report : reports) {
      std::string term = report.term.ToString();
      tx.exec_params("INSERT INTO terms VALUES ($1, $2::date, $3::date)", term, report.period_start.ToString(),
                     report.reference_date.ToString());
      for (const DistrictFollowup& row : report.districts) {
        if (!row.report) continue;  // no records: no figures (the district is in districts)
        WriteIndicators(tx, term, row.district, &row, row.report->indicators, row.stale);
      }
      WriteIndicators(tx, term, kCitywide, nullptr, report.citywide.indicators, false);
    }
    values = tx.exec("SELECT count(*) FROM indicator_values")[0][0].as<uint64_t>();
    tx.commit();
  } catch (const pqxx::broken_connection& e) {
    return cli::Fail(Status::NotFound(std::string("--postgres: cannot connect: ") + e.what()));
  } catch (const std::exception& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    return cli::Fail(Status::Io("PostgreSQL export failed (nothing was changed): " + what));
  }
  if (as_json) {
    cli::PrintJson({{"schema", options.schema},
                    {"schemaVersion", kSchemaVersion},
                    {"terms", terms.size()},
                    {"districts", reports.back().districts.size()},
                    {"schools", schools},
                    {"indicatorValues", values}});
  } else {
    std::cout << "exported " << terms.size() << " terms (" << terms.front().ToString() << "–"
              << terms.back().ToString() << "), " << reports.back().districts.size() << " districts, " << schools
              << " schools and " << values << " indicator values into schema " << options.schema << '\n';
  }
  return cli::kExitOk;
}

}  // namespace samsync::server
