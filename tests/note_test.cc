// Signed notes, checkpoints and cosignatures (note.h): the published signed-note vectors
// reproduced byte for byte, round trips, and every malformed or tampered form refused
// with a message naming what is wrong.
#include "samsync/note.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace samsync {
namespace {

using nlohmann::json;

std::vector<uint8_t> Bytes(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string Hex(std::span<const uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::span<const uint8_t> AsBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

const json& SignedNoteVectors() {
  static const json vectors = [] {
    std::string path = std::string(SAMSYNC_VECTORS_DIR) + "/signed_note.json";
    std::ifstream in(path);
    if (!in) {
      ADD_FAILURE() << "cannot read the test vectors " << path;
      return json::object();
    }
    return json::parse(in);
  }();
  return vectors;
}

// A key from a fixed seed, so signatures are the same on every run.
SigningKey KeyFromSeed(uint8_t fill) {
  std::vector<uint8_t> seed(32, fill);
  return SigningKey::FromSeed(seed);
}

NoteVerifierKey VerifierFor(std::string_view name, const SigningKey& key) {
  auto verifier = NoteVerifierKey::Ed25519(name, key.public_key());
  EXPECT_TRUE(verifier.ok()) << verifier.status().message();
  return *verifier;
}

NoteVerifierKey CosignerFor(std::string_view name, const SigningKey& key) {
  auto verifier = NoteVerifierKey::Cosigner(name, key.public_key());
  EXPECT_TRUE(verifier.ok()) << verifier.status().message();
  return *verifier;
}

// Asserts that `result` failed with `code` and exactly `message`.
template <typename R>
void ExpectFailure(const R& result, Code code, const std::string& message) {
  const Status& status = [&]() -> const Status& {
    if constexpr (std::is_same_v<R, Status>) {
      return result;
    } else {
      return result.status();
    }
  }();
  EXPECT_EQ(status.code(), code) << status.message();
  EXPECT_EQ(status.message(), message);
}

// --- The published vectors ------------------------------------------------------------

TEST(SignedNoteVectorsTest, KeyIdsVkeysSignatureLinesAndNotes) {
  const json& vectors = SignedNoteVectors()["vectors"];
  ASSERT_EQ(vectors.size(), 3u);
  int signed_byte_for_byte = 0;
  for (const json& v : vectors) {
    SCOPED_TRACE(v["name"].get<std::string>());
    auto key = NoteVerifierKey::Parse(v["vkey"].get<std::string>());
    ASSERT_TRUE(key.ok()) << key.status().message();
    EXPECT_EQ(key->name, v["key_name"]);
    EXPECT_EQ(key->type, kNoteTypeEd25519);
    EXPECT_EQ(key->key.ToHex(), v["public_key"]);
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", key->key_id);
    EXPECT_EQ(hex, v["key_id"]);
    EXPECT_EQ(NoteKeyId(key->name, kNoteTypeEd25519, key->key), key->key_id);
    EXPECT_EQ(key->Format(), v["vkey"]);
    EXPECT_EQ(*NoteVerifierKey::Ed25519(key->name, key->key), *key);

    auto line = ParseNoteSignatureLine(v["signature_line"].get<std::string>());
    ASSERT_TRUE(line.ok()) << line.status().message();
    EXPECT_EQ(line->name, key->name);
    EXPECT_EQ(line->key_id, key->key_id);
    EXPECT_EQ(Hex(line->signature), v["raw_signature"]);
    EXPECT_EQ(FormatNoteSignatureLine(*line), v["signature_line"]);

    std::string note_bytes = v["note_bytes"];
    auto note = ParseNote(note_bytes);
    ASSERT_TRUE(note.ok()) << note.status().message();
    EXPECT_EQ(note->text, v["text"]);
    EXPECT_EQ(*FormatNote(*note), note_bytes);
    Status verified = VerifyNote(*note, *key);
    EXPECT_TRUE(verified.ok()) << verified.message();

    if (v.contains("secret_key_seed")) {
      SigningKey signer = SigningKey::FromSeed(Bytes(v["secret_key_seed"]));
      EXPECT_EQ(signer.public_key(), key->key);
      auto signature = SignNoteText(v["text"].get<std::string>(), key->name, signer);
      ASSERT_TRUE(signature.ok()) << signature.status().message();
      EXPECT_EQ(FormatNoteSignatureLine(*signature), v["signature_line"]);
      EXPECT_EQ(*SignNote(v["text"].get<std::string>(), key->name, signer), note_bytes);
      ++signed_byte_for_byte;
    }
  }
  EXPECT_EQ(signed_byte_for_byte, 1);
}

TEST(SignedNoteVectorsTest, TwoSignersOnOneNoteEachVerify) {
  const json& vectors = SignedNoteVectors()["vectors"];
  auto note = ParseNote(vectors[2]["note_bytes"].get<std::string>());
  ASSERT_TRUE(note.ok());
  ASSERT_EQ(note->signatures.size(), 2u);
  for (int i : {1, 2}) {
    auto key = NoteVerifierKey::Parse(vectors[i]["vkey"].get<std::string>());
    ASSERT_TRUE(key.ok());
    EXPECT_TRUE(VerifyNote(*note, *key).ok()) << key->name;
  }
  // A known key whose line is absent: the other signer's line is ignored.
  auto example = NoteVerifierKey::Parse(vectors[0]["vkey"].get<std::string>());
  ExpectFailure(VerifyNote(*note, *example), Code::kBadSignature,
                "the note has no signature by example.com/foo+530d903a");
}

TEST(SignedNoteVectorsTest, GoTestOpenInvalidSignatureIsRefused) {
  const json& negatives = SignedNoteVectors()["negative_vectors"];
  ASSERT_EQ(negatives.size(), 1u);
  const json& v = negatives[0];
  EXPECT_FALSE(v["valid"].get<bool>());
  auto key = NoteVerifierKey::Parse(v["vkey"].get<std::string>());
  ASSERT_TRUE(key.ok());
  std::string bytes = v["text"].get<std::string>() + "\n" + v["signature_line"].get<std::string>() + "\n";
  auto note = ParseNote(bytes);
  ASSERT_TRUE(note.ok()) << note.status().message();  // well formed, only wrong
  ExpectFailure(VerifyNote(*note, *key), Code::kBadSignature, "the signature by PeterNeumann+c74f20a3 does not verify");
}

// c2sp.org/signed-note's own example: the text has an empty line; only the last blank
// line of the note separates the signatures.
TEST(SignedNoteVectorsTest, SpecExampleTextWithAnEmptyLine) {
  std::string note =
      "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \xC3\xA8 subito sera.\n\n"
      "\xE2\x80\x94 quasimodo.example/salvatore "
      "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
  auto parsed = ParseNote(note);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->text,
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \xC3\xA8 subito sera.\n");
  ASSERT_EQ(parsed->signatures.size(), 1u);
  EXPECT_EQ(parsed->signatures[0].name, "quasimodo.example/salvatore");
  EXPECT_EQ(parsed->signatures[0].key_id, 0x367ba04bu);
  EXPECT_EQ(parsed->signatures[0].signature.size(), 64u);
  EXPECT_EQ(*FormatNote(*parsed), note);
}

// --- Round trips and tampering ---------------------------------------------------------

constexpr std::string_view kText = "stockholm.se/samsync\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

TEST(NoteTest, SignParseVerifyRoundTrip) {
  SigningKey log = KeyFromSeed(7);
  auto note_bytes = SignNote(kText, "stockholm.se/samsync", log);
  ASSERT_TRUE(note_bytes.ok()) << note_bytes.status().message();
  EXPECT_TRUE(note_bytes->starts_with(std::string(kText) + "\n\xE2\x80\x94 stockholm.se/samsync "));
  auto note = ParseNote(*note_bytes);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(note->text, kText);
  NoteVerifierKey key = VerifierFor("stockholm.se/samsync", log);
  EXPECT_TRUE(VerifyNote(*note, key).ok());
  // The signature is Ed25519 over exactly the text.
  ASSERT_EQ(note->signatures.size(), 1u);
  Signature expected = log.Sign(AsBytes(kText));
  EXPECT_EQ(note->signatures[0].signature, std::vector<uint8_t>(expected.begin(), expected.end()));
  // Vkey round trip.
  auto parsed = NoteVerifierKey::Parse(key.Format());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, key);
}

TEST(NoteTest, TamperedTextSignatureOrKeyFails) {
  SigningKey log = KeyFromSeed(7);
  NoteVerifierKey key = VerifierFor("stockholm.se/samsync", log);
  Note note = *ParseNote(*SignNote(kText, "stockholm.se/samsync", log));

  for (size_t i = 0; i < note.text.size() - 1; ++i) {
    Note tampered = note;
    tampered.text[i] ^= 0x01;
    ExpectFailure(VerifyNote(tampered, key), Code::kBadSignature,
                  "the signature by " + key.Label() + " does not verify");
  }
  for (size_t bit = 0; bit < 64 * 8; bit += 7) {
    Note tampered = note;
    tampered.signatures[0].signature[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(VerifyNote(tampered, key).code(), Code::kBadSignature) << "bit " << bit;
  }
  Note shorter = note;
  shorter.signatures[0].signature.pop_back();
  EXPECT_EQ(VerifyNote(shorter, key).code(), Code::kBadSignature);

  // Another key under the same name: its line is not this key's, so the note has none.
  NoteVerifierKey other = VerifierFor("stockholm.se/samsync", KeyFromSeed(8));
  ExpectFailure(VerifyNote(note, other), Code::kBadSignature,
                "the note has no signature by " + other.Label() + " (only one by another key named stockholm.se/samsync)");
  // The same key under another name.
  NoteVerifierKey renamed = VerifierFor("goteborg.se/samsync", log);
  EXPECT_EQ(VerifyNote(note, renamed).code(), Code::kBadSignature);
  // A line with the key's name and ID but a forged signature is verified, not skipped.
  Note forged = note;
  forged.signatures.insert(forged.signatures.begin(), NoteSignature{"other.example/log", 1, std::vector<uint8_t>(64, 1)});
  EXPECT_TRUE(VerifyNote(forged, key).ok());  // unknown keys are ignored
  forged.signatures.push_back(note.signatures[0]);
  ExpectFailure(VerifyNote(forged, key), Code::kBadSignature,
                "the note has 2 signatures by " + key.Label() + "; one was expected");
}

TEST(NoteTest, MalformedNotesAreRefusedWithClearMessages) {
  SigningKey log = KeyFromSeed(7);
  std::string good = *SignNote(kText, "stockholm.se/samsync", log);
  std::string line = good.substr(kText.size() + 1);  // "— name base64\n"

  ExpectFailure(ParseNote(std::string(kText) + line), Code::kCorruption,
                "the note has no blank line before its signatures");
  ExpectFailure(ParseNote(std::string(kText) + "\n"), Code::kCorruption, "the note has no signature lines");
  ExpectFailure(ParseNote(good.substr(0, good.size() - 1)), Code::kCorruption,
                "the note's last signature line does not end in a newline");
  ExpectFailure(ParseNote(std::string(kText) + "\n-- stockholm.se/samsync AAAAAAA=\n"), Code::kCorruption,
                "signature line 1: a signature line must start with an em dash (U+2014) and a space");
  ExpectFailure(ParseNote(std::string(kText) + "\n\xE2\x80\x94 stockholm.se/samsync\n"), Code::kCorruption,
                "signature line 1: a signature line needs a key name, a space and a base64 signature");

  // Base64: a bad character, missing padding, whitespace, too short a payload.
  std::string sig = line.substr(line.find(' ', 4) + 1);
  sig.pop_back();  // the newline
  auto with_sig = [&](const std::string& base64) {
    return std::string(kText) + "\n\xE2\x80\x94 stockholm.se/samsync " + base64 + "\n";
  };
  EXPECT_TRUE(ParseNote(with_sig(sig)).ok());
  std::string bad_char = sig;
  bad_char[5] = '*';
  ExpectFailure(ParseNote(with_sig(bad_char)), Code::kCorruption,
                "signature line 1: the signature by stockholm.se/samsync is not padded standard base64");
  ASSERT_EQ(sig.back(), '=');
  EXPECT_EQ(ParseNote(with_sig(sig.substr(0, sig.size() - 1))).status().code(), Code::kCorruption);
  EXPECT_EQ(ParseNote(with_sig(sig + " ")).status().code(), Code::kCorruption);
  EXPECT_EQ(ParseNote(with_sig("-_" + sig.substr(2))).status().code(), Code::kCorruption);  // URL-safe alphabet
  ExpectFailure(ParseNote(with_sig("AAAAAA==")), Code::kCorruption,
                "signature line 1: the signature by stockholm.se/samsync is 4 bytes; a key ID and a signature need at least 5");

  // Names.
  ExpectFailure(ParseNote(std::string(kText) + "\n\xE2\x80\x94 a+b " + sig + "\n"), Code::kCorruption,
                "signature line 1: key name \"a+b\" holds a '+'");
  ExpectFailure(ParseNote(std::string(kText) + "\n\xE2\x80\x94 a\xC2\xA0" "b " + sig + "\n"), Code::kCorruption,
                "signature line 1: key name \"a\xC2\xA0" "b\" holds a space");
  ExpectFailure(ParseNote(std::string(kText) + "\n\xE2\x80\x94  " + sig + "\n"), Code::kCorruption,
                "signature line 1: a key name must not be empty");

  // Characters anywhere in the note.
  ExpectFailure(ParseNote("a\tb\n\n" + line), Code::kCorruption,
                "the note holds control character 0x09 (at byte 1); only newlines are allowed");
  ExpectFailure(ParseNote("a\r\n\n" + line), Code::kCorruption,
                "the note holds control character 0x0d (at byte 1); only newlines are allowed");
  ExpectFailure(ParseNote("caf\xC3\n\n" + line), Code::kCorruption, "the note is not valid UTF-8 (at byte 3)");
  EXPECT_EQ(ParseNote("\xC0\xAF\n\n" + line).status().code(), Code::kCorruption);          // overlong '/'
  EXPECT_EQ(ParseNote("\xED\xA0\x80\n\n" + line).status().code(), Code::kCorruption);      // a surrogate
  EXPECT_EQ(ParseNote("\xF4\x90\x80\x80\n\n" + line).status().code(), Code::kCorruption);  // beyond U+10FFFF
  EXPECT_TRUE(ParseNote("\xF0\x9F\x8C\xB3 tr\xC3\xA4" "d\n\n" + line).ok());               // real UTF-8 is fine
}

TEST(NoteTest, BoundsOnSizeAndSignatureCount) {
  SigningKey log = KeyFromSeed(7);
  std::string line = SignNote(kText, "stockholm.se/samsync", log)->substr(kText.size() + 1);

  std::string many;
  for (size_t i = 0; i < kMaxNoteSignatures; ++i) many += line;
  auto hundred = ParseNote(std::string(kText) + "\n" + many);
  ASSERT_TRUE(hundred.ok()) << hundred.status().message();
  EXPECT_EQ(hundred->signatures.size(), kMaxNoteSignatures);
  ExpectFailure(ParseNote(std::string(kText) + "\n" + many + line), Code::kCorruption,
                "the note has more than 100 signature lines");

  std::string big(kMaxNoteBytes - line.size() - 1, 'x');
  big.back() = '\n';
  EXPECT_TRUE(ParseNote(big + "\n" + line).ok());  // exactly 1 MiB
  ExpectFailure(ParseNote("x" + big + "\n" + line), Code::kCorruption,
                "the note is 1048577 bytes; at most 1048576 are accepted");
  // Signing refuses what a verifier would refuse.
  EXPECT_EQ(SignNote("x" + big + big, "a", log).status().code(), Code::kInvalidInput);
  ExpectFailure(FormatNote(Note{"x" + big, hundred->signatures}), Code::kInvalidInput,
                "the note would exceed 1048576 bytes");
  Note too_many = *hundred;
  too_many.signatures.push_back(too_many.signatures[0]);
  ExpectFailure(FormatNote(too_many), Code::kInvalidInput, "a note holds at most 100 signatures");
}

TEST(NoteTest, SigningChecksTextAndName) {
  SigningKey key = KeyFromSeed(1);
  ExpectFailure(SignNoteText("no newline", "a", key), Code::kInvalidInput, "a note's text must end in a newline");
  ExpectFailure(SignNoteText("", "a", key), Code::kInvalidInput, "a note's text must end in a newline");
  ExpectFailure(SignNoteText("bell\a\n", "a", key), Code::kInvalidInput,
                "the text holds control character 0x07 (at byte 4); only newlines are allowed");
  ExpectFailure(SignNoteText("ok\n", "has space", key), Code::kInvalidInput, "key name \"has space\" holds a space");
  ExpectFailure(SignNoteText("ok\n", "", key), Code::kInvalidInput, "a key name must not be empty");
  // A text may hold empty lines, and even end in one: it still parses back whole.
  for (std::string text : {"a\n\nb\n", "a\n\n", "\n", "\xE2\x80\x94 looks like a signature\n\nx\n"}) {
    auto note = ParseNote(*SignNote(text, "a", key));
    ASSERT_TRUE(note.ok()) << note.status().message();
    EXPECT_EQ(note->text, text);
    EXPECT_TRUE(VerifyNote(*note, VerifierFor("a", key)).ok());
  }
  ExpectFailure(FormatNote(Note{"ok\n", {}}), Code::kInvalidInput, "a note needs at least one signature");
  ExpectFailure(FormatNote(Note{"ok\n", {NoteSignature{"a", 1, {}}}}), Code::kInvalidInput,
                "the signature by a is empty");
}

TEST(NoteVerifierKeyTest, MalformedVkeysAreRefused) {
  const std::string good = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
  ASSERT_TRUE(NoteVerifierKey::Parse(good).ok());
  ExpectFailure(NoteVerifierKey::Parse("example.com/foo+530d903a"), Code::kInvalidInput,
                "a verifier key must be NAME+KEYID+KEY");
  // The key-ID check: one hex digit off.
  ExpectFailure(NoteVerifierKey::Parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
                Code::kInvalidInput,
                "the key ID 530d903b of verifier key example.com/foo does not match its name and public key (530d903a)");
  // Another name with the same key and ID.
  EXPECT_EQ(NoteVerifierKey::Parse("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k").status().code(),
            Code::kInvalidInput);
  ExpectFailure(NoteVerifierKey::Parse("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
                Code::kInvalidInput, "the key ID of verifier key example.com/foo must be 8 lowercase hex digits");
  ExpectFailure(NoteVerifierKey::Parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2"),
                Code::kInvalidInput, "the key of verifier key example.com/foo is not padded standard base64");
  // Signature type 0x02 (ECDSA) is not supported; a key of 31 bytes is not Ed25519.
  ExpectFailure(NoteVerifierKey::Parse("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
                Code::kInvalidInput,
                "verifier key example.com/foo has signature type 0x02; only 0x01 (Ed25519) and 0x04 (cosignature) are supported");
  EXPECT_EQ(NoteVerifierKey::Parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3Q==").status().code(),
            Code::kInvalidInput);
  ExpectFailure(NoteVerifierKey::Parse("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"), Code::kInvalidInput,
                "verifier key: a key name must not be empty");
  EXPECT_EQ(NoteVerifierKey::Ed25519("a b", PublicKey{}).status().code(), Code::kInvalidInput);
}

// --- Checkpoints -----------------------------------------------------------------------

TEST(CheckpointTest, SpecExampleParsesAndFormatsBack) {
  std::string text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
  auto checkpoint = ParseCheckpoint(text);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(checkpoint->origin, "example.com/behind-the-sofa");
  EXPECT_EQ(checkpoint->size, 20852163u);
  EXPECT_EQ(checkpoint->root.ToHex(), "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62");
  EXPECT_TRUE(checkpoint->extensions.empty());
  EXPECT_EQ(*FormatCheckpoint(*checkpoint), text);
}

TEST(CheckpointTest, RoundTripWithExtensionsAndEdgeSizes) {
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{1000000}, UINT64_MAX}) {
    Checkpoint checkpoint{"stockholm.se/samsync", size, Sha256(AsBytes("root")), {"ext one", "\xC3\xA5"}};
    auto text = FormatCheckpoint(checkpoint);
    ASSERT_TRUE(text.ok()) << text.status().message();
    auto parsed = ParseCheckpoint(*text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, checkpoint);
  }
  ExpectFailure(FormatCheckpoint(Checkpoint{"", 1, {}, {}}), Code::kInvalidInput,
                "a checkpoint's origin must be one non-empty line");
  ExpectFailure(FormatCheckpoint(Checkpoint{"a\nb", 1, {}, {}}), Code::kInvalidInput,
                "a checkpoint's origin must be one non-empty line");
  ExpectFailure(FormatCheckpoint(Checkpoint{"a", 1, {}, {""}}), Code::kInvalidInput,
                "a checkpoint's extension lines must each be one non-empty line");
  EXPECT_EQ(FormatCheckpoint(Checkpoint{"a\tb", 1, {}, {}}).status().code(), Code::kInvalidInput);
}

TEST(CheckpointTest, MalformedCheckpointsAreRefused) {
  const std::string root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
  auto with_size = [&](const std::string& size) { return "log\n" + size + "\n" + root + "\n"; };
  const std::string not_decimal = "the checkpoint's tree size is not a decimal number without leading zeros";
  for (std::string size : {"007", "00", "+5", "-1", " 5", "5 ", "0x10", "1e3", "١"}) {
    ExpectFailure(ParseCheckpoint(with_size(size)), Code::kCorruption, not_decimal);
  }
  EXPECT_EQ(ParseCheckpoint(with_size("18446744073709551615"))->size, UINT64_MAX);
  ExpectFailure(ParseCheckpoint(with_size("18446744073709551616")), Code::kCorruption,
                "the checkpoint's tree size does not fit 64 bits");
  ExpectFailure(ParseCheckpoint(with_size("184467440737095516150")), Code::kCorruption, not_decimal);
  EXPECT_EQ(ParseCheckpoint(with_size("0"))->size, 0u);

  const std::string bad_root = "the checkpoint's root hash is not the base64 of 32 bytes";
  ExpectFailure(ParseCheckpoint("log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n"), Code::kCorruption, bad_root);
  ExpectFailure(ParseCheckpoint("log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n"), Code::kCorruption, bad_root);
  ExpectFailure(ParseCheckpoint("log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n"), Code::kCorruption,
                bad_root);  // non-zero trailing bits: not the canonical encoding
  ExpectFailure(ParseCheckpoint("log\n5\n" + root + "\n\n"), Code::kCorruption, "line 4 of the checkpoint is empty");
  ExpectFailure(ParseCheckpoint("\n5\n" + root + "\n"), Code::kCorruption, "line 1 of the checkpoint is empty");
  ExpectFailure(ParseCheckpoint("log\n5\n"), Code::kCorruption,
                "a checkpoint needs an origin, a tree size and a root hash line");
  ExpectFailure(ParseCheckpoint("log\n5\n" + root), Code::kCorruption,
                "checkpoint: a note's text must end in a newline");
  EXPECT_EQ(ParseCheckpoint("l\rg\n5\n" + root + "\n").status().code(), Code::kCorruption);
}

// --- Cosignatures ----------------------------------------------------------------------

std::string CheckpointText(uint64_t size) {
  return *FormatCheckpoint(Checkpoint{"stockholm.se/samsync", size, Sha256(AsBytes(std::to_string(size))), {}});
}

TEST(CosignatureTest, SpecExampleLineCarriesItsTimestamp) {
  // c2sp.org/tlog-cosignature's example cosignature, signed at "time 1679315147" (the
  // witness's public key is not published, so only the layout can be checked).
  auto line = ParseNoteSignatureLine(
      "\xE2\x80\x94 witness.example.com/w1 "
      "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==");
  ASSERT_TRUE(line.ok()) << line.status().message();
  EXPECT_EQ(line->key_id, 0x8d66cf3fu);
  ASSERT_EQ(line->signature.size(), 72u);
  uint64_t timestamp = 0;
  for (int i = 0; i < 8; ++i) timestamp = (timestamp << 8) | line->signature[i];
  EXPECT_EQ(timestamp, 1679315147u);
}

TEST(CosignatureTest, CosignVerifyRoundTripByteForByte) {
  SigningKey witness = KeyFromSeed(3);
  NoteVerifierKey cosigner = CosignerFor("farsta.stockholm.se/witness", witness);
  EXPECT_EQ(cosigner.type, kNoteTypeCosignatureV1);
  EXPECT_EQ(cosigner.key_id, NoteKeyId("farsta.stockholm.se/witness", 0x04, witness.public_key()));
  EXPECT_NE(cosigner.key_id, NoteKeyId("farsta.stockholm.se/witness", 0x01, witness.public_key()));
  auto parsed_vkey = NoteVerifierKey::Parse(cosigner.Format());
  ASSERT_TRUE(parsed_vkey.ok()) << parsed_vkey.status().message();
  EXPECT_EQ(*parsed_vkey, cosigner);

  std::string text = CheckpointText(42);
  EXPECT_EQ(CosignatureMessage(text, 1700000000), "cosignature/v1\ntime 1700000000\n" + text);
  auto cosignature = CosignCheckpoint(text, cosigner.name, witness, 1700000000);
  ASSERT_TRUE(cosignature.ok()) << cosignature.status().message();
  EXPECT_EQ(cosignature->name, cosigner.name);
  EXPECT_EQ(cosignature->key_id, cosigner.key_id);
  // timestamp (8 bytes, big-endian) || Ed25519 over the message.
  Signature expected = witness.Sign(AsBytes("cosignature/v1\ntime 1700000000\n" + text));
  std::vector<uint8_t> payload{0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00};
  payload.insert(payload.end(), expected.begin(), expected.end());
  EXPECT_EQ(cosignature->signature, payload);

  auto timestamp = VerifyCosignature(text, *cosignature, cosigner);
  ASSERT_TRUE(timestamp.ok()) << timestamp.status().message();
  EXPECT_EQ(*timestamp, 1700000000u);
  // Through its text form, as a district sends it to the server.
  auto line = ParseNoteSignatureLine(FormatNoteSignatureLine(*cosignature));
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(*VerifyCosignature(text, *line, cosigner), 1700000000u);
  // Timestamp 0 and the largest allowed.
  for (uint64_t t : {uint64_t{0}, kMaxCosignatureTimestamp}) {
    EXPECT_EQ(*VerifyCosignature(text, *CosignCheckpoint(text, cosigner.name, witness, t), cosigner), t);
  }
}

TEST(CosignatureTest, TamperedCosignaturesFail) {
  SigningKey witness = KeyFromSeed(3);
  NoteVerifierKey cosigner = CosignerFor("farsta.stockholm.se/witness", witness);
  std::string text = CheckpointText(42);
  NoteSignature cosignature = *CosignCheckpoint(text, cosigner.name, witness, 1700000000);
  const std::string does_not_verify = "the cosignature by " + cosigner.Label() + " does not verify";

  // Another checkpoint (a split view), and the same one with a changed byte.
  ExpectFailure(VerifyCosignature(CheckpointText(43), cosignature, cosigner), Code::kBadSignature, does_not_verify);
  std::string changed = text;
  changed[0] = 'S';
  ExpectFailure(VerifyCosignature(changed, cosignature, cosigner), Code::kBadSignature, does_not_verify);
  // Every bit of the timestamp and of the signature.
  for (size_t bit = 0; bit < 72 * 8; ++bit) {
    NoteSignature tampered = cosignature;
    tampered.signature[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(VerifyCosignature(text, tampered, cosigner).status().code(), Code::kBadSignature) << "bit " << bit;
  }
  NoteSignature top_bit = cosignature;
  top_bit.signature[0] |= 0x80;
  ExpectFailure(VerifyCosignature(text, top_bit, cosigner), Code::kBadSignature,
                "the cosignature by " + cosigner.Label() + " has a timestamp above 2^63 - 1");
  NoteSignature shorter = cosignature;
  shorter.signature.pop_back();
  ExpectFailure(VerifyCosignature(text, shorter, cosigner), Code::kBadSignature,
                "the cosignature by " + cosigner.Label() +
                    " is 71 bytes, not a timestamp and an Ed25519 signature (72)");
  // Another witness's key, and a key of the wrong type.
  NoteVerifierKey other = CosignerFor("farsta.stockholm.se/witness", KeyFromSeed(4));
  ExpectFailure(VerifyCosignature(text, cosignature, other), Code::kBadSignature,
                "the cosignature is by " + cosigner.Label() + ", not by " + other.Label());
  NoteVerifierKey plain = VerifierFor("farsta.stockholm.se/witness", witness);
  EXPECT_EQ(VerifyCosignature(text, cosignature, plain).status().code(), Code::kInvalidInput);

  // What may not be cosigned.
  ExpectFailure(CosignCheckpoint(text, cosigner.name, witness, kMaxCosignatureTimestamp + 1), Code::kInvalidInput,
                "a cosignature's timestamp must be below 2^63");
  ExpectFailure(CosignCheckpoint("not a checkpoint\n", cosigner.name, witness, 1), Code::kInvalidInput,
                "refusing to cosign: a checkpoint needs an origin, a tree size and a root hash line");
  EXPECT_EQ(CosignCheckpoint(text, "two words", witness, 1).status().code(), Code::kInvalidInput);
}

// The whole picture: the log signs a checkpoint, two districts cosign it, and an
// auditor verifies every signature from the note's bytes alone.
TEST(CosignatureTest, CheckpointNoteWithLogSignatureAndTwoCosignatures) {
  SigningKey log = KeyFromSeed(9), farsta = KeyFromSeed(10), kista = KeyFromSeed(11);
  std::string text = CheckpointText(1234);
  Note note{text, {*SignNoteText(text, "stockholm.se/samsync", log)}};
  note.signatures.push_back(*CosignCheckpoint(text, "farsta.stockholm.se", farsta, 1700000001));
  note.signatures.push_back(*CosignCheckpoint(text, "kista.stockholm.se", kista, 1700000002));
  auto bytes = FormatNote(note);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();

  auto parsed = ParseNote(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, note);
  EXPECT_TRUE(VerifyNote(*parsed, VerifierFor("stockholm.se/samsync", log)).ok());
  EXPECT_EQ(*VerifyNoteCosignature(*parsed, CosignerFor("farsta.stockholm.se", farsta)), 1700000001u);
  EXPECT_EQ(*VerifyNoteCosignature(*parsed, CosignerFor("kista.stockholm.se", kista)), 1700000002u);
  auto checkpoint = ParseCheckpoint(parsed->text);
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ(checkpoint->size, 1234u);

  // A district that did not cosign; the log's own line is no cosignature (its key ID is
  // computed with type 0x01).
  ExpectFailure(VerifyNoteCosignature(*parsed, CosignerFor("skarpnack.stockholm.se", KeyFromSeed(12))),
                Code::kBadSignature, "the note has no cosignature by " +
                                         CosignerFor("skarpnack.stockholm.se", KeyFromSeed(12)).Label());
  EXPECT_EQ(VerifyNoteCosignature(*parsed, CosignerFor("stockholm.se/samsync", log)).status().code(),
            Code::kBadSignature);
  // Cosigner lines do not pass for the log's signature, and keys are not interchangeable.
  EXPECT_EQ(VerifyNote(*parsed, VerifierFor("farsta.stockholm.se", farsta)).code(), Code::kBadSignature);
  EXPECT_EQ(VerifyNote(*parsed, CosignerFor("farsta.stockholm.se", farsta)).code(), Code::kInvalidInput);
  EXPECT_EQ(VerifyNoteCosignature(*parsed, VerifierFor("stockholm.se/samsync", log)).status().code(),
            Code::kInvalidInput);

  // The server swaps in another checkpoint text under the same signature lines.
  Note swapped = *parsed;
  swapped.text = CheckpointText(1235);
  EXPECT_EQ(VerifyNote(swapped, VerifierFor("stockholm.se/samsync", log)).code(), Code::kBadSignature);
  EXPECT_EQ(VerifyNoteCosignature(swapped, CosignerFor("kista.stockholm.se", kista)).status().code(),
            Code::kBadSignature);
}

// Found by fuzzing (tests/fuzz/corpus/note/regression-root-with-em-dash): libsodium's
// decoder read the bytes of an em dash as "///", so a root line that is not base64
// parsed, and FormatCheckpoint gave another text back.
TEST(CheckpointTest, RegressionBytesOutsideTheBase64AlphabetAreRefused) {
  ExpectFailure(ParseCheckpoint("log\n5\nA5BYxvLAy0ksUzsK\xE2\x80\x94" "4d8wPeKvMztUofYShogEc+4E=\n"), Code::kCorruption,
                "the checkpoint's root hash is not the base64 of 32 bytes");
  EXPECT_TRUE(ParseCheckpoint("log\n5\nA5BYxvLAy0ksUzsK///4d8wPeKvMztUofYShogEc+4E=\n").ok());
  EXPECT_EQ(ParseNoteSignatureLine("\xE2\x80\x94 log AAAA\xFF" "AAA=").status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace samsync
