// The one error vocabulary of samsync.
//
// Engine functions that can fail return a Status, or a Result<T> holding either a value
// or a non-OK Status. Both are [[nodiscard]]: dropping one is a compile warning, and
// ignoring an error on purpose needs an explicit `.Ignore()`.
//
// A message is written for the person who will read it on stderr: it names what is
// wrong (the record, the field, the row) and never contains personal data (no
// personnummer, no names of children).
#ifndef SAMSYNC_STATUS_H_
#define SAMSYNC_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace samsync {

// A closed set. Binaries map each code to an exit code (client/exit_codes.h).
enum class Code {
  kOk = 0,
  kNotFound,      // the thing asked for does not exist
  kInvalidInput,  // caller's input breaks a rule; nothing was written
  kWrongKey,      // wrong passphrase or key file, or not a samsync store
  kCorruption,    // stored bytes fail authentication or decoding
  kBadSignature,  // a signature does not verify
  kUnauthorised,  // the author may not do this
  kConflict,      // concurrent writes that need a person to resolve
  kMapFull,       // the store reached its size limit
  kIoError,       // the file system refused (permissions, full disk, ...)
  kDisconnected,  // the peer went away
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Invalid(std::string m) { return {Code::kInvalidInput, std::move(m)}; }
  static Status WrongKey(std::string m) { return {Code::kWrongKey, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Io(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status MapFull(std::string m) { return {Code::kMapFull, std::move(m)}; }
  static Status BadSignature(std::string m) { return {Code::kBadSignature, std::move(m)}; }
  static Status Unauthorised(std::string m) { return {Code::kUnauthorised, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

  // Drops the status on purpose.
  void Ignore() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or a non-OK Status. Access to value() on an error is a caller bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace samsync

// Returns early from a function returning Status or Result<T> when `expr` fails.
#define SAMSYNC_RETURN_IF_ERROR(expr)            \
  do {                                           \
    ::samsync::Status samsync_status_ = (expr);  \
    if (!samsync_status_.ok()) return samsync_status_; \
  } while (0)

#define SAMSYNC_CONCAT_INNER_(a, b) a##b
#define SAMSYNC_CONCAT_(a, b) SAMSYNC_CONCAT_INNER_(a, b)

// `SAMSYNC_ASSIGN_OR_RETURN(auto x, Foo());` declares x from a Result or returns its error.
#define SAMSYNC_ASSIGN_OR_RETURN(decl, expr) \
  SAMSYNC_ASSIGN_OR_RETURN_IMPL_(SAMSYNC_CONCAT_(samsync_result_, __LINE__), decl, expr)
#define SAMSYNC_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return tmp.status();                   \
  decl = std::move(tmp).value()

#endif  // SAMSYNC_STATUS_H_
