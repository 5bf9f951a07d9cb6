// Helpers for end-to-end tests that run the lockstorm binary (LOCKSTORM_BIN).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness/process.h"

namespace lockstorm {

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs `argv` (stdout and stderr into files in `dir`), waits (bounded) for it to exit.
inline Result RunProgram(std::vector<std::string> argv, const std::string& dir,
                         std::map<std::string, std::string> env = {}, int64_t timeout_ms = 120000) {
  SpawnOptions o;
  o.argv = std::move(argv);
  o.stdout_path = dir + "/stdout.txt";
  o.stderr_path = dir + "/stderr.txt";
  o.env = std::move(env);
  std::ofstream(o.stdout_path, std::ios::trunc);  // Spawn appends; each run starts empty
  std::ofstream(o.stderr_path, std::ios::trunc);
  std::unique_ptr<Process> p;
  Status s = Spawn(o, &p);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Result r;
  if (!s.ok()) return r;
  int st = 0;
  EXPECT_TRUE(p->WaitFor(timeout_ms, &st)) << o.argv[0] << " did not exit in time";
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadFile(o.stdout_path);
  r.err = ReadFile(o.stderr_path);
  return r;
}

// Runs lockstorm with `args`, waits (bounded) for it to exit.
inline Result RunLockstorm(const std::vector<std::string>& args, const std::string& dir,
                           std::map<std::string, std::string> env = {},
                           int64_t timeout_ms = 120000) {
  std::vector<std::string> argv = {LOCKSTORM_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(std::move(argv), dir, std::move(env), timeout_ms);
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

inline const nlohmann::json* FindRow(const nlohmann::json& report, const std::string& impl) {
  for (const auto& r : report["results"])
    if (r["impl"] == impl) return &r;
  return nullptr;
}

}  // namespace lockstorm
