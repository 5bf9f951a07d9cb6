#include "harness/resp.h"

#include <charconv>
#include <cstdint>

namespace lockstorm {
namespace {

// Parses the decimal integer in [first, last) whole; false on junk or overflow.
bool ParseInt(const char* first, const char* last, int64_t* v) {
  if (first == last) return false;
  auto [end, ec] = std::from_chars(first, last, *v);
  return ec == std::errc() && end == last;
}

}  // namespace

bool ParseOneSimpleReply(std::string_view bytes, Reply* out) {
  if (bytes.size() < 3) return false;
  const size_t line_end = bytes.find("\r\n");  // the end of the first line
  if (line_end == std::string_view::npos) return false;
  const char* b = bytes.data();
  switch (bytes[0]) {
    case '+':
    case '-':
      if (line_end != bytes.size() - 2) return false;
      out->type = bytes[0] == '+' ? Reply::Type::kStatus : Reply::Type::kError;
      out->str.assign(b + 1, line_end - 1);
      out->integer = 0;
      out->elements.clear();
      return true;
    case ':': {
      int64_t v = 0;
      if (line_end != bytes.size() - 2 || !ParseInt(b + 1, b + line_end, &v)) return false;
      out->type = Reply::Type::kInteger;
      out->str.clear();
      out->integer = v;
      out->elements.clear();
      return true;
    }
    case '$': {
      int64_t len = 0;
      if (!ParseInt(b + 1, b + line_end, &len) || len < -1) return false;
      if (len == -1) {
        if (line_end != bytes.size() - 2) return false;
        out->type = Reply::Type::kNil;
        out->str.clear();
      } else {
        const size_t start = line_end + 2;
        const auto n = static_cast<size_t>(len);
        if (bytes.size() - start != n + 2 || bytes.substr(start + n) != "\r\n") return false;
        out->type = Reply::Type::kString;
        out->str.assign(b + start, n);
      }
      out->integer = 0;
      out->elements.clear();
      return true;
    }
    default:
      return false;
  }
}

}  // namespace lockstorm
