// rediss://: lockstorm against a redis-server that speaks only TLS (--port 0 --tls-port P), with
// a certificate from a CA this test generates (openssl CLI). The transport (harness/tls.h) must
// verify the chain and the name, pass AUTH over TLS, survive replies split over TLS records,
// and go through the fault proxy; a wrong CA must be a one-line error.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/redis_server.h"
#include "harness/tls.h"
#include "harness/transport.h"
#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

const std::string kPassword = "tls-Pw-51d0";

// A CA, and a server certificate it signed for 127.0.0.1 and localhost; a second, unrelated CA.
struct Certs {
  std::string ca, other_ca, cert, key;
  bool ok = false;
  explicit Certs(const std::string& dir) {
    ca = dir + "/ca.pem";
    other_ca = dir + "/other-ca.pem";
    cert = dir + "/server.pem";
    key = dir + "/server.key";
    const std::string ext = dir + "/san.ext";
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key",
         "-out", ca, "-days", "2", "-subj", "/CN=lockstorm test CA"},
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         dir + "/other-ca.key", "-out", other_ca, "-days", "2", "-subj", "/CN=another CA"},
        {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
         dir + "/server.csr", "-subj", "/CN=redis test server"},
        {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", ca, "-CAkey",
         dir + "/ca.key", "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext},
    };
    for (const auto& argv : steps) {
      Result r = RunProgram(argv, dir, {}, 60000);
      if (r.exit_code != 0) {
        ADD_FAILURE() << argv[1] << ": " << r.err;
        return;
      }
    }
    ok = true;
  }
};

// redis-server with TLS only (no plain-text port) and a password.
class TlsServer {
 public:
  TlsServer(const std::string& dir, const Certs& certs) {
    port_ = PickFreePort();
    SpawnOptions o;
    o.argv = {"redis-server",
              "--port",
              "0",
              "--tls-port",
              std::to_string(port_),
              "--bind",
              "127.0.0.1",
              "--tls-cert-file",
              certs.cert,
              "--tls-key-file",
              certs.key,
              "--tls-ca-cert-file",
              certs.ca,
              "--tls-auth-clients",
              "no",
              "--requirepass",
              kPassword,
              "--save",
              "",
              "--appendonly",
              "no",
              "--dir",
              dir};
    o.stdout_path = dir + "/redis.log";
    o.stderr_path = dir + "/redis.log";
    status_ = Spawn(o, &process_);
    TlsOptions tls;
    tls.ca_file = certs.ca;
    if (status_.ok()) status_ = ParseServerList("test", Url(), &addr_, kPassword, tls);
    for (int i = 0; i < 200 && status_.ok(); ++i) {  // bounded: 200 x 25 ms
      if (NewRedisTransport(addr_)->Call(0, {"PING"}, 1000000).str == "PONG") return;
      usleep(25000);
    }
    if (status_.ok()) status_ = Status::Timeout("redis-server (TLS) did not answer");
  }
  std::string Url() const { return "rediss://127.0.0.1:" + std::to_string(port_); }
  const std::vector<ServerAddress>& address() const { return addr_; }
  const Status& status() const { return status_; }

 private:
  int port_ = 0;
  Status status_;
  std::vector<ServerAddress> addr_;
  std::unique_ptr<Process> process_;  // stopped (and reaped) by its destructor
};

class TlsITest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = std::make_unique<Certs>(dir_.path());
    ASSERT_TRUE(certs_->ok);
    server_ = std::make_unique<TlsServer>(dir_.path(), *certs_);
    ASSERT_TRUE(server_->status().ok()) << server_->status().ToString();
  }
  TempDir dir_;
  std::unique_ptr<Certs> certs_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(TlsITest, TransportVerifiesAuthenticatesAndCarriesLargeAndFannedOutReplies) {
  auto t = NewRedisTransport(server_->address());
  ASSERT_TRUE(t->Call(0, {"SET", "k", "v"}, 2000000).is_ok_status());
  EXPECT_EQ(t->Call(0, {"GET", "k"}, 2000000).str, "v");
  // 1 MiB: many TLS records (16 KiB each), read in chunks, some held inside OpenSSL.
  const std::string big(1 << 20, 'x');
  ASSERT_TRUE(t->Call(0, {"SET", "big", big}, 5000000).is_ok_status());
  Reply r = t->Call(0, {"GET", "big"}, 5000000);
  EXPECT_EQ(r.str.size(), big.size());
  EXPECT_EQ(r.str == big, true);
  // The fan-out path (Redlock's), several times over one connection per node.
  auto three =
      NewRedisTransport({server_->address()[0], server_->address()[0], server_->address()[0]});
  for (int round = 0; round < 20; ++round) {
    std::vector<Reply> replies = three->CallMany({0, 1, 2}, {"INCR", "n"}, 2000000);
    ASSERT_EQ(replies.size(), 3u);
    for (const Reply& x : replies) ASSERT_EQ(x.type, Reply::Type::kInteger) << x.ToString();
  }
  EXPECT_EQ(t->Call(0, {"GET", "n"}, 2000000).str, "60");
  // "localhost" is in the certificate too (DNS name: SNI and host check).
  std::vector<ServerAddress> by_name;
  TlsOptions tls;
  tls.ca_file = certs_->ca;
  const std::string url = server_->Url();
  ASSERT_TRUE(ParseServerList("test", "rediss://localhost:" + url.substr(url.rfind(':') + 1),
                              &by_name, kPassword, tls)
                  .ok());
  EXPECT_EQ(NewRedisTransport(by_name)->Call(0, {"GET", "k"}, 2000000).str, "v");
}

TEST_F(TlsITest, WrongCaOrPlainTextFailsWithAReason) {
  std::vector<ServerAddress> wrong;
  TlsOptions tls;
  tls.ca_file = certs_->other_ca;
  ASSERT_TRUE(ParseServerList("test", server_->Url(), &wrong, kPassword, tls).ok());
  Reply r = NewRedisTransport(wrong)->Call(0, {"PING"}, 2000000);
  EXPECT_EQ(r.type, Reply::Type::kIoError);
  EXPECT_NE(r.str.find("certificate verify failed"), std::string::npos) << r.str;
  tls.verify = false;  // --tls-insecure
  ASSERT_TRUE(ParseServerList("test", server_->Url(), &wrong, kPassword, tls).ok());
  EXPECT_EQ(NewRedisTransport(wrong)->Call(0, {"PING"}, 2000000).str, "PONG");
  // Plain text to the TLS port: no answer that could pass for one.
  std::vector<ServerAddress> plain = server_->address();
  plain[0].tls = nullptr;
  r = NewRedisTransport(plain)->Call(0, {"PING"}, 1000000);
  EXPECT_TRUE(r.unknown()) << r.ToString();
}

TEST_F(TlsITest, RunOverTlsWithAndWithoutTheFaultProxy) {
  const std::map<std::string, std::string> env = {{"LOCKSTORM_REDIS_PASSWORD", kPassword}};
  const std::string out = dir_.path() + "/run";
  Result r =
      RunLockstorm({"run", "--servers", server_->Url(), "--tls-ca-cert", certs_->ca, "--impl",
                    "token-lua,redlock", "--duration", "2", "--seed", "5", "--quiet", "--out", out},
                   dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json report = ReadJson(out + "/report.json");
  for (const char* impl : {"token-lua", "redlock"}) {
    const nlohmann::json* row = FindRow(report, impl);
    ASSERT_NE(row, nullptr) << impl;
    EXPECT_EQ((*row)["verdict"], "pass") << impl;
    EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0) << impl;
  }
  // Link faults: the proxy forwards the TLS bytes; the certificate still names 127.0.0.1.
  r = RunLockstorm({"run", "--servers", server_->Url(), "--tls-ca-cert", certs_->ca, "--impl",
                    "token-lua", "--scenario", "latency", "--duration", "4", "--seed", "5",
                    "--quiet", "--out", out + "-latency"},
                   dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json latency = ReadJson(out + "-latency/report.json");
  const nlohmann::json* row = FindRow(latency, "token-lua");
  ASSERT_NE(row, nullptr);
  EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0);

  // A plug-in (redis-py's lock) over TLS: told rediss://, the CA and the password.
  const std::string redis_py = "redis-py=exec:/usr/bin/python3 " +
                               std::string(LOCKSTORM_SOURCE_DIR) +
                               "/impls/exec/python/redis_py_lock.py";
  r = RunLockstorm({"run", "--servers", server_->Url(), "--tls-ca-cert", certs_->ca, "--impl",
                    redis_py, "--clients", "4", "--duration", "2", "--seed", "5", "--quiet",
                    "--out", out + "-plugin"},
                   dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json plugin = ReadJson(out + "-plugin/report.json");
  row = FindRow(plugin, "redis-py");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["verdict"], "pass");
  EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0);

  // The wrong CA: one line, exit 4, naming the server and the reason.
  r = RunLockstorm({"run", "--servers", server_->Url(), "--tls-ca-cert", certs_->other_ca,
                    "--duration", "1", "--out", out + "-wrong"},
                   dir_.path(), env);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
  // A CA file that does not exist: one line naming the flag.
  r = RunLockstorm({"run", "--servers", server_->Url(), "--tls-ca-cert", dir_.path() + "/nope.pem",
                    "--duration", "1", "--out", out + "-nope"},
                   dir_.path(), env);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(r.err.rfind("lockstorm: --tls-ca-cert: cannot load", 0), 0u) << r.err;
}

}  // namespace
}  // namespace lockstorm
