# The sync protocol between `samsync sync` (a ZeroMQ DEALER) and `samsync-server` (a
# ROUTER), over TCP with CURVE. One request, one reply; the client sends the next
# request after the reply. Every message carries the protocol version; a server
# refuses other versions with a reply saying so. Requests are idempotent: a client
# whose connection broke repeats or restarts, and nothing is lost or doubled.
# Field numbers only grow.

@0xe31e49053d887465;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

using History = import "history.capnp";

const syncProtocol :UInt32 = 1;

struct SyncRequest {
  protocol @0 :UInt32;
  union {
    hello @1 :Void;              # who am I to you, and what do you hold that I may see?
    push @2 :List(Data);         # SignedCommit messages the server lacks, in causal order
    pull @3 :Pull;
    checkpoint @4 :UInt64;       # the size of the log checkpoint this client saw last (0:
                                 # none): send the latest and a consistency proof from it
    cosign @5 :Cosign;           # this client, a witness, cosigns a checkpoint it checked
    prove @6 :Prove;             # is this commit in the log? an inclusion proof
    audit @7 :AuditPage;         # the log's commits in log order (auditors only)
    exchange @8 :Exchange;       # push, pull and checkpoint in one request (a sync round
                                 # after hello, or any round of a kept connection)
  }
}

# One round trip for what push, pull and checkpoint do one after the other, answered
# in that order: the push is merged and durable, then the pull and the checkpoint are
# read from the store it left.
struct Exchange {
  push @0 :List(Data);           # as push (may be empty; a writer's only)
  pull @1 :Pull;                 # as pull
  seenSize @2 :UInt64;           # as checkpoint
  cosign @3 :Cosign;             # (optional) a cosignature of a checkpoint this client
                                 # checked in an earlier round (a witness sends one round's
                                 # with the next): checked first, then kept in the push's
                                 # durable write, or alone when the push imports nothing
}

struct Cosign {
  size @0 :UInt64;               # the checkpoint's tree size
  line @1 :Text;                 # a tlog-cosignature line (without its final newline)
}

struct Prove {
  commit @0 :Data;               # its id (32 bytes)
  seenSize @1 :UInt64;           # the checkpoint this client saw last (0: none)
}

struct AuditPage {
  from @0 :UInt64;               # the first leaf index wanted; 0 starts a fetch
  size @1 :UInt64;               # the size of the checkpoint the reply to from = 0 gave:
                                 # no leaf at or past it is sent
  maxCommits @2 :UInt32;
  maxBytes @3 :UInt64;
}

struct Pull {
  have @0 :List(History.Seen);   # the client's heads: send what comes after them
  maxCommits @1 :UInt32;         # at most this many commits in the reply (the server
  maxBytes @2 :UInt64;           # also caps both)
}

struct SyncReply {
  protocol @0 :UInt32;
  union {
    hello @1 :HelloReply;
    pushed @2 :PushReply;
    commits @3 :CommitBatch;
    refused @4 :Text;            # the request is not served, and why
    checkpoint @5 :CheckpointReply;
    cosigned @6 :Void;           # the cosignature was checked and kept
    proof @7 :ProofReply;
    audit @8 :AuditReply;
    exchanged @9 :ExchangeReply;
  }
}

struct ExchangeReply {
  pushed @0 :PushReply;          # as the reply to push
  commits @1 :CommitBatch;       # as the reply to pull; `more`: pull again
  checkpoint @2 :CheckpointReply;  # the latest, after the push, as the reply to checkpoint
  cosignRefused @3 :Text;        # why the exchange's cosignature was not kept (empty: it
                                 # was, or there was none); a cosignature that fails its
                                 # check does not hold up the rest
}

struct CheckpointReply {
  note @0 :Text;                 # the signed checkpoint (C2SP tlog-checkpoint in a signed
                                 # note) with the cosignatures the server holds for it
  consistency @1 :List(Data);    # RFC 6962 proof from the asked size to this one (empty
                                 # when the asked size is 0, equal, or larger: the
                                 # client judges that)
}

struct ProofReply {
  index @0 :UInt64;              # the commit's leaf index
  inclusion @1 :List(Data);      # RFC 6962 inclusion proof in the checkpoint below
  checkpoint @2 :CheckpointReply;  # the latest, with consistency from `seenSize`
}

struct AuditReply {
  commits @0 :List(Data);        # SignedCommit messages of leaves from, from + 1, ...
  more @1 :Bool;
  rosters @2 :List(Data);        # every SignedRoster version the server installed (in
                                 # the reply to from = 0 only)
  published @3 :Text;            # (from = 0 only) a note signed by the log key stating
                                 # the state hash of the city view at the checkpoint's
                                 # size: "<origin> state\n<size>\n<state hash hex>\n"
  checkpoint @4 :Text;           # (from = 0 only) the latest checkpoint, with its
                                 # cosignatures: the fetch is of its leaves
}

struct HelloReply {
  role @0 :History.Role;         # what the roster says this client is
  district @1 :Text;             # its district (writers); empty for city-wide roles
  heads @2 :List(History.Seen);  # what the server holds of what this client may see
  rosterVersion @3 :UInt64;      # the roster the server checks against
}

struct PushReply {
  accepted @0 :UInt32;           # merged and durable before this reply was sent
  duplicates @1 :UInt32;         # held already
  waiting @2 :UInt32;            # held back until the commits they follow arrive
  rejected @3 :List(Rejection);  # never merged, with the reason
  heads @4 :List(History.Seen);  # the server's heads afterwards (as in HelloReply)
}

struct Rejection {
  commit @0 :Data;               # its id (32 bytes)
  reason @1 :Text;
}

struct CommitBatch {
  commits @0 :List(Data);        # SignedCommit messages, in causal order
  more @1 :Bool;                 # there is more after these: pull again
}
