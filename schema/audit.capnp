# Audit bundles (`samsync audit fetch`): the city's whole signed history as its sync
# server's transparency log holds it, for an auditor to verify offline
# (`samsync audit verify`) without trusting the server.
#
# An audit bundle file is a sequence of standard framed Cap'n Proto messages (as
# bundle.capnp), each message's root an AuditEntry, in this order: exactly one header;
# one or more rosters (every version the server installed, oldest first); exactly one
# checkpoint; exactly one state statement; the log's commits in leaf order, exactly as
# many as the checkpoint's tree size; exactly one end. The stock tool reads it:
#   capnp decode -I/usr/include schema/audit.capnp AuditEntry < city.audit
# Field numbers only grow.

@0xb6f0f0b52e0d6b1a;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

using History = import "history.capnp";

struct AuditEntry {
  union {
    header @0 :AuditHeader;          # the first entry, and only the first
    roster @1 :History.SignedRoster; # a roster version, as signed by the city's root key
    checkpoint @2 :Text;             # the signed checkpoint (C2SP tlog-checkpoint in a
                                     # signed note) with every cosignature the server held
    statement @3 :Text;              # the state statement (engine/include/samsync/witness.h)
                                     # signed by the log key, at the checkpoint's size
    commit @4 :History.SignedCommit; # leaf i of the log is the i-th commit entry: its
                                     # leaf data is the commit's id (32 bytes)
    end @5 :AuditEnd;                # the last entry
  }
}

struct AuditHeader {
  magic @0 :Text;            # "samsync-audit"
  formatVersion @1 :UInt32;  # 1
  server @2 :Text;           # where it was fetched from (tcp://HOST:PORT)
  fetchedMs @3 :Int64;       # when the fetch began (ms since the Unix epoch)
}

struct AuditEnd {
  commitCount @0 :UInt64;    # the number of commit entries before this one
}
