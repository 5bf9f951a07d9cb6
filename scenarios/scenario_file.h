// Scenario files: a Scenario as JSON (docs/scenario-format.md). `lockstorm run --scenario FILE`
// loads one; ScenarioToJson writes one back (Parse(ToJson(s)) == s for every valid scenario).
//
// Every error is one line meant for a human, naming the source, the JSON path and what was
// expected:  "<source>: $.nemesis[2].at_ms: expected a non-negative integer, got "soon"".
#pragma once

#include <string>

#include "harness/status.h"
#include "scenarios/scenario.h"

namespace lockstorm {

// Reads and parses the scenario file at `path`. On success fills *out (entirely: fields the
// file omits get the struct defaults). Errors: IoError "--scenario: cannot read <path>:
// <strerror>", or ParseScenarioJson's errors with `path` as the source.
Status LoadScenarioFile(const std::string& path, Scenario* out);

// Parses one scenario document. `source_name` prefixes error messages (a path, "<stdin>").
// Every field is optional except "name"; unknown keys, duplicate keys, wrong types and
// out-of-range values are InvalidArgument errors. On error *out is unchanged.
Status ParseScenarioJson(const std::string& text, const std::string& source_name, Scenario* out);

// Checks a Scenario built in code, or one loaded and then changed by command-line overrides
// (a shorter --duration can leave a nemesis event past the end), against the same rules as
// ParseScenarioJson. Messages name the JSON path the value would have in a file.
Status ValidateScenario(const Scenario& s, const std::string& source_name);

// The scenario as a complete, pretty-printed JSON document (2-space indent, no trailing
// newline). Nemesis events list only the fields their fault uses.
std::string ScenarioToJson(const Scenario& s);

// The workload and the fault schedule for people, one line per fault event:
//   "4 clients, 2 keys, ttl 500 ms, 3.0 s on 1 node; 2 faults:
//     at 0.5 s for 1.2 s: partition nodes [0] clients [1]
//     at 2.0 s: clock-jump nodes [0] by 500 ms"
std::string DescribeSchedule(const Scenario& s);

// One fault event of that schedule, e.g. "at 2.0 s: clock-jump nodes [0] by 500 ms".
std::string DescribeEvent(const NemesisEvent& e);

}  // namespace lockstorm
