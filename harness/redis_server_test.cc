// Unit tests for the parts of harness/redis_server.h that need no redis-server.
#include "harness/redis_server.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness/tls.h"

namespace lockstorm {
namespace {

TEST(ParseServerListTest, ParsesHostPortList) {
  std::vector<ServerAddress> out;
  ASSERT_TRUE(ParseServerList("--servers", "127.0.0.1:6379, localhost:1 ,h:65535", &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].host, "127.0.0.1");
  EXPECT_EQ(out[0].port, 6379);
  EXPECT_EQ(out[1].host, "localhost");
  EXPECT_EQ(out[1].port, 1);
  EXPECT_EQ(out[2].ToString(), "h:65535");
}

TEST(ParseServerListTest, ParsesBracketedIpv6) {
  std::vector<ServerAddress> out;
  ASSERT_TRUE(ParseServerList("--servers", "[::1]:7000", &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].host, "::1");
  EXPECT_EQ(out[0].port, 7000);
}

TEST(ParseServerListTest, BadInputsFailWithOneLineNamingFlagAndEntry) {
  struct Case {
    std::string list;
    std::string must_mention;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"   ", "empty"},
      {"127.0.0.1", "'127.0.0.1'"},
      {"127.0.0.1:", "'127.0.0.1:'"},
      {":6379", "':6379'"},
      {"h:0", "'h:0'"},
      {"h:65536", "'h:65536'"},
      {"h:-1", "'h:-1'"},
      {"h:99999999999999999999", "'h:99999999999999999999'"},
      {"h:12x", "'h:12x'"},
      {"h:1,,h:2", "empty entry"},
      {"h:1,", "empty entry"},
      {"a:b:1", "'a:b:1'"},
      {"[::1]7000", "'[::1]7000'"},
  };
  for (const auto& c : cases) {
    std::vector<ServerAddress> out = {{"keep", 1}};
    Status s = ParseServerList("--servers", c.list, &out);
    ASSERT_FALSE(s.ok()) << "accepted '" << c.list << "'";
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(s.message().rfind("--servers: ", 0), 0u) << s.message();
    EXPECT_NE(s.message().find(c.must_mention), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
    ASSERT_EQ(out.size(), 1u) << "output changed on error";
    EXPECT_EQ(out[0].host, "keep");
  }
}

TEST(ParseServerListTest, ErrorNamesTheGivenFlag) {
  std::vector<ServerAddress> out;
  Status s = ParseServerList("--sentinels", "x", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("--sentinels: ", 0), 0u) << s.message();
}

TEST(PersistenceTest, NamesRoundTrip) {
  for (Persistence p : {Persistence::kNone, Persistence::kRdb, Persistence::kAofEverysec,
                        Persistence::kAofAlways}) {
    Persistence parsed = Persistence::kNone;
    ASSERT_TRUE(ParsePersistence(PersistenceName(p), &parsed)) << PersistenceName(p);
    EXPECT_EQ(parsed, p);
  }
  EXPECT_STREQ(PersistenceName(Persistence::kAofAlways), "aof-always");
  Persistence unchanged = Persistence::kRdb;
  EXPECT_FALSE(ParsePersistence("aof", &unchanged));
  EXPECT_FALSE(ParsePersistence("", &unchanged));
  EXPECT_EQ(unchanged, Persistence::kRdb);
}

TEST(PickFreePortTest, ReturnsAUsablePort) {
  int port = PickFreePort();
  EXPECT_GE(port, 1);
  EXPECT_LE(port, 65535);
}

TEST(ServerSetTest, EmptySetHasNoServers) {
  ServerSet set;
  EXPECT_FALSE(set.embedded());
  EXPECT_EQ(set.size(), 0);
  EXPECT_TRUE(set.addresses().empty());
  EXPECT_EQ(set.RedisVersion(), "");
  set.StopAll();  // harmless when empty
}

}  // namespace
}  // namespace lockstorm

namespace lockstorm {
namespace {

TEST(ParseServerListTest, ParsesRedisUrlsAsUsersWriteThem) {
  std::vector<ServerAddress> out;
  ASSERT_TRUE(ParseServerList("--servers",
                              "redis://app:pw@10.0.0.5:6380/3,redis://:only-pw@h,redis://h2/0,"
                              "redis://h3:7000,h4:1",
                              &out, "from-env")
                  .ok());
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].host, "10.0.0.5");
  EXPECT_EQ(out[0].port, 6380);
  EXPECT_EQ(out[0].user, "app");
  EXPECT_EQ(out[0].password, "pw");
  EXPECT_EQ(out[0].db, 3);
  EXPECT_EQ(out[0].ToString(), "10.0.0.5:6380");  // never the password
  EXPECT_EQ(out[1].port, 6379);                   // the default port
  EXPECT_EQ(out[1].user, "");
  EXPECT_EQ(out[1].password, "only-pw");
  EXPECT_EQ(out[2].password, "from-env");  // no password in the URL: the environment's
  EXPECT_EQ(out[2].db, 0);
  EXPECT_EQ(out[3].port, 7000);
  EXPECT_EQ(out[4].password, "from-env");
}

TEST(ParseServerListTest, BadUrlsAreNamedWithoutTheirPassword) {
  std::vector<ServerAddress> out;
  Status s = ParseServerList("--servers", "redis://u:hunter2@h:6379/x", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bad database 'x'"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
  TlsOptions missing_ca;
  missing_ca.ca_file = "/nonexistent/ca.pem";
  s = ParseServerList("--servers", "rediss://u:hunter2@h:6380", &out, "", missing_ca);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("--tls-ca-cert: cannot load '/nonexistent/ca.pem'", 0), 0u)
      << s.message();
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
  s = ParseServerList("--servers", "redis://u:hunter2@h:99999", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
}

TEST(ParseServerListTest, RedissUrlsShareOneTlsContextAndPlainOnesHaveNone) {
  std::vector<ServerAddress> out;
  Status s = ParseServerList(
      "--servers", "rediss://u:pw@cache.example:6380/1,REDISS://h2,redis://h3,h4:7000", &out);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].host, "cache.example");
  EXPECT_EQ(out[0].port, 6380);
  EXPECT_EQ(out[0].user, "u");
  EXPECT_EQ(out[0].password, "pw");
  EXPECT_EQ(out[0].db, 1);
  ASSERT_NE(out[0].tls, nullptr);
  EXPECT_TRUE(out[0].tls->verify());
  EXPECT_EQ(out[1].port, 6379);
  EXPECT_EQ(out[1].tls, out[0].tls);  // one configuration for the list
  EXPECT_EQ(out[2].tls, nullptr);
  EXPECT_EQ(out[3].tls, nullptr);
  TlsOptions insecure;
  insecure.verify = false;
  ASSERT_TRUE(ParseServerList("--servers", "rediss://h", &out, "", insecure).ok());
  EXPECT_FALSE(out[0].tls->verify());
}

TEST(ParseServerListTest, PasswordsMayHoldSlashesAtSignsAndEscapedCommas) {
  std::vector<ServerAddress> out;
  ASSERT_TRUE(
      ParseServerList("--servers", "REDIS://u:pa/s@s%2Cx@h:7000/4,Redis://solo@h2", &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].user, "u");
  EXPECT_EQ(out[0].password, "pa/s@s,x");
  EXPECT_EQ(out[0].host, "h");
  EXPECT_EQ(out[0].port, 7000);
  EXPECT_EQ(out[0].db, 4);
  EXPECT_EQ(out[1].password, "solo");  // user-info without ':' is a password (as redis-cli)
  EXPECT_EQ(out[1].port, 6379);
}

TEST(RedactPasswordsTest, HidesEveryUrlPassword) {
  EXPECT_EQ(RedactPasswords("--servers redis://solo@h:6379"), "--servers redis://***@h:6379");
  EXPECT_EQ(RedactPasswords("redis://u:pa/s@x@h:1/2"), "redis://u:***@h:1/2");
  EXPECT_EQ(RedactPasswords("lockstorm run --servers redis://u:p1@a:1/2,redis://:p2@b --seed 1"),
            "lockstorm run --servers redis://u:***@a:1/2,redis://:***@b --seed 1");
  EXPECT_EQ(RedactPasswords("redis://h:6379 and user@host:22"), "redis://h:6379 and user@host:22");
}

}  // namespace
}  // namespace lockstorm
