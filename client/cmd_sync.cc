// sync: push this machine's commits to the city's sync server and pull its
// district's (or, for central and auditor keys, the city's) commits back.
#include <unistd.h>

#include <chrono>
#include <iostream>
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

int RunSync(Globals& g, const ServerOptions& o) {
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  Store& s = **store;
  auto started = std::chrono::steady_clock::now();
  // Where the time went, for --json: milliseconds since the previous mark.
  nlohmann::json phases = nlohmann::json::object();
  auto mark = started;
  auto phase = [&phases, &mark](const char* name) {
    auto now = std::chrono::steady_clock::now();
    double ms = std::chrono::duration<double, std::milli>(now - mark).count();
    phases[name] = ms;
    mark = now;
    return ms;
  };
  auto opened = Connection::Open(s, o);
  if (!opened.ok()) return Fail(opened.status());
  Connection& connection = **opened;

  // 1. Hello: who the server takes us for, and what it holds that we may see.
  capnp::MallocMessageBuilder hello_message;
  NewRequest(hello_message).setHello();
  auto hello = connection.Ask(hello_message);
  if (!hello.ok()) return Fail(hello.status());
  if (!hello->root().isHello()) return Fail(Status::Corruption("the sync server answered hello with something else"));
  auto server_heads = ReadSeen(hello->root().getHello().getHeads());
  if (!server_heads.ok()) return Fail(Status::Corruption("the sync server sent a malformed version vector"));
  bool writer = hello->root().getHello().getRole() == schema::Role::WRITER;
  phase("connectAndHello");

  // 2. Push what the server lacks, in batches, each acknowledged once durable.
  uint64_t pushed = 0, duplicates = 0, rejected = 0;
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
      pushed += result.getAccepted();
      duplicates += result.getDuplicates();
      for (auto rejection : result.getRejected()) {
        ++rejected;
        std::cerr << "samsync: the server refused a commit: " << rejection.getReason().cStr() << std::endl;
      }
      batch.clear();
      batch_bytes = 0;
      Progress("pushed " + std::to_string(pushed) + " commits");
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
    if (!walked.ok()) return Fail(walked);
    if (!sent.ok()) return Fail(sent);
  }
  phase("push");

  // 3. Pull what we lack until the server has no more.
  uint64_t pulled = 0, merged = 0;
  while (true) {
    auto heads = s.Heads();
    if (!heads.ok()) return Fail(heads.status());
    capnp::MallocMessageBuilder message;
    auto pull = NewRequest(message).initPull();
    WriteSeen(pull.initHave(static_cast<unsigned>(heads->size())), *heads);
    pull.setMaxCommits(kMaxBatchCommits);
    pull.setMaxBytes(kMaxBatchBytes);
    auto reply = connection.Ask(message);
    if (!reply.ok()) return Fail(reply.status());
    if (!reply->root().isCommits()) return Fail(Status::Corruption("the sync server answered a pull with something else"));
    auto batch = reply->root().getCommits();
    auto list = batch.getCommits();
    unsigned next = 0;
    auto imported = s.ImportCommits([&]() -> Result<std::optional<Commit>> {
      if (next == list.size()) return std::optional<Commit>();
      auto data = list[next++];
      SAMSYNC_ASSIGN_OR_RETURN(Commit commit, Commit::Decode({data.begin(), data.size()}));
      return std::optional<Commit>(std::move(commit));
    });
    if (!imported.ok()) return Fail(imported.status().WithContext("a commit from the sync server"));
    pulled += list.size();
    merged += imported->applied;
    Progress("pushed " + std::to_string(pushed) + ", pulled " + std::to_string(pulled) + " commits");
    if (!batch.getMore()) break;
    if (list.size() == 0) return Fail(Status::Corruption("the sync server said there was more but sent nothing"));
  }
  Progress("");
  if (::isatty(STDERR_FILENO) == 1) std::cerr << "\r";
  phase("pull");

  // 4. Witness: the city's log must extend what this machine saw last; then cosign it.
  auto witnessed = Witness(s, connection, g.store_dir + "/evidence");
  if (!witnessed.ok()) return Fail(witnessed.status());
  double witness_ms = phase("witness");

  auto summary = s.Summary();
  if (!summary.ok()) return Fail(summary.status());
  phase("summary");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (g.json) {
    PrintJson({{"server", o.server},
               {"pushed", pushed},
               {"alreadyOnServer", duplicates},
               {"rejected", rejected},
               {"pulled", pulled},
               {"merged", merged},
               {"conflicts", summary->conflicts},
               {"waiting", summary->waiting},
               {"stateHash", summary->state_hash.ToHex()},
               {"versionVector", FormatVersionVector(summary->heads)},
               {"checkpoint",
                {{"origin", witnessed->checkpoint.origin},
                 {"size", witnessed->checkpoint.size},
                 {"root", witnessed->checkpoint.root.ToHex()},
                 {"previousSize", witnessed->previous_size},
                 {"cosigners", witnessed->cosigners},
                 {"ms", witness_ms}}},
               {"ms", ms},
               {"phasesMs", phases}});
  } else {
    std::cout << "synced with " << o.server << " in " << ms << " ms\n"
              << "  pushed    " << pushed << " commits" << (duplicates ? " (" + std::to_string(duplicates) + " already there)" : "")
              << '\n'
              << "  refused   " << rejected << '\n'
              << "  pulled    " << pulled << " commits, " << merged << " new here\n"
              << "  conflicts " << summary->conflicts << (summary->conflicts ? " (see samsync conflicts)" : "") << '\n'
              << "  state     " << summary->state_hash.ToHex() << '\n'
              << "  city log  " << witnessed->checkpoint.size << " entries, consistent with the "
              << witnessed->previous_size << " this machine saw before; cosigned (" << witnessed->cosigners
              << " cosignatures before this one)\n";
  }
  return rejected == 0 ? kExitOk : kExitCheckFailed;
}

}  // namespace

void RegisterSyncCommands(CLI::App& app, Globals& globals, Handler& handler) {
  auto o = std::make_shared<ServerOptions>();
  CLI::App* sync = app.add_subcommand("sync", "exchange commits with the city's sync server: push, pull, merge");
  sync->fallthrough();  // the global options (--store, --key-file, --json) may follow the command
  AddServerOptions(*sync, *o);
  sync->callback([&globals, &handler, o] { handler = [&globals, o] { return RunSync(globals, *o); }; });
}

}  // namespace samsync::cli
