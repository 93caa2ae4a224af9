// The read-only web dashboard (dashboard.h).
#include "dashboard.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "samsync/city_report.h"
#include "samsync/districts.h"
#include "samsync/record_fields.h"
#include "samsync/suppression.h"

// The chart library (Chart.js's UMD build from npm, fetched at build time), compiled in
// by dashboard_assets.S.
extern "C" const char samsync_chartjs_start[];
extern "C" const char samsync_chartjs_end[];

namespace samsync::server {
namespace {

using nlohmann::json;

constexpr char kTokenKeyContext[] = "samsync dashboard token key v1";
constexpr char kTokenContext[] = "samsync dashboard token v1\n";
constexpr size_t kMaxTerms = 12;
constexpr int64_t kMaxSnapshotAgeMs = 3600 * 1000;

std::string Hex(std::span<const uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::array<uint8_t, 32> TokenMac(const Store& store, const std::string& central_hex) {
  const SecretBytes& secret = store.transport_key_pair().secret();
  std::array<uint8_t, 32> key{};
  crypto_generichash(key.data(), key.size(), reinterpret_cast<const uint8_t*>(kTokenKeyContext),
                     sizeof kTokenKeyContext - 1, secret.data(), secret.size());
  std::string message = kTokenContext + central_hex;
  std::array<uint8_t, 32> mac{};
  crypto_generichash(mac.data(), mac.size(), reinterpret_cast<const uint8_t*>(message.data()), message.size(),
                     key.data(), key.size());
  sodium_memzero(key.data(), key.size());
  return mac;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A JSON text safe inside <script>: no "</" can close the element.
std::string ScriptJson(const json& value) {
  std::string text = value.dump();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '<') {
      out += "\\u003c";
    } else {
      out += text[i];
    }
  }
  return out;
}

// Labels, Swedish first.
struct Labels {
  bool en = false;
  const char* operator()(const char* sv, const char* english) const { return en ? english : sv; }
};

std::string StatusLabel(const Labels& l, std::string_view status) {
  if (status == "met") return l("uppfyllt", "met");
  if (status == "not_met") return l("ej uppfyllt", "not met");
  if (status == "suppressed") return l("undertryckt (<5)", "suppressed (<5)");
  if (status == "stale") return l("inaktuell", "stale");
  if (status == "no_data") return l("inga data", "no data");
  return l("inget mål", "no target");
}

// What a cell shows: the headline, "<5" or the stale label.
std::string CellText(const Labels& l, std::string_view status, const IndicatorResult* result) {
  if (status == "stale" || result == nullptr) return l("inaktuell", "stale");
  if (status == "suppressed") return "<5";
  return IndicatorHeadline(*result);
}

// The headline as one number for a chart (a share in per cent), or null when hidden,
// missing or not a single number (forum cadence).
json HeadlineNumber(const IndicatorResult& result) {
  if (result.suppressed) return nullptr;
  const IndicatorDefinition& d = result.indicator;
  if (d.headline_kind == HeadlineKind::kCadence) return nullptr;
  json::json_pointer pointer(d.headline);
  if (!result.values.contains(pointer)) return nullptr;
  json figure = result.values[pointer];
  if (IsSuppressed(figure)) return nullptr;
  if (d.headline_kind == HeadlineKind::kShare) {
    if (!figure.is_object() || !figure.contains("share") || !figure["share"].is_number()) return nullptr;
    return std::round(figure["share"].get<double>() * 1000.0) / 10.0;
  }
  return figure.is_number() ? figure : json(nullptr);
}

struct Snapshot {
  int64_t made_ms = 0;
  VersionVector heads;                     // of the store when made
  uint64_t commits = 0;                    // the commits the reports include: the heads' sum
  std::map<std::string, int64_t> synced;   // Store::DistrictSyncTimes when made
  Date today;
  std::vector<Term> terms;  // with data, oldest first
  std::map<Term, CityReport> reports;
  std::map<Term, std::string> json_text;  // CityReportToJson, dumped
};

}  // namespace

std::vector<Term> ReportTerms(const CityFollowupInput& input, Date today, size_t max_terms) {
  std::set<Term> terms;
  for (const FollowupInput& district : input.districts) {
    for (RecordType type : AllRecordTypes()) {
      const FieldInfo* date_field = nullptr;
      for (const FieldInfo& f : FieldsOf(type)) {
        if (f.index_date) date_field = &f;
      }
      if (date_field == nullptr) continue;
      for (const Record& record : district.Of(type)) {
        auto date = Date::Parse(FieldToText(record, *date_field));
        if (date.ok() && !(today < Term::Of(*date).Start())) terms.insert(Term::Of(*date));
      }
    }
  }
  std::vector<Term> out(terms.begin(), terms.end());
  if (out.empty()) out.push_back(Term::Of(today));
  if (out.size() > max_terms) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(max_terms));
  return out;
}

std::string DashboardToken(const Store& store, const PublicKey& central) {
  std::string hex = central.ToHex();
  return hex + "." + Hex(TokenMac(store, hex));
}

Status CheckDashboardToken(const Store& store, const Roster& roster, const std::string& token) {
  size_t dot = token.find('.');
  if (dot == std::string::npos || token.size() != 64 + 1 + 64) return Status::Unauthorised("not a dashboard token");
  auto key = PublicKey::FromHex(token.substr(0, dot), "token key");
  if (!key.ok()) return Status::Unauthorised("not a dashboard token");
  std::array<uint8_t, 32> expected = TokenMac(store, key->ToHex());
  std::string mac_hex = token.substr(dot + 1);
  std::array<uint8_t, 32> mac{};
  size_t length = 0;
  if (sodium_hex2bin(mac.data(), mac.size(), mac_hex.data(), mac_hex.size(), nullptr, &length, nullptr) != 0 ||
      length != mac.size() || sodium_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return Status::Unauthorised("the token was not issued by this server");
  }
  const RosterEntry* entry = roster.FindSigningKey(*key);
  if (entry == nullptr || entry->role != Role::kCentral) {
    return Status::Unauthorised("the token's key is not a central-office entry of the roster");
  }
  if (entry->revoked_ms != 0) return Status::Unauthorised("the token's key has been revoked");
  return Status::Ok();
}

Result<HttpAddress> ParseHttpAddress(const std::string& text, bool allow_remote) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return Status::Invalid("--http wants HOST:PORT, e.g. 127.0.0.1:8080");
  HttpAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stoi(port) > 65535) {
    return Status::Invalid("--http: bad port '" + port + "'");
  }
  address.port = std::stoi(port);
  bool loopback = address.host == "localhost" || address.host == "::1" || address.host.rfind("127.", 0) == 0;
  if (!loopback && !allow_remote) {
    return Status::Invalid("--http " + text +
                           " is not on the loopback: the dashboard binds to 127.0.0.1 unless --http-allow-remote "
                           "is given (put it behind a TLS proxy)");
  }
  return address;
}

class Dashboard::Impl {
 public:
  Impl(const Store& store, const Clock& clock, DashboardOptions options, std::ostream& log)
      : store_(store), clock_(clock), options_(std::move(options)), log_(log) {}

  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (builder_.joinable()) builder_.join();
  }

  Status Start() {
    server_.set_keep_alive_max_count(100);
    // Small responses on kept-alive connections: without TCP_NODELAY, Nagle and delayed
    // ACKs add ~40 ms to each.
    server_.set_socket_options([](socket_t sock) {
      httplib::default_socket_options(sock);
      int yes = 1;
      ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    });
    Routes();
    int port = options_.address.port == 0 ? server_.bind_to_any_port(options_.address.host)
                                          : (server_.bind_to_port(options_.address.host, options_.address.port)
                                                 ? options_.address.port
                                                 : -1);
    if (port <= 0) return Status::Io("the dashboard cannot listen on " + options_.address.host + ":" +
                                     std::to_string(options_.address.port));
    port_ = port;
    builder_ = std::thread([this] { BuildLoop(); });
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return Status::Ok();
  }

  int port() const { return port_; }

 private:
  // The builder thread: builds the reports at start, then every refresh_seconds checks
  // the store's heads and sync times (two small reads) and builds them again, while
  // requests go on being answered from the ones before, when those or the day moved,
  // or the reports are an hour old. A build that fails is logged and tried again at
  // the next check; the last good reports stay served meanwhile.
  void BuildLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      Status built = Refresh();
      lock.lock();
      if (!built.ok() && !stopping_) {
        std::lock_guard<std::mutex> log_lock(log_mutex_);
        log_ << "dashboard: " << built.message() << std::endl;
      }
      build_status_ = built;
      built_once_ = true;
      ready_.notify_all();
      wake_.wait_for(lock, std::chrono::seconds(options_.refresh_seconds), [this] { return stopping_; });
    }
  }

  // Builds new reports unless the current ones are of the same heads, sync times and
  // day, and younger than kMaxSnapshotAgeMs. Runs on the builder thread only; holds
  // mutex_ only to read and swap snapshot_, never while computing.
  Status Refresh() {
    int64_t now = clock_.NowMs();
    Date today = Date::Today(clock_);
    // Records change only with new commits (the heads), figures with the date, sync
    // ages with the time.
    SAMSYNC_ASSIGN_OR_RETURN(VersionVector heads, store_.Heads());
    SAMSYNC_ASSIGN_OR_RETURN(auto synced, store_.DistrictSyncTimes());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (snapshot_ && snapshot_->heads == heads && snapshot_->synced == synced && snapshot_->today == today &&
          now - snapshot_->made_ms < kMaxSnapshotAgeMs) {
        return Status::Ok();
      }
    }
    auto started = std::chrono::steady_clock::now();
    SAMSYNC_ASSIGN_OR_RETURN(CityFollowupInput input, LoadCityFollowupInput(store_));
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->made_ms = now;
    for (const auto& [device, seq] : heads) snapshot->commits += seq;
    snapshot->heads = std::move(heads);
    snapshot->synced = std::move(synced);
    snapshot->today = today;
    snapshot->terms = ReportTerms(input, today, kMaxTerms);
    for (const Term& term : snapshot->terms) {
      if (Stopping()) return Status::Ok();
      CityReportOptions report_options;
      report_options.term = term;
      report_options.reference_date = std::min(today, term.End());
      report_options.now_ms = now;
      report_options.stale_days = options_.stale_days;
      SAMSYNC_ASSIGN_OR_RETURN(CityReport report, ComputeCityReport(input, report_options));
      snapshot->json_text[term] = CityReportToJson(report).dump();
      snapshot->reports.emplace(term, std::move(report));
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    size_t terms = snapshot->terms.size();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      snapshot_ = std::move(snapshot);
    }
    std::lock_guard<std::mutex> log_lock(log_mutex_);
    log_ << "dashboard: reports of " << terms << " terms built in " << static_cast<int64_t>(ms) << " ms" << std::endl;
    return Status::Ok();
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  // The newest reports. Waits only before the first build has ended; an error only
  // when no build has succeeded yet.
  Result<std::shared_ptr<const Snapshot>> Current() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return snapshot_ != nullptr || built_once_ || stopping_; });
    if (snapshot_) return snapshot_;
    if (!build_status_.ok()) return build_status_;
    return Status::Io("the dashboard is stopping");
  }

  // The term of ?term=, or the latest with data; nullopt for a term without a report.
  static std::optional<Term> TermOf(const httplib::Request& req, const Snapshot& snapshot) {
    if (!req.has_param("term")) return snapshot.terms.back();
    auto term = Term::Parse(req.get_param_value("term"));
    if (!term.ok() || !snapshot.reports.count(*term)) return std::nullopt;
    return *term;
  }

  static std::string Cookie(const httplib::Request& req, const std::string& name) {
    std::string cookies = req.get_header_value("Cookie");
    size_t at = 0;
    while (at < cookies.size()) {
      size_t end = cookies.find(';', at);
      if (end == std::string::npos) end = cookies.size();
      std::string part = cookies.substr(at, end - at);
      part.erase(0, part.find_first_not_of(' '));
      if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
      at = end + 1;
    }
    return "";
  }

  // Sends 401 unless the request carries a valid token; sets the cookie from ?token=.
  bool Authorised(const httplib::Request& req, httplib::Response& res) {
    std::string token;
    bool from_query = false;
    std::string header = req.get_header_value("Authorization");
    if (header.rfind("Bearer ", 0) == 0) {
      token = header.substr(7);
    } else if (req.has_param("token")) {
      token = req.get_param_value("token");
      from_query = true;
    } else {
      token = Cookie(req, "samsync_token");
    }
    Status checked = Status::Unauthorised("no token: open the link `samsync-server token` printed");
    if (!token.empty()) {
      auto roster = store_.InstalledRoster();
      if (!roster.ok() || !*roster) {
        checked = Status::Unauthorised("the server has no roster installed");
      } else {
        checked = CheckDashboardToken(store_, **roster, token);
      }
    }
    if (!checked.ok()) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"samsync\"");
      res.set_content("401 Unauthorized: " + checked.message() + "\n", "text/plain; charset=utf-8");
      return false;
    }
    if (from_query) {
      res.set_header("Set-Cookie", "samsync_token=" + token + "; Path=/; HttpOnly; SameSite=Strict");
    }
    return true;
  }

  Labels LabelsOf(const httplib::Request& req, httplib::Response& res) {
    Labels l;
    if (req.has_param("lang")) {
      l.en = req.get_param_value("lang") == "en";
      res.set_header("Set-Cookie", std::string("samsync_lang=") + (l.en ? "en" : "sv") + "; Path=/; SameSite=Strict");
    } else {
      l.en = Cookie(req, "samsync_lang") == "en";
    }
    return l;
  }

  std::string Page(const Labels& l, const std::string& title, const std::string& body, const std::string& script,
                   const std::string& here) {
    std::string sep = here.find('?') == std::string::npos ? "?" : "&";
    std::string out = std::string("<!doctype html><html lang=\"") + (l.en ? "en" : "sv") +
                      "\"><head><meta charset=\"utf-8\"><title>" + Escape(title) +
                      "</title><style>"
                      "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
                      "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px}"
                      "th{background:#f3f3f3;text-align:left}.met{background:#d9f2d9}.not_met{background:#f8d4d4}"
                      ".suppressed{background:#e6e6e6;color:#555}.stale{background:#fff4c2;color:#7a5d00}"
                      ".no_data,.no_target{color:#666}nav a{margin-right:1em}.charts{display:flex;flex-wrap:wrap}"
                      ".chart{width:380px;height:220px;margin:0 1em 1.5em 0}.legend span{padding:2px 6px;margin-right:6px}"
                      "</style></head><body><nav><a href=\"/\">" +
                      l("Översikt", "Overview") + "</a><a href=\"/parity\">" +
                      l("Deltagandeparitet", "Participation parity") + "</a><a id=\"lang\" href=\"" + Escape(here) +
                      sep + "lang=" + (l.en ? "sv" : "en") + "\">" + (l.en ? "Svenska" : "English") +
                      "</a></nav><h1>" + Escape(title) + "</h1>" + body;
    if (!script.empty()) out += "<script src=\"/assets/chart.umd.min.js\"></script><script>" + script + "</script>";
    return out + "</body></html>";
  }

  std::string TermLinks(const Snapshot& snapshot, const Term& shown, const std::string& base) {
    std::string out = "<p>";
    for (const Term& term : snapshot.terms) {
      std::string name = term.ToString();
      out += term == shown ? "<b>" + name + "</b> " : "<a href=\"" + base + "?term=" + name + "\">" + name + "</a> ";
    }
    return out + "</p>";
  }

  std::string Overview(const Labels& l, const Snapshot& snapshot, const Term& term) {
    const CityReport& report = snapshot.reports.at(term);
    std::string body = TermLinks(snapshot, term, "/");
    body += "<p>" + std::string(l("Referensdatum", "Reference date")) + " " + report.reference_date.ToString() + ". " +
            l("Inaktuell: senaste synk äldre än ", "Stale: last sync older than ") +
            std::to_string(report.stale_days) + l(" dagar. Tal under 5 visas som &lt;5.",
                                                 " days. Counts under 5 are shown as &lt;5.") +
            "</p><p class=\"legend\">";
    for (const char* status : {"met", "not_met", "suppressed", "stale", "no_data"}) {
      body += "<span class=\"" + std::string(status) + "\" style=\"border:1px solid #ccc\">" +
              StatusLabel(l, status) + "</span>";
    }
    body += "</p><table id=\"overview\" data-term=\"" + term.ToString() + "\"><thead><tr><th>" +
            l("Stadsdel", "District") + "</th><th>" + l("Senaste synk", "Last sync") + "</th><th>" +
            l("Konflikter", "Conflicts") + "</th>";
    for (const IndicatorDefinition& d : FollowupIndicators()) {
      body += "<th title=\"" + Escape(d.definition) + "\">" + std::to_string(d.number) + ". " +
              Escape(l.en ? d.name_en : d.name_sv) + (d.target.empty() ? "" : "<br><small>" +
              std::string(l("mål ", "target ")) + Escape(d.target) + "</small>") + "</th>";
    }
    body += "</tr></thead><tbody>";
    auto row_html = [&](const DistrictFollowup* row, const std::vector<IndicatorResult>* indicators,
                        const std::string& name, const std::string& link, const std::string& sync,
                        uint64_t conflicts) {
      std::string out = "<tr data-district=\"" + Escape(name) + "\"><th>" +
                        (link.empty() ? Escape(name) : "<a href=\"" + link + "\">" + Escape(name) + "</a>") +
                        "</th><td>" + sync + "</td><td>" + std::to_string(conflicts) + "</td>";
      for (size_t i = 0; i < FollowupIndicators().size(); ++i) {
        const IndicatorResult* result = indicators ? &(*indicators)[i] : nullptr;
        std::string status = result ? std::string(IndicatorStatus(row, *result)) : "stale";
        out += "<td class=\"" + status + "\" data-key=\"" + FollowupIndicators()[i].key + "\" data-status=\"" +
               status + "\" title=\"" + Escape(StatusLabel(l, status)) + "\">" +
               Escape(CellText(l, status, result)) + "</td>";
      }
      return out + "</tr>";
    };
    for (const DistrictFollowup& row : report.districts) {
      std::string sync = !row.sync_age_days ? l("aldrig", "never")
                         : *row.sync_age_days == 0
                             ? l("i dag", "today")
                             : std::to_string(*row.sync_age_days) + l(" d sedan", " d ago");
      body += row_html(&row, row.report ? &row.report->indicators : nullptr, row.district,
                       "/district/" + UrlEncode(row.district), sync, row.conflicts);
    }
    body += row_html(nullptr, &report.citywide.indicators, l("Hela staden", "Citywide"), "",
                     std::to_string(report.stale_districts) + l(" inaktuella", " stale"), report.conflicts);
    body += "</tbody></table><h2>" + std::string(l("Indikatorer", "Indicators")) + "</h2><ol>";
    for (const IndicatorDefinition& d : FollowupIndicators()) {
      body += "<li><b>" + Escape(l.en ? d.name_en : d.name_sv) + "</b>: " + Escape(d.definition) + "</li>";
    }
    body += "</ol>";
    return Page(l, std::string(l("Uppföljning, hela staden ", "Citywide follow-up ")) + term.ToString(), body, "",
                "/?term=" + term.ToString());
  }

  std::string DistrictPage(const Labels& l, const Snapshot& snapshot, const std::string& district) {
    json series = json::array();
    std::string table = "<table id=\"terms\"><thead><tr><th>" + std::string(l("Indikator", "Indicator")) + "</th>";
    for (const Term& term : snapshot.terms) table += "<th>" + term.ToString() + "</th>";
    table += "</tr></thead><tbody>";
    json labels = json::array();
    for (const Term& term : snapshot.terms) labels.push_back(term.ToString());
    for (size_t i = 0; i < FollowupIndicators().size(); ++i) {
      const IndicatorDefinition& d = FollowupIndicators()[i];
      json values = json::array();
      table += "<tr data-key=\"" + d.key + "\"><th>" + std::to_string(d.number) + ". " +
               Escape(l.en ? d.name_en : d.name_sv) + "</th>";
      for (const Term& term : snapshot.terms) {
        const CityReport& report = snapshot.reports.at(term);
        const DistrictFollowup* row = nullptr;
        for (const DistrictFollowup& r : report.districts) {
          if (r.district == district) row = &r;
        }
        const IndicatorResult* result = row && row->report ? &row->report->indicators[i] : nullptr;
        std::string status = result ? std::string(IndicatorStatus(row, *result)) : "stale";
        values.push_back(result && status != "stale" ? HeadlineNumber(*result) : json(nullptr));
        table += "<td class=\"" + status + "\" data-term=\"" + term.ToString() + "\" data-status=\"" + status +
                 "\">" + Escape(CellText(l, status, result)) + "</td>";
      }
      table += "</tr>";
      series.push_back({{"key", d.key},
                        {"name", std::to_string(d.number) + ". " + (l.en ? d.name_en : d.name_sv)},
                        {"unit", d.headline_kind == HeadlineKind::kShare  ? "%"
                                 : d.headline_kind == HeadlineKind::kDays ? "d"
                                                                           : ""},
                        {"values", std::move(values)}});
    }
    table += "</tbody></table>";
    std::string body = "<p>" + std::string(l("Varje indikator per termin med data. Luckor: undertryckt (<5), "
                                              "inaktuell eller inga data.",
                                              "Each indicator over the terms with data. Gaps: suppressed (<5), stale "
                                              "or no data.")) +
                       "</p><div class=\"charts\" id=\"charts\"></div>" + table +
                       "<script type=\"application/json\" id=\"series\">" + ScriptJson(series) +
                       "</script><script type=\"application/json\" id=\"labels\">" + ScriptJson(labels) + "</script>";
    std::string script = R"JS(
const series = JSON.parse(document.getElementById('series').textContent);
const labels = JSON.parse(document.getElementById('labels').textContent);
const holder = document.getElementById('charts');
for (const s of series) {
  if (s.values.every(v => v === null)) continue;
  const box = document.createElement('div'); box.className = 'chart';
  const canvas = document.createElement('canvas'); canvas.dataset.key = s.key; box.appendChild(canvas); holder.appendChild(box);
  new Chart(canvas, {type: 'line', data: {labels, datasets: [{label: s.name + (s.unit ? ' (' + s.unit + ')' : ''),
    data: s.values, spanGaps: false, borderColor: '#1f5fa8', backgroundColor: '#1f5fa8'}]},
    options: {animation: false, responsive: true, maintainAspectRatio: false}});
}
document.body.dataset.charts = holder.children.length;
)JS";
    return Page(l, std::string(l("Stadsdel ", "District ")) + district, body, script,
                "/district/" + UrlEncode(district));
  }

  std::string ParityPage(const Labels& l, const Snapshot& snapshot, const Term& term) {
    const CityReport& report = snapshot.reports.at(term);
    size_t index = 0;
    for (size_t i = 0; i < FollowupIndicators().size(); ++i) {
      if (FollowupIndicators()[i].key == "participation_parity") index = i;
    }
    auto share = [](const json& values, const char* part) -> json {
      if (!values.is_object() || !values.contains(part)) return nullptr;
      const json& s = values[part];
      if (IsSuppressed(s) || !s.is_object() || !s.contains("share") || !s["share"].is_number()) return nullptr;
      return std::round(s["share"].get<double>() * 1000.0) / 10.0;
    };
    json names = json::array(), independent = json::array(), municipal = json::array();
    std::string table = "<table id=\"parity\"><thead><tr><th>" + std::string(l("Stadsdel", "District")) + "</th><th>" +
                        l("Fristående", "Independent") + " %</th><th>" + l("Kommunala", "Municipal") + " %</th><th>" +
                        l("Kvot (mål ≥ 0,9)", "Ratio (target ≥ 0.9)") + "</th></tr></thead><tbody>";
    auto add = [&](const std::string& name, const DistrictFollowup* row, const IndicatorResult* result) {
      std::string status = result ? std::string(IndicatorStatus(row, *result)) : "stale";
      bool shown = result && status != "stale";
      json ind = shown ? share(result->values, "independent") : json(nullptr);
      json mun = shown ? share(result->values, "municipal") : json(nullptr);
      names.push_back(name);
      independent.push_back(ind);
      municipal.push_back(mun);
      // A share hidden by suppression reads "<5"; one without invitations "–".
      auto text = [&](const json& v, const char* part) {
        if (!shown) return std::string(l("inaktuell", "stale"));
        if (!v.is_null()) return v.dump();
        const json& s = result->values.is_object() && result->values.contains(part) ? result->values[part] : json();
        bool hidden = IsSuppressed(s) || (s.is_object() && s.contains("share") && IsSuppressed(s["share"]));
        return std::string(hidden ? "<5" : "–");
      };
      table += "<tr data-district=\"" + Escape(name) + "\"><th>" + Escape(name) + "</th><td>" +
               Escape(text(ind, "independent")) + "</td><td>" + Escape(text(mun, "municipal")) + "</td><td class=\"" +
               status + "\">" +
               Escape(CellText(l, status, result)) + "</td></tr>";
    };
    for (const DistrictFollowup& row : report.districts) {
      add(row.district, &row, row.report ? &row.report->indicators[index] : nullptr);
    }
    add(l("Hela staden", "Citywide"), nullptr, &report.citywide.indicators[index]);
    table += "</tbody></table>";
    json data = {{"names", names}, {"independent", independent}, {"municipal", municipal},
                 {"labels", {l("Fristående", "Independent"), l("Kommunala", "Municipal")}}};
    std::string body = TermLinks(snapshot, term, "/parity") + "<p>" +
                       l("Andel inbjudna skolor som deltog i forum, fristående mot kommunala (indikator 7).",
                         "Share of invited schools that attended forums, independent vs municipal (indicator 7).") +
                       "</p><div style=\"width:900px;height:320px\"><canvas id=\"chart\"></canvas></div>" + table +
                       "<script type=\"application/json\" id=\"data\">" + ScriptJson(data) + "</script>";
    std::string script = R"JS(
const d = JSON.parse(document.getElementById('data').textContent);
new Chart(document.getElementById('chart'), {type: 'bar', data: {labels: d.names, datasets: [
  {label: d.labels[0], data: d.independent, backgroundColor: '#e08a1e'},
  {label: d.labels[1], data: d.municipal, backgroundColor: '#1f5fa8'}]},
  options: {animation: false, responsive: true, maintainAspectRatio: false, scales: {y: {min: 0, max: 100}}}});
)JS";
    return Page(l, std::string(l("Deltagandeparitet ", "Participation parity ")) + term.ToString(), body, script,
                "/parity?term=" + term.ToString());
  }

  // Runs `make` for an authorised request and reports how long the page took.
  void Serve(const httplib::Request& req, httplib::Response& res,
             const std::function<void(const Labels&, const Snapshot&)>& make) {
    auto started = std::chrono::steady_clock::now();
    if (!Authorised(req, res)) return;
    Labels l = LabelsOf(req, res);
    auto snapshot = Current();
    if (!snapshot.ok()) {
      res.status = 500;
      res.set_content("500: " + snapshot.status().message() + "\n", "text/plain; charset=utf-8");
      std::lock_guard<std::mutex> lock(log_mutex_);
      log_ << "dashboard: " << snapshot.status().message() << std::endl;
      return;
    }
    make(l, **snapshot);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    res.set_header("Server-Timing", "page;dur=" + std::to_string(ms));
    // The reports are rebuilt in the background after a sync: this says which commits
    // the page's figures include (`samsync-server status` counts the store's).
    res.set_header("X-Samsync-Commits", std::to_string((*snapshot)->commits));
    res.set_header("Cache-Control", "no-store");
  }

  void Routes() {
    server_.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
      Serve(req, res, [&](const Labels& l, const Snapshot& s) {
        auto term = TermOf(req, s);
        if (!term) {
          res.status = 404;
          res.set_content("404: no report for that term\n", "text/plain; charset=utf-8");
          return;
        }
        res.set_content(Overview(l, s, *term), "text/html; charset=utf-8");
      });
    });
    server_.Get("/parity", [this](const httplib::Request& req, httplib::Response& res) {
      Serve(req, res, [&](const Labels& l, const Snapshot& s) {
        auto term = TermOf(req, s);
        if (!term) {
          res.status = 404;
          res.set_content("404: no report for that term\n", "text/plain; charset=utf-8");
          return;
        }
        res.set_content(ParityPage(l, s, *term), "text/html; charset=utf-8");
      });
    });
    server_.Get(R"(/district/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string district = req.matches[1];
      Serve(req, res, [&](const Labels& l, const Snapshot& s) {
        const CityReport& latest = s.reports.at(s.terms.back());
        bool known = std::any_of(latest.districts.begin(), latest.districts.end(),
                                 [&](const DistrictFollowup& row) { return row.district == district; });
        if (!known) {
          res.status = 404;
          res.set_content("404: no such district\n", "text/plain; charset=utf-8");
          return;
        }
        res.set_content(DistrictPage(l, s, district), "text/html; charset=utf-8");
      });
    });
    server_.Get("/api/report.json", [this](const httplib::Request& req, httplib::Response& res) {
      Serve(req, res, [&](const Labels&, const Snapshot& s) {
        auto term = TermOf(req, s);
        if (!term) {
          res.status = 404;
          res.set_content("{\"error\": \"no report for that term\"}\n", "application/json");
          return;
        }
        res.set_content(s.json_text.at(*term), "application/json");
      });
    });
    server_.Get("/assets/chart.umd.min.js", [this](const httplib::Request& req, httplib::Response& res) {
      if (!Authorised(req, res)) return;
      res.set_header("Cache-Control", "private, max-age=3600");
      res.set_content(samsync_chartjs_start, static_cast<size_t>(samsync_chartjs_end - samsync_chartjs_start),
                      "text/javascript; charset=utf-8");
    });
  }

  const Store& store_;
  const Clock& clock_;
  DashboardOptions options_;
  std::ostream& log_;
  std::mutex log_mutex_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::thread builder_;
  std::mutex mutex_;  // guards the four below
  std::condition_variable ready_;  // a build ended
  std::condition_variable wake_;   // stopping
  std::shared_ptr<const Snapshot> snapshot_;
  Status build_status_ = Status::Ok();  // of the last build
  bool built_once_ = false;
  bool stopping_ = false;
};

Result<std::unique_ptr<Dashboard>> Dashboard::Start(const Store& store, const Clock& clock, DashboardOptions options,
                                                    std::ostream& log) {
  auto impl = std::make_unique<Impl>(store, clock, std::move(options), log);
  SAMSYNC_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(impl)));
}

Dashboard::Dashboard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dashboard::~Dashboard() = default;
int Dashboard::port() const { return impl_->port(); }

}  // namespace samsync::server
