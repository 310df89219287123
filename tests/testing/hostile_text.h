// Hostile names for the text-output tests (tests/unit/common/report/): bytes
// a file name, a process name or an interface name may hold, with what a
// person must read for each (common/escape.h's Printable of the agent's
// ToValidUtf8 text), and the check that an output has one line per row and
// nothing a terminal would act on. Thread-safe (pure functions).
#ifndef NETVIGIL_TESTS_TESTING_HOSTILE_TEXT_H_
#define NETVIGIL_TESTS_TESTING_HOSTILE_TEXT_H_

#include <cstddef>
#include <string>
#include <vector>

namespace netvigil::testing {

struct Hostile {
  std::string bytes;  // as the kernel or a peer hands them over
  std::string shown;  // as a person must read them
};

// Terminal escapes, line breaks that forge a row of each tool's table,
// invalid UTF-8, its escaped look-alike, bidi and C1 controls, Unicode line
// separators, a NUL and a very long name.
std::vector<Hostile> HostileNames();

// `out` has exactly `rows` newlines, is valid UTF-8 and no line of it has a
// control byte, a C1 or a bidi control (gtest expectations).
void ExpectOneLinePerRow(const std::string& out, size_t rows);

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_HOSTILE_TEXT_H_
