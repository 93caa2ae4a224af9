# Local-only data of a district store. Nothing here is ever synced, exported or signed
# into shared history: it holds the link from a pseudonym to a person, and the store's
# own key material. Field numbers only grow.

@0xe6dcf11630d01f04;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

struct Person {
  childRef @0 :Data;        # 16-byte pseudonym used in synced records
  personnummer @1 :Text;    # YYYYMMDD-NNNN, checked with the Luhn digit
  name @2 :Text;
}

struct PersonAccess {       # one line of the access log of the identity table
  timeMs @0 :Int64;         # wall clock, milliseconds since the Unix epoch
  action @1 :Action;
  childRef @2 :Data;
  enum Action {
    added @0;
    lookedUp @1;
  }
}

# Kept unencrypted under the key "header" of the `meta` table: what is needed to derive
# the key before anything can be decrypted. Holds no secret and no personal data.
struct StoreHeader {
  magic @0 :Text;               # "samsync-store"
  formatVersion @1 :UInt32;     # 1
  keySource @2 :KeySource;
  salt @3 :Data;                # Argon2id salt (passphrase stores)
  opsLimit @4 :UInt64;          # Argon2id parameters, as crypto_pwhash takes them
  memLimit @5 :UInt64;
  wrappedKey @6 :Data;          # the data key, sealed under the key-encryption key:
                                # 24-byte nonce || XChaCha20-Poly1305 ciphertext
  enum KeySource {
    passphrase @0;
    keyFile @1;
  }
}

# Encrypted under the key "settings" of the `meta` table.
struct StoreSettings {
  district @0 :Text;
  pseudonymKey @1 :Data;        # 32 bytes: keys the child-reference hash
  createdMs @2 :Int64;
  cityWide @3 :Bool;            # the sync server's store: every district's commits, no
                                # local writes; `district` is empty
  transparencyLog @4 :Bool;     # the sync server's store: every commit it accepts is a
                                # leaf of its transparency log, signed with its device key
}

# Encrypted under the key "device" of the `meta` table: this device's own keys.
struct DeviceSecrets {
  signingSecret @0 :Data;       # Ed25519, libsodium's 64-byte form (seed ‖ public key)
  transportSecret @1 :Data;     # X25519 (32 bytes), for ZeroMQ CURVE
}

# Encrypted in the `clocks` table, beside each record and as each deleted record's
# tombstone: which writes hold each field's value (engine/include/samsync/merge.h).
# Devices are named by the store's own numbers (the `heads` table), never synced.
struct RecordClock {
  type @0 :UInt8;
  deleted @1 :Bool;
  dots @2 :List(Dot);            # the distinct writes named below, in order of first use
  fieldDots @3 :List(UInt16);    # per field ordinal: a count n, then n indices into dots
  deleteSeen @4 :List(DeviceSeq);
  deletedBy @5 :Dot;
}

struct Dot {                     # one commit: the write of a value
  device @0 :UInt32;
  seq @1 :UInt64;
  hlc @2 :UInt64;
}

struct DeviceSeq {
  device @0 :UInt32;
  seq @1 :UInt64;
}
