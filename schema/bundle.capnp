# Offline bundles: signed commits carried on a file (a USB stick, a mail attachment)
# from one machine to another when there is no network between them.
#
# A bundle file is a sequence of standard framed Cap'n Proto messages (the stream
# framing: u32 segment count - 1, u32 size of each segment in words, zero padding to
# 8 bytes, the segments), each message's root a BundleEntry, in this order: exactly
# one header, zero or more commits, exactly one end, then the end of the file. So the
# stock tool reads it:
#   capnp decode -I/usr/include schema/bundle.capnp BundleEntry < file.bundle
# docs/formats.md ("Bundles") says what a reader checks. Field numbers only grow.

@0xd8c9819ac4449bfb;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

using History = import "history.capnp";

struct BundleEntry {
  union {
    header @0 :BundleHeader;           # the first entry, and only the first
    commit @1 :History.SignedCommit;   # as stored: the canonical Commit and its signature
    end @2 :BundleEnd;                 # the last entry
  }
}

struct BundleHeader {
  magic @0 :Text;            # "samsync-bundle"
  formatVersion @1 :UInt32;  # 1
  district @2 :Text;         # the district whose history the bundle carries
  exporter @3 :Data;         # Ed25519 public key (32 bytes) of the exporting device
  createdMs @4 :Int64;       # when the export began (ms since the Unix epoch)
  base @5 :List(History.Seen);
  # The version vector the bundle was cut against: the receiver is assumed to hold
  # these commits, and the bundle holds commits after them. Sorted by device key,
  # each device once, every seq >= 1.
}

struct BundleEnd {
  commitCount @0 :UInt64;    # the number of commit entries before this one
  digest @1 :Data;
  # SHA-256 (32 bytes) over the raw bytes, framing included, of every message before
  # this one. The end entry itself is written canonically (one segment), so each of
  # its bytes is fixed by these two values.
}
