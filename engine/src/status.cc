#include "samsync/status.h"

namespace samsync {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kInvalidInput: return "invalid input";
    case Code::kWrongKey: return "wrong key";
    case Code::kCorruption: return "corruption";
    case Code::kBadSignature: return "bad signature";
    case Code::kUnauthorised: return "unauthorised";
    case Code::kConflict: return "conflict";
    case Code::kMapFull: return "store full";
    case Code::kIoError: return "i/o error";
    case Code::kDisconnected: return "disconnected";
  }
  return "unknown";
}

Status Status::WithContext(std::string_view context) const {
  if (ok() || context.empty()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace samsync
