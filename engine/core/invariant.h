// Always-on invariant checks. Unlike assert(), these never compile out: they guard data.
#pragma once

#include <cstdint>

namespace fastzab::core {
[[noreturn]] void assertion_failed(const char* expr, const char* file, int line,
                                   const char* message, std::int64_t a, std::int64_t b) noexcept;
}  // namespace fastzab::core

#define FASTZAB_ASSERT(expr)                                                              \
  do {                                                                                    \
    if (!(expr)) [[unlikely]]                                                             \
      ::fastzab::core::assertion_failed(#expr, __FILE__, __LINE__, nullptr, 0, 0);        \
  } while (0)

// Logs both operands, which is what one wants to see when an ordering invariant breaks.
#define FASTZAB_ASSERT_OP(a, op, b)                                                       \
  do {                                                                                    \
    const auto fastzab_a_ = (a);                                                          \
    const auto fastzab_b_ = (b);                                                          \
    if (!(fastzab_a_ op fastzab_b_)) [[unlikely]]                                         \
      ::fastzab::core::assertion_failed(#a " " #op " " #b, __FILE__, __LINE__, "values",  \
                                        static_cast<std::int64_t>(fastzab_a_),            \
                                        static_cast<std::int64_t>(fastzab_b_));           \
  } while (0)
