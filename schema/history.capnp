# The signed change history and the city's roster: what is signed, hashed and later
# sent. Every signed or hashed struct is encoded canonically (Cap'n Proto canonical
# form: one segment, no far pointers, preorder, truncated trailing zeros) before it is
# hashed or signed. Field numbers only grow.

@0x9071f7c30df416dc;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

using Records = import "records.capnp";

# --- Roster -------------------------------------------------------------------------

enum Role {
  writer @0;    # a district device: writes its own district's records
  central @1;   # the central office: reads the citywide view
  auditor @2;   # the city audit office: reads the full signed history
  admin @3;     # the city's IT admin
  server @4;    # the city's sync server: its signing key signs the transparency log's
                # checkpoints, its transport key is the one districts connect to
}

struct RosterEntry {
  signingKey @0 :Data;       # Ed25519 public key (32 bytes): signs commits
  transportKey @1 :Data;     # X25519 public key (32 bytes): ZeroMQ CURVE
  district @2 :Text;         # canonical district name; empty for city-wide roles
  role @3 :Role;
  label @4 :Text;            # what the admin calls the device ("Farsta mottagning 2")
  addedMs @5 :Int64;         # when it was added (ms since the Unix epoch)
  revokedMs @6 :Int64;       # 0 = active; else commits it signed from this time on are invalid
}

# The list of who may do what. Each change is a new version, signed by the city's
# root key; a version never replaces a newer one.
struct Roster {
  city @0 :Text;             # e.g. "stockholm.se"
  version @1 :UInt64;        # starts at 1, +1 per change
  issuedMs @2 :Int64;
  rootKey @3 :Data;          # the city's root Ed25519 public key (32 bytes)
  entries @4 :List(RosterEntry);   # revoked entries stay, with revokedMs set
}

# Ed25519 by the root key over "samsync roster v1\n" ‖ canonical(Roster).
struct SignedRoster {
  roster @0 :Data;           # canonical encoding of a Roster
  signature @1 :Data;        # 64 bytes
}

# --- Commits ------------------------------------------------------------------------

# One change to one record. `set` carries the record (type, id, district and values);
# only the fields named in `fields` are written by this op, so an update touches the
# fields it changed and nothing else.
struct Op {
  union {
    set @0 :Records.Record;
    delete :group {
      type @1 :UInt8;        # the record type's tag
      id @2 :Data;           # 16 bytes
    }
  }
  fields @3 :List(UInt16);   # for set: ordinals (code order) of the fields written
}

# One user action: one local transaction, one signature.
struct Commit {
  formatVersion @0 :UInt32;  # 1
  author @1 :Data;           # the device's Ed25519 public key (32 bytes)
  district @2 :Text;
  seq @3 :UInt64;            # this device's sequence number, from 1, no gaps
  parent @4 :Data;           # commit id of this device's commit seq-1; empty for seq 1
  hlc @5 :UInt64;            # hybrid logical clock: milliseconds << 16 | counter
  ops @6 :List(Op);
  note @7 :Text;             # what the user did, e.g. "import contact skolor.csv"
  seen @8 :List(Seen);       # the other devices' commits this device held when it made
                             # this one: its causal past. Sorted by device key, never
                             # this commit's own author; absent devices were not seen.
}

# "All commits of `device` up to `seq`": one entry of a version vector.
struct Seen {
  device @0 :Data;           # Ed25519 public key (32 bytes)
  seq @1 :UInt64;            # >= 1
}

# The commit id is SHA-256 of `commit` (the canonical bytes of a Commit). The
# signature is Ed25519 by `author` over "samsync commit v1\n" ‖ those bytes.
struct SignedCommit {
  commit @0 :Data;
  signature @1 :Data;        # 64 bytes
}
