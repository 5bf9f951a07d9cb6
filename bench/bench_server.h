// One embedded redis-server for a benchmark file, pinned like the rest of lockstorm_bench
// (LOCKSTORM_PIN: split (default), same or none; lockstorm_bench records the placement in
// the JSON context). Create it on first use, after main() started the reaper; the static's
// destructor stops the server and removes its directory. Exits 4 if the server won't start.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "harness/placement.h"
#include "harness/redis_server.h"

namespace lockstorm {

class PinnedBenchServer {
 public:
  // `name` labels the temp directory and the error line ("proxy_bench", ...).
  explicit PinnedBenchServer(const std::string& name) {
    std::string tmpl = "/tmp/lockstorm-" + name + "-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    if (Status s = set_.StartEmbedded(dir_, 1, {}); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), s.message().c_str());
      std::exit(4);
    }
    const char* p = std::getenv("LOCKSTORM_PIN");
    pin_ = p ? p : "split";
    if (pin_ != "none") {
      PinProcess(getpid(), ClientCpu(pin_));
      PinProcess(set_.server(0)->pid(), ServerCpu(pin_));
    }
  }
  ~PinnedBenchServer() {
    set_.StopAll();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ServerAddress address() const { return set_.addresses()[0]; }
  const std::string& dir() const { return dir_; }
  const std::string& pin() const { return pin_; }

 private:
  std::string dir_;
  ServerSet set_;
  std::string pin_;
};

}  // namespace lockstorm
