// sync: push this machine's commits to the city's sync server and pull its
// district's (or, for central and auditor keys, the city's) commits back.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <thread>
#include <zmq.hpp>

#include "cli.h"
#include "sync_client.h"

namespace samsync::cli {
namespace {

// A progress line on a terminal, overwritten in place; nothing when not a terminal.
void Progress(const std::string& line) {
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (terminal) std::cerr << "\r" << line << "\x1b[K" << std::flush;
}

// What one sync round did, for the report.
struct Round {
  uint64_t pushed = 0, duplicates = 0, rejected = 0, pulled = 0, merged = 0;
  ReplicaSummary summary;
  Witnessed witnessed;
  double ms = 0;                                     // the whole round
  nlohmann::json phases = nlohmann::json::object();  // where the time went: ms per step
};

// One sync over `connection`: hello, push, pull until nothing is left, witness. The
// server's refusals of single commits are counted (and printed), not errors.
Result<Round> SyncRound(Store& s, Connection& connection, const std::string& evidence_dir) {
  Round round;
  auto started = std::chrono::steady_clock::now();
  auto mark = started;
  auto phase = [&round, &mark](const char* name) {
    auto now = std::chrono::steady_clock::now();
    double ms = std::chrono::duration<double, std::milli>(now - mark).count();
    round.phases[name] = ms;
    mark = now;
    return ms;
  };

  // 1. Hello: who the server takes us for, and what it holds that we may see.
  capnp::MallocMessageBuilder hello_message;
  NewRequest(hello_message).setHello();
  SAMSYNC_ASSIGN_OR_RETURN(auto hello, connection.Ask(hello_message));
  if (!hello.root().isHello()) return Status::Corruption("the sync server answered hello with something else");
  auto server_heads = ReadSeen(hello.root().getHello().getHeads());
  if (!server_heads.ok()) return Status::Corruption("the sync server sent a malformed version vector");
  bool writer = hello.root().getHello().getRole() == schema::Role::WRITER;
  phase("hello");

  // 2. Push what the server lacks, in batches, each acknowledged once durable.
  if (writer) {
    std::vector<std::vector<uint8_t>> batch;
    uint64_t batch_bytes = 0;
    Status sent;
    auto flush = [&]() -> Status {
      if (batch.empty()) return Status::Ok();
      capnp::MallocMessageBuilder message;
      auto list = NewRequest(message).initPush(static_cast<unsigned>(batch.size()));
      for (unsigned i = 0; i < batch.size(); ++i) list.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
      SAMSYNC_ASSIGN_OR_RETURN(auto reply, connection.Ask(message));
      if (!reply.root().isPushed()) return Status::Corruption("the sync server answered a push with something else");
      auto result = reply.root().getPushed();
      round.pushed += result.getAccepted();
      round.duplicates += result.getDuplicates();
      for (auto rejection : result.getRejected()) {
        ++round.rejected;
        std::cerr << "samsync: the server refused a commit: " << rejection.getReason().cStr() << std::endl;
      }
      batch.clear();
      batch_bytes = 0;
      Progress("pushed " + std::to_string(round.pushed) + " commits");
      return Status::Ok();
    };
    Status walked = s.CommitsAfter(*server_heads, [&](const Commit& commit) {
      if (batch.size() == kMaxBatchCommits || (!batch.empty() && batch_bytes + commit.signed_bytes().size() > kMaxBatchBytes)) {
        sent = flush();
        if (!sent.ok()) return false;
      }
      batch.push_back(commit.signed_bytes());
      batch_bytes += commit.signed_bytes().size();
      return true;
    });
    if (walked.ok() && sent.ok()) sent = flush();
    SAMSYNC_RETURN_IF_ERROR(walked);
    SAMSYNC_RETURN_IF_ERROR(sent);
  }
  phase("push");

  // 3. Pull what we lack until the server has no more.
  while (true) {
    SAMSYNC_ASSIGN_OR_RETURN(auto heads, s.Heads());
    capnp::MallocMessageBuilder message;
    auto pull = NewRequest(message).initPull();
    WriteSeen(pull.initHave(static_cast<unsigned>(heads.size())), heads);
    pull.setMaxCommits(kMaxBatchCommits);
    pull.setMaxBytes(kMaxBatchBytes);
    SAMSYNC_ASSIGN_OR_RETURN(auto reply, connection.Ask(message));
    if (!reply.root().isCommits()) return Status::Corruption("the sync server answered a pull with something else");
    auto batch = reply.root().getCommits();
    auto list = batch.getCommits();
    if (list.size() == 0 && !batch.getMore()) break;  // nothing new: no write transaction (and no fsync) here
    unsigned next = 0;
    auto imported = s.ImportCommits([&]() -> Result<std::optional<Commit>> {
      if (next == list.size()) return std::optional<Commit>();
      auto data = list[next++];
      SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode({data.begin(), data.size()}));
      return std::optional<Commit>(std::move(commit));
    });
    if (!imported.ok()) return imported.status().WithContext("a commit from the sync server");
    round.pulled += list.size();
    round.merged += imported->applied;
    Progress("pushed " + std::to_string(round.pushed) + ", pulled " + std::to_string(round.pulled) + " commits");
    if (!batch.getMore()) break;
    if (list.size() == 0) return Status::Corruption("the sync server said there was more but sent nothing");
  }
  Progress("");
  if (::isatty(STDERR_FILENO) == 1) std::cerr << "\r";
  phase("pull");

  // 4. Witness: the city's log must extend what this machine saw last; then cosign it.
  SAMSYNC_ASSIGN_OR_RETURN(round.witnessed, Witness(s, connection, evidence_dir));
  phase("witness");

  SAMSYNC_ASSIGN_OR_RETURN(round.summary, s.Summary());
  phase("summary");
  round.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return round;
}

nlohmann::json RoundJson(const ServerOptions& o, const Round& r) {
  return {{"server", o.server},
          {"pushed", r.pushed},
          {"alreadyOnServer", r.duplicates},
          {"rejected", r.rejected},
          {"pulled", r.pulled},
          {"merged", r.merged},
          {"conflicts", r.summary.conflicts},
          {"waiting", r.summary.waiting},
          {"stateHash", r.summary.state_hash.ToHex()},
          {"versionVector", FormatVersionVector(r.summary.heads)},
          {"checkpoint",
           {{"origin", r.witnessed.checkpoint.origin},
            {"size", r.witnessed.checkpoint.size},
            {"root", r.witnessed.checkpoint.root.ToHex()},
            {"previousSize", r.witnessed.previous_size},
            {"cosigners", r.witnessed.cosigners},
            {"ms", r.phases.at("witness")}}},
          {"ms", r.ms},
          {"phasesMs", r.phases}};
}

int RunSync(Globals& g, const ServerOptions& o) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  auto started = std::chrono::steady_clock::now();
  auto opened = Connection::Open(**store, o);
  if (!opened.ok()) return Fail(opened.status());
  double connect_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  auto round = SyncRound(**store, **opened, g.store_dir + "/evidence");
  if (!round.ok()) return Fail(round.status());
  Round& r = *round;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (g.json) {
    // The whole process's time; connectAndHello: a fresh connection is made lazily, by
    // its first request.
    r.ms = static_cast<double>(ms);
    r.phases["connectAndHello"] = connect_ms + r.phases["hello"].get<double>();
    r.phases.erase("hello");
    PrintJson(RoundJson(o, r));
  } else {
    std::cout << "synced with " << o.server << " in " << ms << " ms\n"
              << "  pushed    " << r.pushed << " commits" << (r.duplicates ? " (" + std::to_string(r.duplicates) + " already there)" : "")
              << '\n'
              << "  refused   " << r.rejected << '\n'
              << "  pulled    " << r.pulled << " commits, " << r.merged << " new here\n"
              << "  conflicts " << r.summary.conflicts << (r.summary.conflicts ? " (see samsync conflicts)" : "") << '\n'
              << "  state     " << r.summary.state_hash.ToHex() << '\n'
              << "  city log  " << r.witnessed.checkpoint.size << " entries, consistent with the "
              << r.witnessed.previous_size << " this machine saw before; cosigned (" << r.witnessed.cosigners
              << " cosignatures before this one)\n";
  }
  return r.rejected == 0 ? kExitOk : kExitCheckFailed;
}

std::atomic<bool> stop_requested{false};  // lock-free: set by the signal handler
void RequestStop(int) { stop_requested = true; }

// Whether a round that failed so may be tried again: the server away, a reply lost or
// mangled on the way, the disk for a moment. Not a server caught showing another
// history (kBadSignature: the evidence is saved once, and people must look), nor a
// refusal of this machine or its protocol (kUnauthorised, kInvalidInput): those end
// `sync --every` as they end a one-off sync.
bool WorthRetrying(const Status& status) {
  switch (status.code()) {
    case Code::kBadSignature:
    case Code::kUnauthorised:
    case Code::kInvalidInput:
      return false;
    default:
      return true;
  }
}

// sync --every: one round every `every_s` seconds (from the start of one to the start
// of the next) over a connection kept open, until SIGINT or SIGTERM. A round that
// fails for a passing reason is reported on stderr and the next one reconnects: a
// server that is away for a while is waited for, not given up on; any other failure
// ends it (WorthRetrying). One line per round: a table row, or (--json) one JSON
// object per line, as `sync --json` prints it. The exit code is the last round's: 0
// when it exchanged everything, else what a one-off sync would exit with.
int RunSyncEvery(Globals& g, const ServerOptions& o, double every_s) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  struct sigaction action {};
  action.sa_handler = RequestStop;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(every_s));
  std::unique_ptr<Connection> connection;
  int last_code = kExitOk;
  uint64_t rounds = 0;
  if (!g.json) {
    std::cout << "syncing with " << o.server << " every " << every_s << " s until interrupted (Ctrl-C)\n" << std::flush;
  }
  for (auto next = std::chrono::steady_clock::now(); !stop_requested;) {
    if (!connection) {
      auto opened = Connection::Open(**store, o);
      if (!opened.ok()) return Fail(opened.status());  // a bad address or key: no round will do better
      connection = std::move(opened).value();
    }
    auto round = SyncRound(**store, *connection, g.store_dir + "/evidence");
    ++rounds;
    if (!round.ok() && stop_requested) break;  // cut short by the signal: not reported
    if (!round.ok() && !WorthRetrying(round.status())) return Fail(round.status());
    if (!round.ok()) {
      std::cerr << "samsync: sync round " << rounds << " failed (trying again in " << every_s
                << " s): " << round.status().message() << std::endl;
      connection.reset();
      last_code = ExitCodeFor(round.status());
    } else {
      last_code = round->rejected == 0 ? kExitOk : kExitCheckFailed;
      if (g.json) {
        std::cout << RoundJson(o, *round).dump() << std::endl;
      } else {
        std::cout << FormatTime(SystemClock().NowMs()) << "  pushed " << round->pushed << ", pulled " << round->pulled << " ("
                  << round->merged << " new here), conflicts " << round->summary.conflicts << ", city log "
                  << round->witnessed.checkpoint.size << " entries, " << std::fixed << std::setprecision(1)
                  << round->ms << " ms" << std::defaultfloat << std::endl;
      }
    }
    next += period;
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // a slow round does not make the next ones hurry
    while (!stop_requested && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(next - std::chrono::steady_clock::now(),
                                                                               std::chrono::milliseconds(50)));
    }
  }
  return last_code;
}

}  // namespace

void RegisterSyncCommands(CLI::App& app, Globals& globals, Handler& handler) {
  auto o = std::make_shared<ServerOptions>();
  CLI::App* sync = app.add_subcommand("sync", "exchange commits with the city's sync server: push, pull, merge");
  sync->fallthrough();  // the global options (--store, --key-file, --json) may follow the command
  AddServerOptions(*sync, *o);
  auto every = std::make_shared<double>(0);
  sync->add_option("--every", *every,
                   "keep syncing: a round every SECONDS over one kept connection, until Ctrl-C or SIGTERM (one line, "
                   "or one JSON object with --json, per round)")
      ->check(CLI::Range(0.001, 86400.0));
  sync->callback([&globals, &handler, o, every] {
    handler = [&globals, o, every] { return *every > 0 ? RunSyncEvery(globals, *o, *every) : RunSync(globals, *o); };
  });
}

}  // namespace samsync::cli
