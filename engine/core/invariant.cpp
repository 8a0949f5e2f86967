#include "invariant.h"

#include <cstdio>
#include <cstdlib>

namespace fastzab::core {
void assertion_failed(const char* expr, const char* file, int line, const char* message,
                      std::int64_t a, std::int64_t b) noexcept {
  if (message != nullptr) {
    std::fprintf(stderr, "fastzab: assertion failed: %s at %s:%d (%s: %lld, %lld)\n", expr, file,
                 line, message, static_cast<long long>(a), static_cast<long long>(b));
  } else {
    std::fprintf(stderr, "fastzab: assertion failed: %s at %s:%d\n", expr, file, line);
  }
  std::fflush(stderr);
  std::abort();
}
}  // namespace fastzab::core
