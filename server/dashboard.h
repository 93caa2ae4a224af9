// The central office's read-only web dashboard (`samsync-server run --http HOST:PORT`):
// the citywide follow-up (city_report.h) as pages a person reads in a browser.
//
// Contract
// - Pages. "/" the city overview: each district × each indicator with its status
//   (met / not met / suppressed / stale, IndicatorStatus) and headline, for one term
//   (?term=2016HT; default: the latest term with data). "/district/NAME" a page per
//   district: each indicator's headline over every term with data, as a chart.
//   "/parity" independent vs municipal participation (indicator 7) across districts.
//   "/api/report.json?term=…" is exactly CityReportToJson of the term the overview
//   shows. "/assets/chart.umd.min.js" the chart library, compiled into the binary:
//   nothing is fetched from anywhere at run time. Labels are Swedish; ?lang=en (kept
//   in a cookie) switches to English.
// - What is shown has been through small-cell suppression: every figure comes from a
//   CityReport (ComputeCityReport suppresses), never from the records.
// - Access. Every page needs a token (DashboardToken) of an active `central` entry of
//   the roster installed in the store, as "Authorization: Bearer TOKEN", as the cookie
//   `samsync_token`, or once as ?token=TOKEN (which sets the cookie). Anything else is
//   answered 401. A token stops working when its entry is revoked.
// - The store. The dashboard only calls const read methods of `store`, each of which
//   runs in its own LMDB read transaction (the environment is opened MDB_NOTLS), from
//   the dashboard's own threads, beside the sync loop's writes: it never writes and
//   never holds a transaction across requests, so it does not block sync.
// - Freshness. The reports are built on a thread of their own: at start, then whenever
//   a check every `refresh_seconds` (the store's heads and sync times: two small reads)
//   finds that they or the day changed, or the reports are an hour old. Requests are
//   answered at once from the newest reports built (only those before the first build
//   wait for it), so a page never waits for a rebuild; each response says in its
//   X-Samsync-Commits header how many commits its figures include. A build that fails
//   is logged; the reports before it are served until one succeeds.
// - Threads. Start() runs the HTTP server and the builder on threads of their own; the
//   destructor stops both and joins them. `store` and `clock` must outlive the Dashboard.
#ifndef SAMSYNC_SERVER_DASHBOARD_H_
#define SAMSYNC_SERVER_DASHBOARD_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "samsync/city_report.h"
#include "samsync/clock.h"
#include "samsync/keys.h"
#include "samsync/roster.h"
#include "samsync/status.h"
#include "samsync/store.h"

namespace samsync::server {

// The dashboard token of central-office key `central`: "HEX(central).HEX(mac)", the mac
// a keyed BLAKE2b of the key under a key derived from the server store's transport
// secret. Only the server's store can issue one. Checks nothing about the roster.
std::string DashboardToken(const Store& store, const PublicKey& central);

// OK when `token` is one DashboardToken issued for a key that `roster` holds as an
// active `central` entry; kUnauthorised otherwise (the message says why).
Status CheckDashboardToken(const Store& store, const Roster& roster, const std::string& token);

// "127.0.0.1:8080", "localhost:0", "[::1]:0". Fails with kInvalidInput for a bad
// address, and for one not on the loopback unless `allow_remote`.
struct HttpAddress {
  std::string host;
  int port = 0;
};
Result<HttpAddress> ParseHttpAddress(const std::string& text, bool allow_remote);

// The terms the dashboard and the export report: every term in which some record's
// principal date falls, not after `today`'s term, oldest first, the latest
// `max_terms`; Term::Of(today) alone when no record has a date.
std::vector<Term> ReportTerms(const CityFollowupInput& input, Date today, size_t max_terms = 12);

struct DashboardOptions {
  HttpAddress address{"127.0.0.1", 0};
  int refresh_seconds = 2;
  int stale_days = 30;
};

class Dashboard {
 public:
  // Binds and starts serving. Fails with kIoError when the address cannot be bound.
  static Result<std::unique_ptr<Dashboard>> Start(const Store& store, const Clock& clock, DashboardOptions options,
                                                  std::ostream& log);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  int port() const;

  class Impl;

 private:
  explicit Dashboard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_DASHBOARD_H_
