// An in-memory stand-in for one Redis node, for unit tests of pure logic and of the runner's
// concurrency (under TSan) without sockets. Understands only what the built-in locks and the
// mutant corpus send, with Redis 7's semantics: PING, GET, SET [NX] [PX ms | EX s], SETNX,
// PEXPIRE / EXPIRE (a value <= 0 deletes the key and answers 1), PTTL, DEL, and EVAL of the
// Lua scripts in impls/common.h. Keys expire on the clock given (the real clock by default).
// Thread-safe if that clock is.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "harness/clock.h"
#include "harness/transport.h"
#include "impls/common.h"

namespace lockstorm::testing {

class FakeRedis {
 public:
  explicit FakeRedis(Clock* clock = RealClock()) : clock_(clock) {}

  Reply Execute(const Command& c) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->NowUs();
    std::erase_if(
        keys_, [now](const auto& kv) { return kv.second.expire_us && kv.second.expire_us <= now; });
    const std::string& op = c.at(0);
    if (op == "PING") return Status("PONG");
    if (op == "GET") return keys_.count(c[1]) ? Str(keys_[c[1]].value) : Reply{};
    if (op == "SETNX") return SetNx(c[1], c[2], 0, now) ? Int(1) : Int(0);
    if (op == "SET") {
      bool nx = false;
      int64_t ttl_us = 0;
      for (size_t i = 3; i < c.size(); ++i) {  // options: NX, PX ms, EX s
        if (c[i] == "NX") nx = true;
        if ((c[i] == "PX" || c[i] == "EX") && i + 1 < c.size()) {
          ttl_us = std::stoll(c[i + 1]) * (c[i] == "PX" ? 1000 : 1'000'000);
          ++i;
        }
      }
      if (nx) return SetNx(c[1], c[2], ttl_us, now) ? Status("OK") : Reply{};
      keys_[c[1]] = {c[2], ttl_us ? now + ttl_us : 0};
      return Status("OK");
    }
    if (op == "PEXPIRE") return Int(Expire(c[1], std::stoll(c[2]) * 1000, now));
    if (op == "EXPIRE") return Int(Expire(c[1], std::stoll(c[2]) * 1'000'000, now));
    if (op == "PTTL") {
      auto it = keys_.find(c[1]);
      if (it == keys_.end()) return Int(-2);
      if (it->second.expire_us == 0) return Int(-1);
      return Int((it->second.expire_us - now) / 1000);
    }
    if (op == "DEL") return Int(static_cast<int64_t>(keys_.erase(c[1])));
    if (op == "EVAL") {
      auto it = keys_.find(c[3]);
      const bool missing = it == keys_.end();
      const bool ours = !missing && it->second.value == c[4];
      if (c[1] == kCompareAndDeleteLua) {
        if (ours) keys_.erase(it);
        return Int(ours ? 1 : 0);
      }
      if (c[1] == kCompareAndPexpireLua) {
        return Int(ours ? Expire(c[3], std::stoll(c[5]) * 1000, now) : 0);
      }
      if (c[1] == kCompareAndExpireLua) {
        return Int(ours ? Expire(c[3], std::stoll(c[5]) * 1'000'000, now) : 0);
      }
      if (c[1] == kExtendOrRecreateLua) {
        if (!ours && !missing) return Int(0);
        keys_[c[3]] = {c[4], now + std::stoll(c[5]) * 1000};
        return Int(1);
      }
      if (c[1] == kSetNxOrOursLua) {
        if (ours) return Status("OK");
        return SetNx(c[3], c[4], std::stoll(c[5]) * 1000, now) ? Status("OK") : Reply{};
      }
    }
    return {Reply::Type::kError, "ERR fake redis does not know " + op, 0, {}};
  }

 private:
  struct Entry {
    std::string value;
    int64_t expire_us = 0;  // 0: no TTL
  };
  bool SetNx(const std::string& k, const std::string& v, int64_t ttl_us, int64_t now) {
    if (keys_.count(k)) return false;
    keys_[k] = {v, ttl_us ? now + ttl_us : 0};
    return true;
  }
  // PEXPIRE/EXPIRE: 0 if the key is missing; else 1, and a ttl <= 0 deletes the key.
  int64_t Expire(const std::string& k, int64_t ttl_us, int64_t now) {
    auto it = keys_.find(k);
    if (it == keys_.end()) return 0;
    if (ttl_us <= 0) {
      keys_.erase(it);
    } else {
      it->second.expire_us = now + ttl_us;
    }
    return 1;
  }
  static Reply Status(std::string s) { return {Reply::Type::kStatus, std::move(s), 0, {}}; }
  static Reply Str(std::string s) { return {Reply::Type::kString, std::move(s), 0, {}}; }
  static Reply Int(int64_t v) { return {Reply::Type::kInteger, "", v, {}}; }

  Clock* clock_;
  std::mutex mu_;
  std::map<std::string, Entry> keys_;
};

// A Transport whose every node is the same FakeRedis (single-node locks use node 0). If set,
// `after_execute` sees every command and its reply after it ran and before the caller does
// (a test can interleave another client there, or move a clock).
class FakeTransport : public Transport {
 public:
  explicit FakeTransport(FakeRedis* redis) : redis_(redis) {}
  int node_count() const override { return 1; }
  Reply Call(int, const Command& cmd, int64_t) override { return Execute(cmd); }
  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd, int64_t) override {
    std::vector<Reply> out;
    for (size_t i = 0; i < nodes.size(); ++i) out.push_back(Execute(cmd));
    return out;
  }

  std::function<void(const Command& cmd, const Reply& reply)> after_execute;

 private:
  Reply Execute(const Command& cmd) {
    Reply r = redis_->Execute(cmd);
    if (after_execute) after_execute(cmd, r);
    return r;
  }

  FakeRedis* redis_;
};

}  // namespace lockstorm::testing
