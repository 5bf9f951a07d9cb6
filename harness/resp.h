// RESP: the transport's fast path for the replies locks get (harness/redis_transport.cc).
//
// A lock's round trip is answered by one short reply — +OK, $-1 (nil), :1, a bulk token — that
// nearly always arrives whole in one recv. ParseOneSimpleReply turns such a buffer into a Reply
// without hiredis (whose reader allocates a reply object and shifts its buffer for each);
// anything else (arrays, a partial or second reply) is left to hiredis' reader.
// Thread-safety: a pure function.
#pragma once

#include <string_view>

#include "harness/transport.h"

namespace lockstorm {

// True if `bytes` is exactly one complete RESP2 reply of a simple kind: status (+), error (-),
// integer (:), nil bulk ($-1) or bulk string ($n); *out is then that reply. False (and *out
// untouched) for anything else: an array, an incomplete reply, trailing bytes, a malformed
// header.
bool ParseOneSimpleReply(std::string_view bytes, Reply* out);

}  // namespace lockstorm
