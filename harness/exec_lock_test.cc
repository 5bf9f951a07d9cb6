#include "harness/exec_lock.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "harness/redis_server.h"
#include "harness/tls.h"

namespace lockstorm {
namespace {

// A JSON spec file under a fresh temporary directory, removed with it.
class SpecFile {
 public:
  explicit SpecFile(const std::string& content) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "lockstorm-exec-test-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    path_ = dir_ + "/spec.json";
    std::ofstream(path_) << content;
  }
  ~SpecFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// Parses `value`, expecting failure; returns the message.
std::string ParseError(const std::string& value) {
  ExecSpec spec;
  spec.name = "untouched";
  Status s = ParseExecImpl(value, &spec);
  EXPECT_FALSE(s.ok()) << value;
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << value;
  EXPECT_EQ(spec.name, "untouched") << "*out written on error: " << value;
  EXPECT_NE(s.message().find("--impl"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  return s.message();
}

TEST(ServerEnvironmentTest, UrlsWithDatabaseAndUserButNeverThePassword) {
  std::vector<ServerAddress> servers;
  ASSERT_TRUE(
      ParseServerList("--servers", "redis://app%40ops:pw@h1:6379/2,redis://h2:7000", &servers)
          .ok());
  auto env = ServerEnvironment(servers);
  EXPECT_EQ(env["LOCKSTORM_SERVER_URLS"], "redis://app%40ops@h1:6379/2,redis://h2:7000/0");
  EXPECT_EQ(env["LOCKSTORM_REDIS_PASSWORD"], "pw");
  EXPECT_EQ(env.count("LOCKSTORM_TLS_SERVER_NAMES"), 0u);
  for (const auto& [name, value] : env)
    if (name != "LOCKSTORM_REDIS_PASSWORD") EXPECT_EQ(value.find("pw@"), std::string::npos);

  // rediss:// behind a fault proxy: the URL is the proxy's, the name the server's.
  TlsOptions tls;
  tls.ca_file = "";  // the system's CAs
  tls.verify = false;
  ASSERT_TRUE(ParseServerList("--servers", "rediss://cache.example:6380", &servers, "", tls).ok());
  servers[0].tls_name = servers[0].host;
  servers[0].host = "127.0.0.1";
  servers[0].port = 41000;
  env = ServerEnvironment(servers);
  EXPECT_EQ(env["LOCKSTORM_SERVER_URLS"], "rediss://127.0.0.1:41000/0");
  EXPECT_EQ(env["LOCKSTORM_TLS_SERVER_NAMES"], "cache.example");
  EXPECT_EQ(env["LOCKSTORM_TLS_INSECURE"], "1");
  EXPECT_EQ(env.count("LOCKSTORM_REDIS_PASSWORD"), 0u);
}

TEST(IsExecImplTest, RecognizesBothForms) {
  EXPECT_TRUE(IsExecImpl("exec:./my-lock"));
  EXPECT_TRUE(IsExecImpl("exec:"));
  EXPECT_TRUE(IsExecImpl("mine=exec:./my-lock"));
  EXPECT_TRUE(IsExecImpl("my.lock_2-b=exec:@x.json"));
  EXPECT_FALSE(IsExecImpl("token-lua"));
  EXPECT_FALSE(IsExecImpl("redlock"));
  EXPECT_FALSE(IsExecImpl("=exec:x"));
  EXPECT_FALSE(IsExecImpl("bad name=exec:x"));
  EXPECT_FALSE(IsExecImpl("exe:x"));
  EXPECT_FALSE(IsExecImpl("mine=exe:x"));
}

TEST(ParseExecImplTest, CommandLine) {
  ExecSpec spec;
  ASSERT_TRUE(ParseExecImpl("exec:/usr/bin/python3 /opt/locks/my_lock.py --fast", &spec).ok());
  EXPECT_EQ(spec.command, "/usr/bin/python3 /opt/locks/my_lock.py --fast");
  EXPECT_EQ(spec.name, "exec:my_lock.py");
  EXPECT_TRUE(spec.expected_unsafe.empty());
  EXPECT_EQ(spec.deadline_margin_ms, 2000);
}

TEST(ParseExecImplTest, DerivedNamesSkipInterpretersOptionsAndAssignments) {
  ExecSpec spec;
  ASSERT_TRUE(ParseExecImpl("exec:./lockd", &spec).ok());
  EXPECT_EQ(spec.name, "exec:lockd");
  ASSERT_TRUE(ParseExecImpl("exec:FOO=1 node --no-warnings adapter.js", &spec).ok());
  EXPECT_EQ(spec.name, "exec:adapter.js");
  ASSERT_TRUE(ParseExecImpl("exec:timeout 10 sh -c 'x y'", &spec).ok());
  EXPECT_EQ(spec.name, "exec:_x");  // the quote is not a name character
  ASSERT_TRUE(ParseExecImpl("exec:python3", &spec).ok());
  EXPECT_EQ(spec.name, "exec:python3");  // only interpreters: the first word
}

TEST(ParseExecImplTest, NamePrefix) {
  ExecSpec spec;
  ASSERT_TRUE(ParseExecImpl("my-lock=exec:java -jar lock.jar a=b", &spec).ok());
  EXPECT_EQ(spec.name, "my-lock");
  EXPECT_EQ(spec.command, "java -jar lock.jar a=b");
}

TEST(ParseExecImplTest, CommandMayContainExecAndEquals) {
  ExecSpec spec;
  ASSERT_TRUE(ParseExecImpl("exec:X=exec:y ./z", &spec).ok());
  EXPECT_EQ(spec.command, "X=exec:y ./z");
  EXPECT_EQ(spec.name, "exec:z");
}

TEST(ParseExecImplTest, JsonFileAllFields) {
  SpecFile f(R"({"name": "acme-lock", "command": "./acme --x",
                 "expected_unsafe": ["clock-jump", "gc-pause"], "deadline_margin_ms": 500})");
  ExecSpec spec;
  Status s = ParseExecImpl("exec:@" + f.path(), &spec);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(spec.name, "acme-lock");
  EXPECT_EQ(spec.command, "./acme --x");
  EXPECT_EQ(spec.expected_unsafe, (std::set<std::string>{"clock-jump", "gc-pause"}));
  EXPECT_EQ(spec.deadline_margin_ms, 500);
}

TEST(ParseExecImplTest, JsonFileOnlyCommandAndNameOverride) {
  SpecFile f(R"({"command": "/opt/bin/lockd serve"})");
  ExecSpec spec;
  ASSERT_TRUE(ParseExecImpl("exec:@" + f.path(), &spec).ok());
  EXPECT_EQ(spec.name, "exec:lockd");
  EXPECT_EQ(spec.deadline_margin_ms, 2000);
  SpecFile g(R"({"name": "from-file", "command": "x"})");
  ASSERT_TRUE(ParseExecImpl("override=exec:@" + g.path(), &spec).ok());
  EXPECT_EQ(spec.name, "override");
  EXPECT_EQ(spec.command, "x");
}

TEST(ParseExecImplTest, MalformedValues) {
  EXPECT_NE(ParseError("exec:").find("empty command"), std::string::npos);
  EXPECT_NE(ParseError("exec:   ").find("empty command"), std::string::npos);
  EXPECT_NE(ParseError("n=exec:").find("empty command"), std::string::npos);
  EXPECT_NE(ParseError("token-lua").find("not an exec impl"), std::string::npos);
  EXPECT_NE(ParseError("bad name=exec:x").find("not an exec impl"), std::string::npos);
  EXPECT_NE(ParseError(std::string(65, 'n') + "=exec:x").find("64"), std::string::npos);
  EXPECT_NE(ParseError("exec:@").find("missing file name"), std::string::npos);
  // A multi-line command is fine to run but the message stays one line.
  EXPECT_NE(ParseError("exec:\n\n").find("\\x0a"), std::string::npos);
}

TEST(ParseExecImplTest, FileErrorsNameTheFileAndJsonPath) {
  std::string missing = ParseError("exec:@/nonexistent/lockstorm/spec.json");
  EXPECT_NE(missing.find("/nonexistent/lockstorm/spec.json"), std::string::npos) << missing;
  EXPECT_NE(missing.find("cannot read"), std::string::npos) << missing;

  struct Case {
    const char* json;
    const char* expect;  // substring of the message after the file name
  };
  const Case cases[] = {
      {"{\"command\": ", "invalid JSON"},
      {"[1, 2]", "/: expected a JSON object"},
      {"{}", "/command: missing"},
      {R"({"name": "x"})", "/command: missing"},
      {R"({"command": 7})", "/command: expected a non-empty string"},
      {R"({"command": "  "})", "/command: expected a non-empty string"},
      {R"({"command": "x", "name": "has space"})", "/name: expected a string"},
      {R"({"command": "x", "name": 3})", "/name: expected a string"},
      {R"({"command": "x", "expected_unsafe": "clock-jump"})", "/expected_unsafe: expected"},
      {R"({"command": "x", "expected_unsafe": ["a", 2]})", "/expected_unsafe/1: expected"},
      {R"({"command": "x", "deadline_margin_ms": -5})", "/deadline_margin_ms: expected"},
      {R"({"command": "x", "deadline_margin_ms": 1.5})", "/deadline_margin_ms: expected"},
      {R"({"command": "x", "deadline_margin_ms": "100"})", "/deadline_margin_ms: expected"},
      {R"({"command": "x", "comand": "y"})", "/comand: unknown field"},
  };
  for (const Case& c : cases) {
    SpecFile f(c.json);
    std::string msg = ParseError("exec:@" + f.path());
    EXPECT_NE(msg.find(f.path() + ": " + c.expect), std::string::npos)
        << "json: " << c.json << "\nmessage: " << msg;
  }
}

TEST(ParseExecImplTest, InvalidJsonSaysWhere) {
  SpecFile f("{\n  \"command\": \"x\",\n  oops\n}");
  std::string msg = ParseError("exec:@" + f.path());
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
}

RC_GTEST_PROP(ParseExecImplProp, AnyNonBlankCommandRoundTrips, ()) {
  // Printable ASCII, not starting with '@' (that is the file form), not all blank.
  auto command = *rc::gen::suchThat(
      rc::gen::container<std::string>(rc::gen::inRange<char>(' ', '~' + 1)),
      [](const std::string& s) {
        return !s.empty() && s[0] != '@' && s.find_first_not_of(' ') != std::string::npos;
      });
  ExecSpec spec;
  Status s = ParseExecImpl("exec:" + command, &spec);
  RC_ASSERT(s.ok());
  RC_ASSERT(spec.command == command);
  RC_ASSERT(spec.name.rfind("exec:", 0) == 0);
  RC_ASSERT(spec.name.size() > 5);
  ExecSpec named;
  RC_ASSERT(ParseExecImpl("n=exec:" + command, &named).ok());
  RC_ASSERT(named.name == "n");
  RC_ASSERT(named.command == command);
}

}  // namespace
}  // namespace lockstorm
