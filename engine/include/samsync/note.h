// Signed notes, checkpoints and cosignatures: the C2SP text formats the transparency
// log (tlog.h) publishes its tree heads in. Pure formatting and Ed25519: no I/O, no
// clock (a cosignature's time is passed in).
//
// c2sp.org/signed-note (§Format, §Signatures, §Ed25519 signatures, verifier keys).
// A note is
//     text                      valid UTF-8, no ASCII control character but '\n',
//                               ending in '\n' (it may hold empty lines)
//     "\n"                      the blank line; the *last* one in the note separates
//     "— NAME BASE64\n" ...     one or more signature lines: U+2014, a space, the key
//                               name, a space, base64(4-byte big-endian key ID ||
//                               signature bytes)
// Ed25519 signatures (type 0x01) are over exactly the text, its final '\n' included.
// Key names are non-empty, and hold no Unicode space and no '+'.
//     key ID = SHA-256(name || 0x0A || type byte || 32-byte public key)[:4]
//     vkey   = name "+" hex(key ID, 8 lowercase digits) "+" base64(type byte || public key)
// Base64 is RFC 4648 §4 with padding, decoded strictly (libsodium: no whitespace, no
// missing padding, no non-zero trailing bits).
//
// c2sp.org/tlog-checkpoint (§Note text). The text of a checkpoint note is
//     origin "\n"               non-empty
//     size "\n"                 ASCII decimal, no leading zero (a lone "0" for empty)
//     base64(root) "\n"         the RFC 6962 root, 32 bytes
//     extension "\n" ...        optional, opaque, each non-empty
//
// c2sp.org/tlog-cosignature (§Format, §Ed25519 signed message), Ed25519 only
// (signature type 0x04; the ML-DSA-44 type is not implemented). A cosignature is a note
// signature line whose bytes after the key ID are a timestamped_signature:
//     timestamp (8 bytes, big-endian, POSIX seconds, <= 2^63 - 1) || Ed25519 signature (64)
// over the message
//     "cosignature/v1\n" "time " decimal(timestamp) "\n" checkpoint text
// with key ID = SHA-256(name || 0x0A || 0x04 || public key)[:4]. The signed message
// does not name the cosigner, so one cosigner key must serve one cosigner name.
//
// Error codes: parsing a note, a signature line or a checkpoint (bytes from elsewhere)
// fails with kCorruption; parsing a vkey (a person's configuration) and every check of
// what the caller asks to sign or format fail with kInvalidInput; a signature that is
// missing, ambiguous or does not verify fails with kBadSignature. Every message is one
// line and names the key or line concerned.
//
// All functions are pure and may be called from any thread.
#ifndef SAMSYNC_NOTE_H_
#define SAMSYNC_NOTE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "samsync/keys.h"
#include "samsync/status.h"

namespace samsync {

// Bounds on untrusted notes, checked before anything else. The spec asks verifiers to
// accept at least 16 signatures; Go's sumdb/note stops at 100.
inline constexpr size_t kMaxNoteBytes = size_t{1} << 20;
inline constexpr size_t kMaxNoteSignatures = 100;

// Signature type identifier bytes (signed-note §Signature types).
inline constexpr uint8_t kNoteTypeEd25519 = 0x01;
inline constexpr uint8_t kNoteTypeCosignatureV1 = 0x04;  // timestamped Ed25519 (tlog-cosignature)

// The largest timestamp a cosignature may carry (tlog-cosignature §Format).
inline constexpr uint64_t kMaxCosignatureTimestamp = uint64_t{INT64_MAX};

// SHA-256(name || 0x0A || type || key)[:4], read big-endian.
uint32_t NoteKeyId(std::string_view name, uint8_t type, const PublicKey& key);

// OK if `name` can name a key: non-empty, valid UTF-8, no Unicode space, no '+', no
// ASCII control character. kInvalidInput otherwise.
Status CheckNoteKeyName(std::string_view name);
// OK if `text` can be a note's text: at most kMaxNoteBytes, valid UTF-8, no ASCII
// control character but '\n', ending in '\n'. kInvalidInput otherwise.
Status CheckNoteText(std::string_view text);

// A key that verifies note signatures: who (name), which key (key ID) and how (type).
// A value type.
struct NoteVerifierKey {
  std::string name;
  uint32_t key_id = 0;
  uint8_t type = kNoteTypeEd25519;  // kNoteTypeEd25519 or kNoteTypeCosignatureV1
  PublicKey key;

  // A log's (or any note signer's) key, type 0x01. Fails with kInvalidInput on a bad name.
  static Result<NoteVerifierKey> Ed25519(std::string_view name, const PublicKey& key);
  // A witness's key, type 0x04. Fails with kInvalidInput on a bad name.
  static Result<NoteVerifierKey> Cosigner(std::string_view name, const PublicKey& key);
  // Parses a vkey ("example.com/foo+530d903a+AekyeRrm…"). Fails with kInvalidInput
  // naming the problem: not three '+'-separated parts, a bad name, a key ID that is not
  // 8 lowercase hex digits, bad base64, a type other than 0x01/0x04, a key that is not
  // 32 bytes, or a key ID that does not match the name and key.
  static Result<NoteVerifierKey> Parse(std::string_view vkey);
  // The vkey text; Parse(Format()) gives this key back.
  std::string Format() const;
  // "name+keyid": how messages name a key (as Go's sumdb/note does).
  std::string Label() const;

  bool operator==(const NoteVerifierKey&) const = default;
};

// One signature line, parsed but not verified.
struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  std::vector<uint8_t> signature;  // the bytes after the key ID (64 for Ed25519, 72 for a cosignature)

  bool operator==(const NoteSignature&) const = default;
};

struct Note {
  std::string text;  // with its final '\n', without the blank line
  std::vector<NoteSignature> signatures;

  bool operator==(const Note&) const = default;
};

// Parses a signed note, checking its form only (no signature is verified). Strict and
// bounded: at most kMaxNoteBytes and kMaxNoteSignatures, valid UTF-8, no control
// character but '\n', a blank line, every line after the last blank line a well-formed
// signature line with a valid name and a signature of at least one byte, the note
// ending in '\n'. Fails with kCorruption naming the first problem.
Result<Note> ParseNote(std::string_view note);
// The note's bytes: text, "\n", one line per signature. Fails with kInvalidInput if the
// text fails CheckNoteText, a name fails CheckNoteKeyName, a signature is empty, there
// are no signatures or more than kMaxNoteSignatures, or the note would exceed
// kMaxNoteBytes. ParseNote(FormatNote(n)) == n.
Result<std::string> FormatNote(const Note& note);

// "— name base64(key ID || signature)", without a newline.
std::string FormatNoteSignatureLine(const NoteSignature& signature);
// The inverse, for a line without its newline. Fails with kCorruption (no em dash and
// space, no name, a bad name, bad base64, fewer than 5 bytes).
Result<NoteSignature> ParseNoteSignatureLine(std::string_view line);

// Signs `text` (which must pass CheckNoteText) as the key `name` (type 0x01). Fails
// with kInvalidInput on a bad text or name.
Result<NoteSignature> SignNoteText(std::string_view text, std::string_view name, const SigningKey& key);
// The whole note: `text` signed by (`name`, `key`). Same failures as SignNoteText.
Result<std::string> SignNote(std::string_view text, std::string_view name, const SigningKey& key);

// Checks `key`'s signature on `note` (signed-note §Signatures): lines whose name and key
// ID are not both the key's are ignored; exactly one line must be the key's, and it must
// verify. Fails with kBadSignature ("the note has no signature by NAME+ID", "… has 2
// signatures by …", "the signature by NAME+ID does not verify"), or kInvalidInput if
// `key` is not of type 0x01.
Status VerifyNote(const Note& note, const NoteVerifierKey& key);

// A checkpoint's note text, parsed.
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root;
  std::vector<std::string> extensions;

  bool operator==(const Checkpoint&) const = default;
};

// The note text of `checkpoint`. Fails with kInvalidInput if the origin or an extension
// line is empty or holds a '\n', or the text fails CheckNoteText.
Result<std::string> FormatCheckpoint(const Checkpoint& checkpoint);
// Parses a checkpoint's note text (Note::text, after the note's signatures are
// verified). Fails with kCorruption naming the line: fewer than three lines, an empty
// line, a size that is not canonical decimal or does not fit 64 bits, a root that is not
// base64 of 32 bytes, or a text that fails CheckNoteText.
// FormatCheckpoint(ParseCheckpoint(t)) == t.
Result<Checkpoint> ParseCheckpoint(std::string_view text);

// The message a cosignature signs: "cosignature/v1\ntime T\n" + checkpoint_text.
std::string CosignatureMessage(std::string_view checkpoint_text, uint64_t timestamp);
// The cosignature of (`name`, `key`) on a checkpoint at `timestamp` (POSIX seconds).
// Fails with kInvalidInput if `checkpoint_text` does not parse as a checkpoint, `name`
// fails CheckNoteKeyName, or `timestamp` > kMaxCosignatureTimestamp. Append it to the
// checkpoint's note (Note::signatures) or send FormatNoteSignatureLine of it.
Result<NoteSignature> CosignCheckpoint(std::string_view checkpoint_text, std::string_view name,
                                       const SigningKey& key, uint64_t timestamp);
// Verifies one cosignature line on `checkpoint_text` by `cosigner` (type 0x04) and
// returns its timestamp. Whether the time is plausible (not in the future, recent) is
// the caller's policy. Fails with kBadSignature if the line is not the cosigner's (name
// or key ID differ), is not 72 bytes, has a timestamp above kMaxCosignatureTimestamp,
// or does not verify; kInvalidInput if `cosigner` is not of type 0x04.
Result<uint64_t> VerifyCosignature(std::string_view checkpoint_text, const NoteSignature& signature,
                                   const NoteVerifierKey& cosigner);
// Finds `cosigner`'s line in `note` (exactly one; lines of other keys are ignored) and
// verifies it as VerifyCosignature does; returns its timestamp.
Result<uint64_t> VerifyNoteCosignature(const Note& note, const NoteVerifierKey& cosigner);

}  // namespace samsync

#endif  // SAMSYNC_NOTE_H_
