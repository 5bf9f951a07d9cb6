#include "harness/resp.h"

#include <gtest/gtest.h>

#include <string>

namespace lockstorm {
namespace {

Reply Parsed(const std::string& bytes) {
  Reply r;
  r.str = "untouched";
  EXPECT_TRUE(ParseOneSimpleReply(bytes, &r)) << bytes;
  return r;
}

TEST(RespTest, ParsesEachSimpleKind) {
  Reply ok = Parsed("+OK\r\n");
  EXPECT_TRUE(ok.is_ok_status());
  Reply err = Parsed("-NOSCRIPT No matching script\r\n");
  EXPECT_EQ(err.type, Reply::Type::kError);
  EXPECT_EQ(err.str, "NOSCRIPT No matching script");
  EXPECT_TRUE(Parsed(":1\r\n").is_integer(1));
  EXPECT_TRUE(Parsed(":-42\r\n").is_integer(-42));
  EXPECT_TRUE(Parsed(":9223372036854775807\r\n").is_integer(INT64_MAX));
  Reply nil = Parsed("$-1\r\n");
  EXPECT_EQ(nil.type, Reply::Type::kNil);
  EXPECT_EQ(nil.str, "");
  Reply bulk = Parsed("$5\r\nab\r\nc\r\n");  // a bulk may hold CR LF
  EXPECT_EQ(bulk.type, Reply::Type::kString);
  EXPECT_EQ(bulk.str, "ab\r\nc");
  Reply empty = Parsed("$0\r\n\r\n");
  EXPECT_EQ(empty.type, Reply::Type::kString);
  EXPECT_EQ(empty.str, "");
}

TEST(RespTest, LeavesEverythingElseToHiredis) {
  for (const std::string bytes :
       {std::string(""), std::string("+OK"), std::string("+OK\r"),  // incomplete
        std::string("+OK\r\n+OK\r\n"),                              // two replies
        std::string(":1\r\n:2\r\n"), std::string("$3\r\nab"),       // short bulk
        std::string("$3\r\nabcd\r\n"),                              // long bulk
        std::string("$3\r\nabc\r\n+OK\r\n"),                        // bulk then more
        std::string("*1\r\n:1\r\n"),                                // an array
        std::string(":x\r\n"), std::string(":\r\n"), std::string(":1 \r\n"),
        std::string(":99999999999999999999\r\n"),  // overflow
        std::string("$-2\r\n"), std::string("$-1\r\nx"), std::string("$\r\n\r\n"),
        std::string("?what\r\n"), std::string("%1\r\n")}) {
    Reply r;
    r.str = "untouched";
    EXPECT_FALSE(ParseOneSimpleReply(bytes, &r)) << bytes;
    EXPECT_EQ(r.str, "untouched") << bytes;
  }
}

}  // namespace
}  // namespace lockstorm
