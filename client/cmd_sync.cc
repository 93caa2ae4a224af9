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

// What a round leaves for the next one over the same connection (sync --every).
struct KeptState {
  bool greeted = false;        // hello was answered on this connection
  bool writer = false;         // as hello said
  VersionVector server_heads;  // what the server holds that this machine may see, as last told
  // The last checkpoint checked, not cosigned yet: it is saved first (SaveAndCosign).
  std::optional<Witnessed> to_cosign;
  // This machine's cosignature of the last checkpoint it saved, not sent yet: it
  // travels with the next round's exchange (or alone, at the end).
  std::optional<Cosignature> unsent;
  std::optional<Checkpoint> cosigned;  // the last checkpoint cosigned, not cosigned again
  std::optional<Witness> witness;      // as the last round left it
};

// Saves the checkpoint the last round checked (a durable write when it moved on), then
// cosigns it, once per checkpoint on a kept connection; the cosignature replaces an
// older one not sent yet. Never a cosignature of a checkpoint not saved: a witness
// that forgot one it cosigned could be shown a fork of it and cosign that too.
Status SaveAndCosign(Store& s, Witness& witness, KeptState& kept) {
  if (!kept.to_cosign) return Status::Ok();
  SAMSYNC_RETURN_IF_ERROR(witness.Save(s));
  Witnessed checked = std::move(*kept.to_cosign);
  kept.to_cosign.reset();
  // A witness loaded afresh (the roster changed) no longer holds it: not cosigned.
  if (!witness.SavedAs(checked.checkpoint)) return Status::Ok();
  if (!kept.cosigned || kept.cosigned->size != checked.checkpoint.size || kept.cosigned->root != checked.checkpoint.root) {
    SAMSYNC_ASSIGN_OR_RETURN(std::string line, s.CosignCheckpoint(checked.text));
    kept.unsent = Cosignature{checked.checkpoint.size, std::move(line)};
    kept.cosigned = checked.checkpoint;
  }
  return Status::Ok();
}

// The server's heads as a reply states them.
Result<VersionVector> ServerHeads(capnp::List<schema::Seen>::Reader heads) {
  auto read = ReadSeen(heads);
  if (!read.ok()) return Status::Corruption("the sync server sent a malformed version vector");
  return read;
}

// A pull of what comes after this machine's heads, at most one batch.
Status SetPull(Store& s, schema::Pull::Builder pull) {
  SAMSYNC_ASSIGN_OR_RETURN(auto heads, s.Heads());
  WriteSeen(pull.initHave(static_cast<unsigned>(heads.size())), heads);
  pull.setMaxCommits(kMaxBatchCommits);
  pull.setMaxBytes(kMaxBatchBytes);
  return Status::Ok();
}

// Counts a push's answer into `round`, prints its refusals, and takes its heads as
// the server's.
Status TakePushed(schema::PushReply::Reader pushed, Round& round, KeptState& kept) {
  round.pushed += pushed.getAccepted();
  round.duplicates += pushed.getDuplicates();
  for (auto rejection : pushed.getRejected()) {
    ++round.rejected;
    std::cerr << "samsync: the server refused a commit: " << rejection.getReason().cStr() << std::endl;
  }
  SAMSYNC_ASSIGN_OR_RETURN(kept.server_heads, ServerHeads(pushed.getHeads()));
  return Status::Ok();
}

// Merges a batch of pulled commits; each is the server's too.
Status TakePulled(Store& s, capnp::List<capnp::Data>::Reader list, Round& round, KeptState& kept) {
  if (list.size() == 0) return Status::Ok();  // nothing new: no write transaction (and no fsync) here
  unsigned next = 0;
  auto imported = s.ImportCommits([&]() -> Result<std::optional<Commit>> {
    if (next == list.size()) return std::optional<Commit>();
    auto data = list[next++];
    SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode({data.begin(), data.size()}));
    uint64_t& head = kept.server_heads[commit.author()];
    head = std::max(head, commit.seq());
    return std::optional<Commit>(std::move(commit));
  });
  if (!imported.ok()) return imported.status().WithContext("a commit from the sync server");
  round.pulled += list.size();
  round.merged += imported->applied;
  Progress("pushed " + std::to_string(round.pushed) + ", pulled " + std::to_string(round.pulled) + " commits");
  return Status::Ok();
}

// One sync over `connection`: hello (once per connection), then one exchange that
// pushes what the server lacks, pulls what this machine lacks and brings the latest
// checkpoint of the city's log, which the witness step checks. Whatever does not fit
// in the exchange goes before it (more to push) or after it (more to pull). With
// `cosign_now` (a one-off sync) the checkpoint is then saved and cosigned, and the
// cosignature sent alone. Otherwise (sync --every) it is saved and cosigned while the
// server works on the next round's exchange, and its cosignature travels with the
// round after that: the save's durable write is off the round's path. The server's
// refusals of single commits are counted (and printed), not errors.
Result<Round> SyncRound(Store& s, Connection& connection, const std::string& evidence_dir, KeptState& kept,
                        bool cosign_now) {
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
  if (!kept.greeted) {
    capnp::MallocMessageBuilder hello_message;
    NewRequest(hello_message).setHello();
    SAMSYNC_ASSIGN_OR_RETURN(auto hello, connection.Ask(hello_message));
    if (!hello.root().isHello()) return Status::Corruption("the sync server answered hello with something else");
    SAMSYNC_ASSIGN_OR_RETURN(kept.server_heads, ServerHeads(hello.root().getHello().getHeads()));
    kept.writer = hello.root().getHello().getRole() == schema::Role::WRITER;
    kept.greeted = true;
    phase("hello");
  }

  // 2. What the server lacks, in batches: every full one pushed alone, each
  // acknowledged once durable; the last goes with the exchange.
  std::vector<std::vector<uint8_t>> batch;
  if (kept.writer) {
    uint64_t batch_bytes = 0;
    Status sent;
    auto flush = [&]() -> Status {
      capnp::MallocMessageBuilder message;
      auto list = NewRequest(message).initPush(static_cast<unsigned>(batch.size()));
      for (unsigned i = 0; i < batch.size(); ++i) list.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
      SAMSYNC_ASSIGN_OR_RETURN(auto reply, connection.Ask(message));
      if (!reply.root().isPushed()) return Status::Corruption("the sync server answered a push with something else");
      SAMSYNC_RETURN_IF_ERROR(TakePushed(reply.root().getPushed(), round, kept));
      batch.clear();
      batch_bytes = 0;
      Progress("pushed " + std::to_string(round.pushed) + " commits");
      return Status::Ok();
    };
    // The server's heads before the walk: a push moves them.
    VersionVector after = kept.server_heads;
    Status walked = s.CommitsAfter(after, [&](const Commit& commit) {
      if (batch.size() == kMaxBatchCommits || (!batch.empty() && batch_bytes + commit.signed_bytes().size() > kMaxBatchBytes)) {
        sent = flush();
        if (!sent.ok()) return false;
      }
      batch.push_back(commit.signed_bytes());
      batch_bytes += commit.signed_bytes().size();
      return true;
    });
    SAMSYNC_RETURN_IF_ERROR(walked);
    SAMSYNC_RETURN_IF_ERROR(sent);
    phase("push");
  }

  // 3. The exchange: the last push, a pull, the latest checkpoint, and the cosignature
  // of the checkpoint the last round checked.
  SAMSYNC_ASSIGN_OR_RETURN(Witness witness, Witness::Load(s, kept.witness ? &*kept.witness : nullptr));
  kept.witness.reset();  // kept again once this round's check has passed
  capnp::MallocMessageBuilder message;
  auto exchange = NewRequest(message).initExchange();
  auto push = exchange.initPush(static_cast<unsigned>(batch.size()));
  for (unsigned i = 0; i < batch.size(); ++i) push.set(i, capnp::Data::Reader(batch[i].data(), batch[i].size()));
  SAMSYNC_RETURN_IF_ERROR(SetPull(s, exchange.initPull()));
  exchange.setSeenSize(witness.seen_size());
  std::optional<Cosignature> sent = std::move(kept.unsent);
  kept.unsent.reset();
  if (sent) SetCosign(exchange.initCosign(), *sent);
  SAMSYNC_ASSIGN_OR_RETURN(auto reply, connection.Ask(message, [&] { return SaveAndCosign(s, witness, kept); }));
  if (!reply.root().isExchanged()) return Status::Corruption("the sync server answered an exchange with something else");
  auto exchanged = reply.root().getExchanged();
  if (sent && exchanged.getCosignRefused().size() > 0) {
    // Said, not fatal: the sync itself went through. The checkpoint this round brings
    // is cosigned afresh, even if it is the same one.
    std::cerr << "samsync: the sync server did not keep this machine's cosignature of its log's checkpoint of size "
              << sent->size << " (" << exchanged.getCosignRefused().cStr()
              << "); the next checkpoint is cosigned again; if this repeats, tell the city's IT admin" << std::endl;
    kept.cosigned.reset();
  }
  SAMSYNC_RETURN_IF_ERROR(TakePushed(exchanged.getPushed(), round, kept));
  phase("exchange");
  auto pulled = exchanged.getCommits();
  SAMSYNC_RETURN_IF_ERROR(TakePulled(s, pulled.getCommits(), round, kept));
  phase("merge");

  // 4. Witness: the city's log must extend what this machine saw last; it is saved and
  // cosigned now (one-off) or during the next exchange.
  SAMSYNC_ASSIGN_OR_RETURN(round.witnessed, witness.Check(exchanged.getCheckpoint(), evidence_dir));
  kept.to_cosign = round.witnessed;
  if (cosign_now) SAMSYNC_RETURN_IF_ERROR(SaveAndCosign(s, witness, kept));
  kept.witness = std::move(witness);
  phase("witness");

  // 5. Pull the rest, when the exchange could not carry it all.
  for (bool more = pulled.getMore(); more;) {
    capnp::MallocMessageBuilder pull_message;
    SAMSYNC_RETURN_IF_ERROR(SetPull(s, NewRequest(pull_message).initPull()));
    SAMSYNC_ASSIGN_OR_RETURN(auto answer, connection.Ask(pull_message));
    if (!answer.root().isCommits()) return Status::Corruption("the sync server answered a pull with something else");
    auto batch_pulled = answer.root().getCommits();
    if (batch_pulled.getCommits().size() == 0 && batch_pulled.getMore()) {
      return Status::Corruption("the sync server said there was more but sent nothing");
    }
    SAMSYNC_RETURN_IF_ERROR(TakePulled(s, batch_pulled.getCommits(), round, kept));
    more = batch_pulled.getMore();
  }
  Progress("");
  if (::isatty(STDERR_FILENO) == 1) std::cerr << "\r";
  if (pulled.getMore()) phase("pull");

  if (cosign_now && kept.unsent) {
    SAMSYNC_RETURN_IF_ERROR(SendCosignature(connection, *kept.unsent));
    kept.unsent.reset();
    phase("cosign");
  }

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
  KeptState kept;
  auto round = SyncRound(**store, **opened, g.store_dir + "/evidence", kept, /*cosign_now=*/true);
  if (!round.ok()) return Fail(round.status());
  Round& r = *round;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (g.json) {
    // The whole process's time; connectAndHello: a fresh connection is made lazily, by
    // its first request.
    r.ms = static_cast<double>(ms);
    r.phases["connectAndHello"] = connect_ms + r.phases.value("hello", 0.0);
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
              << " cosignature" << (r.witnessed.cosigners == 1 ? "" : "s") << " before this one)\n";
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
  KeptState kept;  // a new connection greets again; an unsent cosignature stays valid
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
      kept.greeted = false;
    }
    auto round = SyncRound(**store, *connection, g.store_dir + "/evidence", kept, /*cosign_now=*/false);
    ++rounds;
    if (!round.ok() && stop_requested) {  // cut short by the signal: not reported
      connection.reset();  // its reply may still come: the connection is not used again
      break;
    }
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
  // The last checkpoint, saved and cosigned, and its cosignature, which no next round
  // will carry (when the last round reached the server: a server away now is not
  // waited for).
  if (kept.witness) {
    if (Status saved = SaveAndCosign(**store, *kept.witness, kept); !saved.ok()) {
      std::cerr << "samsync: the last checkpoint was not saved, so not cosigned: " << saved.message() << std::endl;
    }
  }
  if (connection && kept.unsent) {
    if (Status sent = SendCosignature(*connection, *kept.unsent); !sent.ok()) {
      std::cerr << "samsync: the last cosignature was not sent: " << sent.message() << std::endl;
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
