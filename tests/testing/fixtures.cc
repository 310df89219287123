#include "tests/testing/fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace netvigil::testing {

std::string FixturePath(const std::string& relative) {
  return std::string(NETVIGIL_SOURCE_DIR) + "/tests/fixtures/" + relative;
}

std::string ReadFixture(const std::string& relative) {
  std::ifstream in(FixturePath(relative), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "missing fixture %s\n", FixturePath(relative).c_str());
    std::abort();
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace netvigil::testing
