// Test helpers shared by integration tests (*_itest.cc). Not part of the product.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "harness/redis_server.h"

namespace lockstorm::testing {

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lockstorm-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// N embedded redis-servers for one test, stopped by the destructor.
// Usage: TestServers s(3); ASSERT_TRUE(s.status.ok()) << s.status.ToString();
class TestServers {
 public:
  explicit TestServers(int n, ServerOptions opts = {}) {
    status = set.StartEmbedded(dir.path(), n, opts);
  }
  TempDir dir;
  ServerSet set;
  Status status;
};

}  // namespace lockstorm::testing
