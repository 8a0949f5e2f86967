#include "net/check.h"

#include <cstdio>
#include <cstdlib>

namespace fastzab::net::detail {

void check_failed(const char* expression, const char* file, int line) noexcept {
  std::fprintf(stderr, "fastzab-net: check failed at %s:%d: %s\n", file, line, expression);
  std::abort();
}

}  // namespace fastzab::net::detail
