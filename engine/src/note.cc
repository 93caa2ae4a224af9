#include "samsync/note.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <optional>

namespace samsync {
namespace {

// U+2014 EM DASH, then a space: how every signature line starts.
constexpr std::string_view kSignaturePrefix = "\xE2\x80\x94 ";
constexpr size_t kKeyIdBytes = 4;
constexpr size_t kEd25519SignatureBytes = 64;
constexpr size_t kCosignatureBytes = 8 + kEd25519SignatureBytes;

std::string HexKeyId(uint32_t key_id) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", key_id);
  return hex;
}

std::string HexByte(uint32_t byte) {
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02x", byte & 0xFF);
  return hex;
}

// "name+keyid": how messages name a key.
std::string KeyLabel(std::string_view name, uint32_t key_id) { return std::string(name) + "+" + HexKeyId(key_id); }

std::string EncodeBase64(std::span<const uint8_t> bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the terminating NUL
  return out;
}

// Strict RFC 4648 §4: the whole of `text`, padded, nothing ignored.
std::optional<std::vector<uint8_t>> DecodeBase64(std::string_view text) {
  // libsodium's decoder takes some bytes >= 0x80 for '/' (found by fuzzing: a root
  // line holding an em dash parsed), so the alphabet is checked here first.
  for (char c : text) {
    bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                    c == '/' || c == '=';
    if (!alphabet) return std::nullopt;
  }
  std::vector<uint8_t> out(text.size() / 4 * 3 + 3);
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

void AppendU64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t ReadBigEndian(const uint8_t* bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value = (value << 8) | bytes[i];
  return value;
}

std::span<const uint8_t> AsBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Decodes one UTF-8 code point at text[i], advancing i. False on a malformed sequence:
// truncated, overlong, a surrogate, or beyond U+10FFFF (as Go's utf8.DecodeRune).
bool NextCodePoint(std::string_view text, size_t& i, char32_t& code_point) {
  auto byte = [&](size_t at) { return static_cast<uint8_t>(text[at]); };
  uint8_t lead = byte(i);
  if (lead < 0x80) {
    code_point = lead;
    ++i;
    return true;
  }
  size_t length;
  char32_t minimum;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, minimum = 0x80, code_point = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, minimum = 0x800, code_point = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, minimum = 0x10000, code_point = lead & 0x07;
  } else {
    return false;
  }
  if (text.size() - i < length) return false;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return false;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) return false;
  i += length;
  return true;
}

// Unicode White_Space (what Go's unicode.IsSpace reports).
bool IsUnicodeSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// The problem with `text` as note bytes (UTF-8, no control character but '\n'), or
// nullopt. `what` names it in the message ("the note", "the text").
std::optional<std::string> CharacterProblem(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    char32_t c;
    if (!NextCodePoint(text, i, c)) return std::string(what) + " is not valid UTF-8 (at byte " + std::to_string(at) + ")";
    if (c < 0x20 && c != '\n') {
      return std::string(what) + " holds control character 0x" + HexByte(static_cast<uint32_t>(c)) +
             " (at byte " + std::to_string(at) + "); only newlines are allowed";
    }
  }
  return std::nullopt;
}

std::optional<std::string> NameProblem(std::string_view name) {
  if (name.empty()) return "a key name must not be empty";
  for (size_t i = 0; i < name.size();) {
    char32_t c;
    if (!NextCodePoint(name, i, c)) return "key name is not valid UTF-8";
    if (IsUnicodeSpace(c)) return "key name \"" + std::string(name) + "\" holds a space";
    if (c < 0x20) return "key name holds a control character";
    if (c == '+') return "key name \"" + std::string(name) + "\" holds a '+'";
  }
  return std::nullopt;
}

std::optional<std::string> TextProblem(std::string_view text) {
  if (text.size() > kMaxNoteBytes) {
    return "the text is " + std::to_string(text.size()) + " bytes; a note holds at most " +
           std::to_string(kMaxNoteBytes);
  }
  if (text.empty() || text.back() != '\n') return "a note's text must end in a newline";
  return CharacterProblem(text, "the text");
}

std::optional<std::string> SignatureLineProblem(std::string_view line, NoteSignature& out) {
  if (!line.starts_with(kSignaturePrefix)) return "a signature line must start with an em dash (U+2014) and a space";
  line.remove_prefix(kSignaturePrefix.size());
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return "a signature line needs a key name, a space and a base64 signature";
  std::string_view name = line.substr(0, space);
  std::string_view base64 = line.substr(space + 1);
  if (auto problem = NameProblem(name)) return problem;
  std::optional<std::vector<uint8_t>> bytes = DecodeBase64(base64);
  if (!bytes) return "the signature by " + std::string(name) + " is not padded standard base64";
  if (bytes->size() <= kKeyIdBytes) {
    return "the signature by " + std::string(name) + " is " + std::to_string(bytes->size()) +
           " bytes; a key ID and a signature need at least 5";
  }
  out.name = std::string(name);
  out.key_id = static_cast<uint32_t>(ReadBigEndian(bytes->data(), kKeyIdBytes));
  out.signature.assign(bytes->begin() + kKeyIdBytes, bytes->end());
  return std::nullopt;
}

Result<NoteVerifierKey> MakeKey(std::string_view name, uint8_t type, const PublicKey& key) {
  if (auto problem = NameProblem(name)) return Status::Invalid(*problem);
  NoteVerifierKey out;
  out.name = std::string(name);
  out.type = type;
  out.key = key;
  out.key_id = NoteKeyId(name, type, key);
  return out;
}

// The one line of `note` signed by (`key.name`, `key.key_id`), or why there is none.
Result<const NoteSignature*> FindSignature(const Note& note, const NoteVerifierKey& key, std::string_view what) {
  const NoteSignature* found = nullptr;
  size_t count = 0;
  bool same_name_other_id = false;
  for (const NoteSignature& signature : note.signatures) {
    if (signature.name != key.name) continue;
    if (signature.key_id != key.key_id) {
      same_name_other_id = true;
      continue;
    }
    if (found == nullptr) found = &signature;
    ++count;
  }
  if (count == 0) {
    return Status(Code::kBadSignature,
                  "the note has no " + std::string(what) + " by " + key.Label() +
                      (same_name_other_id ? " (only one by another key named " + key.name + ")" : ""));
  }
  if (count > 1) {
    return Status(Code::kBadSignature, "the note has " + std::to_string(count) + " " + std::string(what) + "s by " +
                                           key.Label() + "; one was expected");
  }
  return found;
}

}  // namespace

uint32_t NoteKeyId(std::string_view name, uint8_t type, const PublicKey& key) {
  Sha256Hasher hasher;
  hasher.Update(AsBytes(name));
  const uint8_t separator[2] = {'\n', type};
  hasher.Update(separator);
  hasher.Update(key.span());
  Hash hash = hasher.Finish();
  return (uint32_t{hash.bytes[0]} << 24) | (uint32_t{hash.bytes[1]} << 16) | (uint32_t{hash.bytes[2]} << 8) |
         uint32_t{hash.bytes[3]};
}

Status CheckNoteKeyName(std::string_view name) {
  if (auto problem = NameProblem(name)) return Status::Invalid(*problem);
  return Status::Ok();
}

Status CheckNoteText(std::string_view text) {
  if (auto problem = TextProblem(text)) return Status::Invalid(*problem);
  return Status::Ok();
}

// --- Verifier keys -------------------------------------------------------------------

Result<NoteVerifierKey> NoteVerifierKey::Ed25519(std::string_view name, const PublicKey& key) {
  return MakeKey(name, kNoteTypeEd25519, key);
}

Result<NoteVerifierKey> NoteVerifierKey::Cosigner(std::string_view name, const PublicKey& key) {
  return MakeKey(name, kNoteTypeCosignatureV1, key);
}

Result<NoteVerifierKey> NoteVerifierKey::Parse(std::string_view vkey) {
  // The name holds no '+', so the first '+' ends it; base64 may hold '+'.
  size_t first = vkey.find('+');
  size_t second = first == std::string_view::npos ? first : vkey.find('+', first + 1);
  if (second == std::string_view::npos) return Status::Invalid("a verifier key must be NAME+KEYID+KEY");
  std::string_view name = vkey.substr(0, first);
  std::string_view hex = vkey.substr(first + 1, second - first - 1);
  std::string_view base64 = vkey.substr(second + 1);
  if (auto problem = NameProblem(name)) return Status::Invalid("verifier key: " + *problem);
  if (hex.size() != 8 || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return Status::Invalid("the key ID of verifier key " + std::string(name) + " must be 8 lowercase hex digits");
  }
  std::optional<std::vector<uint8_t>> bytes = DecodeBase64(base64);
  if (!bytes || bytes->empty()) {
    return Status::Invalid("the key of verifier key " + std::string(name) + " is not padded standard base64");
  }
  uint8_t type = (*bytes)[0];
  if (type != kNoteTypeEd25519 && type != kNoteTypeCosignatureV1) {
    return Status::Invalid("verifier key " + std::string(name) + " has signature type 0x" + HexByte(type) + "; only 0x01 (Ed25519) and 0x04 (cosignature) are supported");
  }
  auto key = PublicKey::FromBytes(std::span<const uint8_t>(*bytes).subspan(1), "the public key of a verifier key");
  if (!key.ok()) return key.status();
  NoteVerifierKey out;
  out.name = std::string(name);
  out.type = type;
  out.key = *key;
  out.key_id = NoteKeyId(name, type, out.key);
  if (HexKeyId(out.key_id) != hex) {
    return Status::Invalid("the key ID " + std::string(hex) + " of verifier key " + std::string(name) +
                           " does not match its name and public key (" + HexKeyId(out.key_id) + ")");
  }
  return out;
}

std::string NoteVerifierKey::Format() const {
  std::vector<uint8_t> bytes{type};
  bytes.insert(bytes.end(), key.bytes.begin(), key.bytes.end());
  return Label() + "+" + EncodeBase64(bytes);
}

std::string NoteVerifierKey::Label() const { return KeyLabel(name, key_id); }

// --- Notes -----------------------------------------------------------------------------

Result<Note> ParseNote(std::string_view note) {
  if (note.size() > kMaxNoteBytes) {
    return Status::Corruption("the note is " + std::to_string(note.size()) + " bytes; at most " +
                              std::to_string(kMaxNoteBytes) + " are accepted");
  }
  if (auto problem = CharacterProblem(note, "the note")) return Status::Corruption(*problem);
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return Status::Corruption("the note has no blank line before its signatures");
  Note out;
  out.text = std::string(note.substr(0, split + 1));
  std::string_view lines = note.substr(split + 2);
  if (lines.empty()) return Status::Corruption("the note has no signature lines");
  if (lines.back() != '\n') return Status::Corruption("the note's last signature line does not end in a newline");
  while (!lines.empty()) {
    if (out.signatures.size() == kMaxNoteSignatures) {
      return Status::Corruption("the note has more than " + std::to_string(kMaxNoteSignatures) + " signature lines");
    }
    size_t end = lines.find('\n');
    NoteSignature signature;
    if (auto problem = SignatureLineProblem(lines.substr(0, end), signature)) {
      return Status::Corruption("signature line " + std::to_string(out.signatures.size() + 1) + ": " + *problem);
    }
    out.signatures.push_back(std::move(signature));
    lines.remove_prefix(end + 1);
  }
  return out;
}

Result<std::string> FormatNote(const Note& note) {
  SAMSYNC_RETURN_IF_ERROR(CheckNoteText(note.text));
  if (note.signatures.empty()) return Status::Invalid("a note needs at least one signature");
  if (note.signatures.size() > kMaxNoteSignatures) {
    return Status::Invalid("a note holds at most " + std::to_string(kMaxNoteSignatures) + " signatures");
  }
  std::string out = note.text + "\n";
  for (const NoteSignature& signature : note.signatures) {
    SAMSYNC_RETURN_IF_ERROR(CheckNoteKeyName(signature.name));
    if (signature.signature.empty()) return Status::Invalid("the signature by " + signature.name + " is empty");
    out += FormatNoteSignatureLine(signature);
    out += '\n';
    if (out.size() > kMaxNoteBytes) {
      return Status::Invalid("the note would exceed " + std::to_string(kMaxNoteBytes) + " bytes");
    }
  }
  return out;
}

std::string FormatNoteSignatureLine(const NoteSignature& signature) {
  std::vector<uint8_t> bytes;
  bytes.reserve(kKeyIdBytes + signature.signature.size());
  for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(signature.key_id >> shift));
  bytes.insert(bytes.end(), signature.signature.begin(), signature.signature.end());
  return std::string(kSignaturePrefix) + signature.name + " " + EncodeBase64(bytes);
}

Result<NoteSignature> ParseNoteSignatureLine(std::string_view line) {
  if (line.size() > kMaxNoteBytes) return Status::Corruption("the signature line is longer than a note may be");
  NoteSignature out;
  if (auto problem = SignatureLineProblem(line, out)) return Status::Corruption(*problem);
  return out;
}

Result<NoteSignature> SignNoteText(std::string_view text, std::string_view name, const SigningKey& key) {
  SAMSYNC_RETURN_IF_ERROR(CheckNoteText(text));
  SAMSYNC_RETURN_IF_ERROR(CheckNoteKeyName(name));
  Signature signature = key.Sign(AsBytes(text));
  NoteSignature out;
  out.name = std::string(name);
  out.key_id = NoteKeyId(name, kNoteTypeEd25519, key.public_key());
  out.signature.assign(signature.begin(), signature.end());
  return out;
}

Result<std::string> SignNote(std::string_view text, std::string_view name, const SigningKey& key) {
  SAMSYNC_ASSIGN_OR_RETURN(NoteSignature signature, SignNoteText(text, name, key));
  return FormatNote(Note{std::string(text), {std::move(signature)}});
}

Status VerifyNote(const Note& note, const NoteVerifierKey& key) {
  if (key.type != kNoteTypeEd25519) {
    return Status::Invalid("key " + key.Label() + " is a cosigner key; its lines are cosignatures");
  }
  SAMSYNC_ASSIGN_OR_RETURN(const NoteSignature* signature, FindSignature(note, key, "signature"));
  if (!VerifySignature(key.key, AsBytes(note.text), signature->signature)) {
    return Status(Code::kBadSignature, "the signature by " + key.Label() + " does not verify");
  }
  return Status::Ok();
}

// --- Checkpoints ---------------------------------------------------------------------

Result<std::string> FormatCheckpoint(const Checkpoint& checkpoint) {
  auto bad_line = [](std::string_view line) { return line.empty() || line.find('\n') != std::string_view::npos; };
  if (bad_line(checkpoint.origin)) return Status::Invalid("a checkpoint's origin must be one non-empty line");
  std::string text = checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
                     EncodeBase64(checkpoint.root.span()) + "\n";
  for (const std::string& extension : checkpoint.extensions) {
    if (bad_line(extension)) return Status::Invalid("a checkpoint's extension lines must each be one non-empty line");
    text += extension + "\n";
  }
  SAMSYNC_RETURN_IF_ERROR(CheckNoteText(text).WithContext("checkpoint"));
  return text;
}

Result<Checkpoint> ParseCheckpoint(std::string_view text) {
  if (auto problem = TextProblem(text)) return Status::Corruption("checkpoint: " + *problem);
  std::vector<std::string_view> lines;
  for (std::string_view rest = text; !rest.empty();) {
    size_t end = rest.find('\n');  // found: the text ends in '\n'
    lines.push_back(rest.substr(0, end));
    rest.remove_prefix(end + 1);
  }
  if (lines.size() < 3) return Status::Corruption("a checkpoint needs an origin, a tree size and a root hash line");
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) return Status::Corruption("line " + std::to_string(i + 1) + " of the checkpoint is empty");
  }
  Checkpoint out;
  out.origin = std::string(lines[0]);

  std::string_view size = lines[1];
  bool digits = std::all_of(size.begin(), size.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || (size.size() > 1 && size[0] == '0') || size.size() > 20) {
    return Status::Corruption("the checkpoint's tree size is not a decimal number without leading zeros");
  }
  for (char c : size) {
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (out.size > (UINT64_MAX - digit) / 10) return Status::Corruption("the checkpoint's tree size does not fit 64 bits");
    out.size = out.size * 10 + digit;
  }

  std::optional<std::vector<uint8_t>> root = DecodeBase64(lines[2]);
  if (!root || root->size() != out.root.bytes.size()) {
    return Status::Corruption("the checkpoint's root hash is not the base64 of 32 bytes");
  }
  std::copy(root->begin(), root->end(), out.root.bytes.begin());
  for (size_t i = 3; i < lines.size(); ++i) out.extensions.emplace_back(lines[i]);
  return out;
}

// --- Cosignatures --------------------------------------------------------------------

std::string CosignatureMessage(std::string_view checkpoint_text, uint64_t timestamp) {
  return "cosignature/v1\ntime " + std::to_string(timestamp) + "\n" + std::string(checkpoint_text);
}

Result<NoteSignature> CosignCheckpoint(std::string_view checkpoint_text, std::string_view name,
                                       const SigningKey& key, uint64_t timestamp) {
  if (auto parsed = ParseCheckpoint(checkpoint_text); !parsed.ok()) {
    return Status::Invalid("refusing to cosign: " + parsed.status().message());
  }
  SAMSYNC_RETURN_IF_ERROR(CheckNoteKeyName(name));
  if (timestamp > kMaxCosignatureTimestamp) return Status::Invalid("a cosignature's timestamp must be below 2^63");
  std::string message = CosignatureMessage(checkpoint_text, timestamp);
  Signature signature = key.Sign(AsBytes(message));
  NoteSignature out;
  out.name = std::string(name);
  out.key_id = NoteKeyId(name, kNoteTypeCosignatureV1, key.public_key());
  out.signature.reserve(kCosignatureBytes);
  AppendU64(out.signature, timestamp);
  out.signature.insert(out.signature.end(), signature.begin(), signature.end());
  return out;
}

Result<uint64_t> VerifyCosignature(std::string_view checkpoint_text, const NoteSignature& signature,
                                   const NoteVerifierKey& cosigner) {
  if (cosigner.type != kNoteTypeCosignatureV1) {
    return Status::Invalid("key " + cosigner.Label() + " is not a cosigner key (signature type 0x04)");
  }
  if (signature.name != cosigner.name || signature.key_id != cosigner.key_id) {
    return Status(Code::kBadSignature, "the cosignature is by " + KeyLabel(signature.name, signature.key_id) +
                                           ", not by " + cosigner.Label());
  }
  if (signature.signature.size() != kCosignatureBytes) {
    return Status(Code::kBadSignature, "the cosignature by " + cosigner.Label() + " is " +
                                           std::to_string(signature.signature.size()) +
                                           " bytes, not a timestamp and an Ed25519 signature (72)");
  }
  uint64_t timestamp = ReadBigEndian(signature.signature.data(), 8);
  if (timestamp > kMaxCosignatureTimestamp) {
    return Status(Code::kBadSignature, "the cosignature by " + cosigner.Label() + " has a timestamp above 2^63 - 1");
  }
  std::string message = CosignatureMessage(checkpoint_text, timestamp);
  if (!VerifySignature(cosigner.key, AsBytes(message), std::span<const uint8_t>(signature.signature).subspan(8))) {
    return Status(Code::kBadSignature, "the cosignature by " + cosigner.Label() + " does not verify");
  }
  return timestamp;
}

Result<uint64_t> VerifyNoteCosignature(const Note& note, const NoteVerifierKey& cosigner) {
  if (cosigner.type != kNoteTypeCosignatureV1) {
    return Status::Invalid("key " + cosigner.Label() + " is not a cosigner key (signature type 0x04)");
  }
  SAMSYNC_ASSIGN_OR_RETURN(const NoteSignature* signature, FindSignature(note, cosigner, "cosignature"));
  return VerifyCosignature(note.text, *signature, cosigner);
}

}  // namespace samsync
