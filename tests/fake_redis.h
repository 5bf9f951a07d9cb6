// An in-memory stand-in for one Redis node, for unit tests of pure logic and of the runner's
// concurrency (under TSan) without sockets. Understands only what the built-in single-node
// locks send: PING, GET, SET [NX] [PX], SETNX, PEXPIRE, DEL, and EVAL of the two Lua scripts
// in impls/common.h. Keys expire on the real clock. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "harness/clock.h"
#include "harness/transport.h"
#include "impls/common.h"

namespace lockstorm::testing {

class FakeRedis {
 public:
  Reply Execute(const Command& c) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = RealClock()->NowUs();
    std::erase_if(
        keys_, [now](const auto& kv) { return kv.second.expire_us && kv.second.expire_us <= now; });
    const std::string& op = c.at(0);
    if (op == "PING") return Status("PONG");
    if (op == "GET") return keys_.count(c[1]) ? Str(keys_[c[1]].value) : Reply{};
    if (op == "SETNX") return SetNx(c[1], c[2], 0) ? Int(1) : Int(0);
    if (op == "SET") {
      const int64_t px = c.size() >= 6 ? std::stoll(c[5]) : 0;
      const bool nx = c.size() >= 4 && c[3] == "NX";
      if (nx) return SetNx(c[1], c[2], px) ? Status("OK") : Reply{};
      keys_[c[1]] = {c[2], px ? now + px * 1000 : 0};
      return Status("OK");
    }
    if (op == "PEXPIRE") {
      auto it = keys_.find(c[1]);
      if (it == keys_.end()) return Int(0);
      it->second.expire_us = now + std::stoll(c[2]) * 1000;
      return Int(1);
    }
    if (op == "DEL") return Int(static_cast<int64_t>(keys_.erase(c[1])));
    if (op == "EVAL") {
      auto it = keys_.find(c[3]);
      const bool ours = it != keys_.end() && it->second.value == c[4];
      if (c[1] == kCompareAndDeleteLua) {
        if (ours) keys_.erase(it);
        return Int(ours ? 1 : 0);
      }
      if (c[1] == kCompareAndPexpireLua) {
        if (ours) it->second.expire_us = now + std::stoll(c[5]) * 1000;
        return Int(ours ? 1 : 0);
      }
    }
    return {Reply::Type::kError, "ERR fake redis does not know " + op, 0, {}};
  }

 private:
  struct Entry {
    std::string value;
    int64_t expire_us = 0;
  };
  bool SetNx(const std::string& k, const std::string& v, int64_t px_ms) {
    if (keys_.count(k)) return false;
    keys_[k] = {v, px_ms ? RealClock()->NowUs() + px_ms * 1000 : 0};
    return true;
  }
  static Reply Status(std::string s) { return {Reply::Type::kStatus, std::move(s), 0, {}}; }
  static Reply Str(std::string s) { return {Reply::Type::kString, std::move(s), 0, {}}; }
  static Reply Int(int64_t v) { return {Reply::Type::kInteger, "", v, {}}; }

  std::mutex mu_;
  std::map<std::string, Entry> keys_;
};

// A Transport whose every node is the same FakeRedis (single-node locks use node 0).
class FakeTransport : public Transport {
 public:
  explicit FakeTransport(FakeRedis* redis) : redis_(redis) {}
  int node_count() const override { return 1; }
  Reply Call(int, const Command& cmd, int64_t) override { return redis_->Execute(cmd); }
  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd, int64_t) override {
    std::vector<Reply> out;
    for (size_t i = 0; i < nodes.size(); ++i) out.push_back(redis_->Execute(cmd));
    return out;
  }

 private:
  FakeRedis* redis_;
};

}  // namespace lockstorm::testing
