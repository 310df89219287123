// Reading recorded inputs from tests/fixtures. Thread-safe.
#ifndef NETVIGIL_TESTS_TESTING_FIXTURES_H_
#define NETVIGIL_TESTS_TESTING_FIXTURES_H_

#include <string>

namespace netvigil::testing {

// The absolute path of tests/fixtures/RELATIVE.
std::string FixturePath(const std::string& relative);
// The bytes of tests/fixtures/RELATIVE; aborts the test binary when missing.
std::string ReadFixture(const std::string& relative);

}  // namespace netvigil::testing

#endif  // NETVIGIL_TESTS_TESTING_FIXTURES_H_
