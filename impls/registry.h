// The table of lock implementations: one explicit list, no static registration.
//
// Each entry names a lock, says where it comes from and what its known weakness is (shown by
// `lockstorm list`), builds an instance for one client, and declares the scenarios in which it
// is KNOWN to be unsafe: a violation there is reported as "expected-fail" (an xfail), not as a
// failure. A user's lock (exec:...) is expected safe everywhere unless told otherwise.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness/lock.h"
#include "harness/status.h"

namespace lockstorm {

struct ImplInfo {
  std::string name;                       // "token-lua"
  std::string description;                // origin: what real code does this
  std::string weakness;                   // the known weakness, or "" if none within its model
  int min_nodes = 1;                      // 1 for single-node locks; redlock wants >= 3
  bool multi_node = false;                // uses every node (Redlock) rather than node 0
  std::set<std::string> expected_unsafe;  // scenario names where violations are expected
  std::function<std::unique_ptr<Lock>(const LockEnv&)> make;
};

// Every built-in implementation, in display order.
const std::vector<ImplInfo>& BuiltinImpls();
// nullptr if unknown.
const ImplInfo* FindBuiltinImpl(const std::string& name);

}  // namespace lockstorm
