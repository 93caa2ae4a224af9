// Fuzzes the C2SP signed-note formats as samsync reads them from a server or a file
// (note.h, witness.h): ParseNote, ParseCheckpoint, ParseNoteSignatureLine and
// NoteVerifierKey::Parse on each line, and the witness's checks (OpenCheckpoint,
// VerifiedCosigners, OpenStateStatement) under a fixed roster (fuzz_keys.h) whose log
// and witness keys signed the seeds. Beyond crashes and sanitizer reports it checks
// the round trips the header promises: FormatNote(ParseNote(n)) parses back to the
// same note, and FormatCheckpoint(ParseCheckpoint(t)) == t.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_keys.h"
#include "samsync/note.h"
#include "samsync/witness.h"

namespace {

const samsync::Roster& FuzzRoster() {
  static const samsync::Roster roster = [] {
    auto made = samsync::fuzz::FixedRoster(1);
    if (!made.ok()) std::abort();
    return *made;
  }();
  return roster;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace samsync;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const Roster& roster = FuzzRoster();

  for (size_t at = 0; at <= input.size();) {
    size_t end = input.find('\n', at);
    if (end == std::string_view::npos) end = input.size();
    std::string_view line = input.substr(at, end - at);
    (void)ParseNoteSignatureLine(line);
    (void)NoteVerifierKey::Parse(line);
    at = end + 1;
  }

  auto note = ParseNote(input);
  if (note.ok()) {
    auto formatted = FormatNote(*note);
    if (formatted.ok()) {
      auto again = ParseNote(*formatted);
      if (!again.ok() || !(*again == *note)) __builtin_trap();  // ParseNote(FormatNote(n)) == n
    }
    auto log = NoteVerifierKey::Ed25519(LogOrigin(roster.city()), fuzz::LogKey().public_key());
    if (log.ok()) (void)VerifyNote(*note, *log);
    for (int i = 0; i < 2; ++i) {
      auto witness = NoteVerifierKey::Cosigner(
          WitnessName(LogOrigin(roster.city()), fuzz::WitnessKey(i).public_key()), fuzz::WitnessKey(i).public_key());
      if (witness.ok()) (void)VerifyNoteCosignature(*note, *witness);
    }
  }
  auto checkpoint = ParseCheckpoint(note.ok() ? std::string_view(note->text) : input);
  if (checkpoint.ok()) {
    auto text = FormatCheckpoint(*checkpoint);
    if (!text.ok() || *text != (note.ok() ? std::string_view(note->text) : input)) __builtin_trap();
  }
  auto opened = OpenCheckpoint(input, roster);
  if (opened.ok()) (void)VerifiedCosigners(input, *opened, roster);
  (void)OpenStateStatement(input, roster);
  return 0;
}
