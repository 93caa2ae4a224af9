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
  }
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
  }
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
