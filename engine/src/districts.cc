#include "samsync/districts.h"

namespace samsync {
namespace {

// Lower-cases ASCII and the Swedish capitals Å, Ä, Ö (UTF-8), which is all district
// names need; a full Unicode case fold would be a dependency for three letters.
std::string FoldCase(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c - 'A' + 'a');
    } else if (c == 0xC3 && i + 1 < out.size()) {
      unsigned char n = static_cast<unsigned char>(out[i + 1]);
      if (n == 0x85 || n == 0x84 || n == 0x96) out[i + 1] = static_cast<char>(n + 0x20);  // Å Ä Ö
      ++i;
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& Districts() {
  static const std::vector<std::string> kDistricts = {
      "Rinkeby-Kista",       "Spånga-Tensta", "Hässelby-Vällingby",    "Bromma",
      "Kungsholmen",         "Norrmalm",      "Östermalm",             "Södermalm",
      "Enskede-Årsta-Vantör", "Skarpnäck",    "Farsta",                "Älvsjö",
      "Hägersten-Liljeholmen", "Skärholmen",
  };
  return kDistricts;
}

Result<std::string> CanonicalDistrict(std::string_view name) {
  std::string folded = FoldCase(name);
  for (const std::string& district : Districts()) {
    if (FoldCase(district) == folded) return district;
  }
  std::string list;
  for (const std::string& district : Districts()) list += (list.empty() ? "" : ", ") + district;
  return Status::Invalid("unknown district '" + std::string(name) + "' (one of: " + list + ")");
}

}  // namespace samsync
