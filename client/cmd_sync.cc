// sync: push this machine's commits to the city's sync server and pull its
// district's (or, for central and auditor keys, the city's) commits back.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <zmq.hpp>

#include "cli.h"
#include "samsync/sync_protocol.h"

namespace samsync::cli {
namespace {

struct SyncOptions {
  std::string server;
  std::string server_key;
  int timeout_s = 30;
};

// One request, one reply, over a DEALER socket with CURVE.
class Connection {
 public:
  Connection(const Store& store, const SyncOptions& o, const PublicKey& server_key)
      : socket_(context_, zmq::socket_type::dealer), endpoint_(o.server), timeout_s_(o.timeout_s) {
    const TransportKey& keys = store.transport_key_pair();
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server_key.bytes.data(), 32));
    socket_.set(zmq::sockopt::curve_publickey, zmq::const_buffer(keys.public_key().bytes.data(), 32));
    socket_.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys.secret().data(), keys.secret().size()));
    socket_.set(zmq::sockopt::maxmsgsize, kMaxSyncMessageBytes);
    socket_.set(zmq::sockopt::rcvtimeo, timeout_s_ * 1000);
    socket_.connect(endpoint_);
  }

  Result<SyncMessage<schema::SyncReply>> Ask(capnp::MallocMessageBuilder& request) {
    std::vector<uint8_t> bytes = MessageBytes(request);
    try {
      socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
      zmq::message_t reply;
      if (!socket_.recv(reply)) {
        return Status(Code::kDisconnected,
                      "no answer from the sync server at " + endpoint_ + " within " + std::to_string(timeout_s_) +
                          " s: it is unreachable, or it does not admit this machine's key (is its roster up to date?); "
                          "nothing was lost, sync again later");
      }
      auto message = SyncMessage<schema::SyncReply>::Read({static_cast<const uint8_t*>(reply.data()), reply.size()});
      if (!message.ok()) return Status::Corruption("the sync server sent a malformed reply");
      if (message->root().getProtocol() != kSyncProtocol) {
        return Status::Invalid("the sync server speaks protocol " + std::to_string(message->root().getProtocol()) +
                               "; this samsync speaks " + std::to_string(kSyncProtocol) + ": update samsync");
      }
      if (message->root().isRefused()) {
        return Status(Code::kUnauthorised, std::string("the sync server refused: ") + message->root().getRefused().cStr());
      }
      return message;
    } catch (const zmq::error_t& error) {
      return Status(Code::kDisconnected, "cannot reach the sync server at " + endpoint_ + ": " + error.what());
    }
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  int timeout_s_;
};

capnp::MallocMessageBuilder& Request(capnp::MallocMessageBuilder& message) {
  message.initRoot<schema::SyncRequest>().setProtocol(kSyncProtocol);
  return message;
}

// A progress line on a terminal, overwritten in place; nothing when not a terminal.
void Progress(const std::string& line) {
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (terminal) std::cerr << "\r" << line << "\x1b[K" << std::flush;
}

int RunSync(Globals& g, const SyncOptions& o) {
  auto server_key = Bytes32::FromHex(o.server_key, "server key");
  if (!server_key.ok()) return Fail(server_key.status().WithContext("--server-key"));
  if (o.server.rfind("tcp://", 0) != 0) return Fail(Status::Invalid("--server must look like tcp://HOST:PORT"));
  auto store = OpenStore(g);
  if (!store.ok()) return Fail(store.status());
  Store& s = **store;
  auto started = std::chrono::steady_clock::now();
  Connection connection(s, o, *server_key);

  // 1. Hello: who the server takes us for, and what it holds that we may see.
  capnp::MallocMessageBuilder hello_message;
  Request(hello_message).getRoot<schema::SyncRequest>().setHello();
  auto hello = connection.Ask(hello_message);
  if (!hello.ok()) return Fail(hello.status());
  if (!hello->root().isHello()) return Fail(Status::Corruption("the sync server answered hello with something else"));
  auto server_heads = ReadSeen(hello->root().getHello().getHeads());
  if (!server_heads.ok()) return Fail(Status::Corruption("the sync server sent a malformed version vector"));
  bool writer = hello->root().getHello().getRole() == schema::Role::WRITER;

  // 2. Push what the server lacks, in batches, each acknowledged once durable.
  uint64_t pushed = 0, duplicates = 0, rejected = 0;
  if (writer) {
    std::vector<std::vector<uint8_t>> batch;
    uint64_t batch_bytes = 0;
    Status sent;
    auto flush = [&]() -> Status {
      if (batch.empty()) return Status::Ok();
      capnp::MallocMessageBuilder message;
      auto list = Request(message).getRoot<schema::SyncRequest>().initPush(static_cast<unsigned>(batch.size()));
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

  // 3. Pull what we lack until the server has no more.
  uint64_t pulled = 0, merged = 0;
  while (true) {
    auto heads = s.Heads();
    if (!heads.ok()) return Fail(heads.status());
    capnp::MallocMessageBuilder message;
    auto pull = Request(message).getRoot<schema::SyncRequest>().initPull();
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

  auto summary = s.Summary();
  if (!summary.ok()) return Fail(summary.status());
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
               {"ms", ms}});
  } else {
    std::cout << "synced with " << o.server << " in " << ms << " ms\n"
              << "  pushed    " << pushed << " commits" << (duplicates ? " (" + std::to_string(duplicates) + " already there)" : "")
              << '\n'
              << "  refused   " << rejected << '\n'
              << "  pulled    " << pulled << " commits, " << merged << " new here\n"
              << "  conflicts " << summary->conflicts << (summary->conflicts ? " (see samsync conflicts)" : "") << '\n'
              << "  state     " << summary->state_hash.ToHex() << '\n';
  }
  return rejected == 0 ? kExitOk : kExitCheckFailed;
}

}  // namespace

void RegisterSyncCommands(CLI::App& app, Globals& globals, Handler& handler) {
  auto o = std::make_shared<SyncOptions>();
  CLI::App* sync = app.add_subcommand("sync", "exchange commits with the city's sync server: push, pull, merge");
  sync->fallthrough();  // the global options (--store, --key-file, --json) may follow the command
  sync->add_option("--server", o->server, "the server, tcp://HOST:PORT")->required()->envname("SAMSYNC_SERVER");
  sync->add_option("--server-key", o->server_key, "the server's public key (64 hex characters, from the city's admin)")
      ->required()
      ->envname("SAMSYNC_SERVER_KEY");
  sync->add_option("--timeout", o->timeout_s, "seconds to wait for each answer")->capture_default_str();
  sync->callback([&globals, &handler, o] { handler = [&globals, o] { return RunSync(globals, *o); }; });
}

}  // namespace samsync::cli
