// The sync server's loop: a ROUTER socket with CURVE, one request at a time, each
// answered after what it wrote is durable.
//
// Who may do what (the roster entry of the connection's transport key):
//  - a district writer pushes commits of its own district (its own and its
//    colleagues' devices') and pulls its district's commits;
//  - central, auditor and admin keys only pull, and they pull every district's
//    commits (synced records hold no personal identifiers: only pseudonyms).
// Every pushed commit is checked as `verify` checks it before anything is written;
// a refused commit is answered with its reason and never reaches the city view.
// Every accepted commit is a leaf of the store's transparency log: any client gets
// the latest signed checkpoint with a consistency proof, and cosigns it as a witness;
// any client may ask for an inclusion proof; auditors fetch the whole log.
//
// The log (`log`, the server's stderr) has one line per sync session (a machine's
// sessions that brought nothing: at most one an hour, counting the others), and one line
// for everything refused, naming the reason: a handshake of a key the roster does not
// admit (at most once a minute per key), a request refused whole, each commit refused
// (with its id, device and seq), commits pushed that were held already (a replay).
// Lines name machines by district, roster label and key prefix; never a record's
// content. A device that signed two different commits as one seq (a cloned device) is
// logged with both commit ids, and both signed commits are kept as evidence in
// `evidence_dir` (ListForkEvidence reads them back).
#ifndef SAMSYNC_SERVER_SYNC_SERVER_H_
#define SAMSYNC_SERVER_SYNC_SERVER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "samsync/store.h"
#include "samsync/sync_protocol.h"
#include "zap.h"

namespace samsync::server {

class SyncServer {
 public:
  // `store` is the city-wide store; `log` gets one line per sync session and one per
  // refusal; `evidence_dir` (created when first needed; empty: none kept) receives the
  // evidence of forked devices.
  SyncServer(Store& store, std::ostream& log, std::string evidence_dir = {});

  // Binds `endpoint` (tcp://127.0.0.1:0 picks a free port), calls `bound` with the
  // endpoint actually bound, and serves until `stop` is set (checked at least every
  // 200 ms, never in the middle of a request).
  Status Run(const std::string& endpoint, const std::function<void(const std::string&)>& bound,
             const std::atomic<bool>& stop);

  // Answers one request from the client with transport key `client` (exposed for
  // tests of the protocol without sockets).
  std::vector<uint8_t> Handle(const PublicKey& client, std::span<const uint8_t> request);

 private:
  struct Session {
    std::chrono::steady_clock::time_point started;
    uint64_t pushed = 0, pulled = 0, rejected = 0;
  };

  Status ReloadRoster();
  // Logs a handshake the ZAP handler refused, at most once a minute per key.
  void LogRefusedHandshake(const PublicKey& client);
  // A pushed commit: its bytes, and the commit they decode to until the import takes it
  // (decoded once: a 1,000-op commit's SHA-256 and canonical check are not free).
  struct Offered {
    std::vector<uint8_t> bytes;
    std::optional<Commit> commit;
  };
  // Takes out of `offered` (each still decoded) the commits whose device's chain has a
  // gap before them (their predecessor neither on the server nor earlier in the push),
  // and the later commits of such devices, into `rejected`.
  void RefuseGaps(std::vector<Offered>& offered, std::vector<std::pair<Hash, std::string>>& rejected);
  // For a refused commit validly signed by its author: whether the server holds
  // another commit of that device as the same seq (a fork); if so logs it, keeps both
  // signed commits as evidence, and returns the reason to give the client.
  std::optional<std::string> CheckFork(const Commit& offered);
  void LogLine(const std::string& kind, const std::string& text);
  // The roster entry of transport key `client` if the roster (as last reloaded: the
  // server reloads it at each handshake and each request) admits it, listed and not
  // revoked; else nullptr.
  const RosterEntry* Admitted(const PublicKey& client);
  std::vector<uint8_t> Serve(const RosterEntry& entry, schema::SyncRequest::Reader request);
  // A refusal of the whole request, logged with who asked (who_).
  std::vector<uint8_t> Refuse(const std::string& reason);
  std::vector<uint8_t> Hello(const RosterEntry& entry);
  std::vector<uint8_t> Push(const RosterEntry& entry, capnp::List<capnp::Data>::Reader commits);
  std::vector<uint8_t> Pull(const RosterEntry& entry, schema::Pull::Reader pull);
  // Push, pull and checkpoint in one request (schema/sync.capnp, Exchange), with the
  // witness's cosignature of an earlier checkpoint.
  std::vector<uint8_t> Exchange(const RosterEntry& entry, schema::Exchange::Reader exchange);
  // What push and pull answer, into `out`; an error is a refusal of the whole request,
  // its message the reason. An empty push is no push, whoever sends it. A push that
  // imports anything keeps `cosignature` (checked) in the same durable write, and sets
  // `kept`.
  Status MergePush(const RosterEntry& entry, capnp::List<capnp::Data>::Reader commits, schema::PushReply::Builder out,
                   const Store::Cosignature* cosignature = nullptr, bool* cosignature_kept = nullptr);
  // A pull as asked, read whole before anything is served.
  struct PullAsked {
    VersionVector have;
    uint32_t max_commits = 0;
    uint64_t max_bytes = 0;
  };
  static Result<PullAsked> ReadPull(schema::Pull::Reader pull);
  Status ServePull(const RosterEntry& entry, const PullAsked& asked, schema::CommitBatch::Builder out);
  // The transparency log: the latest checkpoint with a consistency proof from the one
  // the client saw; a witness's cosignature; an inclusion proof; the audit fetch.
  std::vector<uint8_t> Checkpoint(uint64_t seen_size);
  std::vector<uint8_t> Cosign(const RosterEntry& entry, schema::Cosign::Reader cosign);
  std::vector<uint8_t> Prove(schema::Prove::Reader prove);
  std::vector<uint8_t> Audit(const RosterEntry& entry, schema::AuditPage::Reader page);
  // The devices whose commits `entry` may see: its district's writers, or all (nullptr).
  const std::set<PublicKey>* Visible(const RosterEntry& entry);
  Result<VersionVector> VisibleHeads(const RosterEntry& entry);
  // The session of `entry`'s machine, started now if none is open.
  Session& SessionOf(const RosterEntry& entry);
  void EndSession(const RosterEntry& entry);

  Store& store_;
  std::ostream& log_;
  std::string evidence_dir_;
  std::string who_;  // the machine the request being served comes from, as logs name it
  std::map<PublicKey, std::chrono::steady_clock::time_point> refused_handshakes_;  // last logged
  RosterView roster_;
  std::map<std::string, std::set<PublicKey>> district_devices_;  // per district, its writers
  std::map<PublicKey, Session> sessions_;                         // by transport key
  // A machine's sessions that brought nothing (no commit either way, none refused) are
  // logged at most once an hour, the line counting those left out since: a machine on
  // `sync --every 5` would otherwise add 720 lines an hour that say nothing.
  struct Quiet {
    std::chrono::steady_clock::time_point logged;  // its last session line
    uint64_t left_out = 0;                         // idle sessions not logged since
  };
  std::map<PublicKey, Quiet> quiet_;  // by transport key
  std::map<std::string, std::chrono::steady_clock::time_point> sync_recorded_;  // by district: its sync time last written
};

// A fork the server refused and kept evidence of (a device that signed two commits as
// one seq): `evidence_dir`/fork-<device hex>-<seq>/{held,offered}.commit.
struct ForkEvidence {
  PublicKey device;
  uint64_t seq = 0;
  Hash held, offered;  // the commit the server holds, the one it refused
  std::string folder;
};
// Every fork kept in `evidence_dir`, each re-checked (both commits decode, are signed by
// the device, share its seq and differ); a folder that does not hold such a pair is
// skipped. An empty list when the folder does not exist.
std::vector<ForkEvidence> ListForkEvidence(const std::string& evidence_dir);

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_SYNC_SERVER_H_
