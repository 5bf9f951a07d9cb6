// The table of lock implementations: one explicit list, no static registration.
//
// Each entry names a lock, says where it comes from and what its known weakness is (shown by
// `lockstorm list`), builds an instance for one client, and declares the scenarios in which it
// is KNOWN to be unsafe: a violation there is reported as "expected-fail" (an xfail), not as a
// failure. A user's lock (exec:...) is expected safe everywhere unless told otherwise.
#pragma once

#include <functional>
#include <map>
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

// A deliberately broken lock of the mutant corpus (impls/mutants.cc): a correct built-in lock
// with one real-world bug planted, which lockstorm must catch. `lockstorm mutants` runs each
// through the scenarios it declares and reports the mutation score.
struct MutantInfo {
  ImplInfo impl;        // name = the bug ("del-release"); impl.description says what it does
  std::string base;     // the correct built-in lock it was derived from ("token-lua")
  std::string pattern;  // the real-world pattern it reproduces, with a citation
  // Scenario name → what should expose it there: kExpectUnsafe ("unsafe": a safety or
  // contract violation) or kExpectLiveness ("liveness"). At least one entry.
  std::map<std::string, std::string> exposed_by;
};

// Every mutant, in display order.
const std::vector<MutantInfo>& Mutants();
// nullptr if unknown.
const MutantInfo* FindMutant(const std::string& name);

// Every built-in implementation, in display order.
const std::vector<ImplInfo>& BuiltinImpls();
// nullptr if unknown.
const ImplInfo* FindBuiltinImpl(const std::string& name);

}  // namespace lockstorm
