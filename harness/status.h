// Status: the result of an operation that can fail, in the LevelDB style.
//
// A Status is either ok() or carries a code and a one-line message meant for a human
// ("--servers: cannot connect to 127.0.0.1:6390: connection refused"). Messages never end
// with a newline. Status is a value type; copying is cheap enough for the harness's uses.
#pragma once

#include <string>
#include <utility>

namespace lockstorm {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kIoError, kTimeout, kNotFound, kInternal };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status IoError(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  static Status Timeout(std::string msg) { return {Code::kTimeout, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace lockstorm
