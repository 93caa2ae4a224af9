# The city admin folder (`samsync city init DIR`): local to the admin's machine, never
# synced. It holds the city's root Ed25519 key, sealed at rest exactly as a store seals
# its data key, and every roster version the key has signed. Field numbers only grow.
#
# Folder layout:
#   city.header              a CityHeader (below), a flat single-segment message
#   rosters/000001.roster    every SignedRoster version, never rewritten
#   roster.latest            a copy of the newest, to hand to devices and the server

@0xe1267aa9932400e2;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

# Plain (not encrypted): what is needed to derive the key-encryption key, and the
# public half of the root key. Holds no secret: the secret half is in `wrappedRootKey`.
struct CityHeader {
  magic @0 :Text;               # "samsync-city"
  formatVersion @1 :UInt32;     # 1
  city @2 :Text;                # e.g. "stockholm.se"
  keySource @3 :KeySource;
  salt @4 :Data;                # Argon2id salt (passphrase cities)
  opsLimit @5 :UInt64;          # Argon2id parameters, as crypto_pwhash takes them
  memLimit @6 :UInt64;
  rootKey @7 :Data;             # the root Ed25519 public key (32 bytes)
  wrappedRootKey @8 :Data;      # libsodium's 64-byte secret key (seed ‖ public), sealed
                                # under the key-encryption key with associated data
                                # "samsync/1/city-root-key": 24-byte nonce ‖
                                # XChaCha20-Poly1305 ciphertext
  createdMs @9 :Int64;

  enum KeySource {
    passphrase @0;
    keyFile @1;
  }
}
