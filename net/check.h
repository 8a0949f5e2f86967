// An invariant check that never compiles out (style practice 14): a broken invariant in the
// transport would deliver frames of a closed session or reuse a buffer the kernel still owns, so
// it aborts in every build, naming the file, line and expression.
#pragma once

namespace fastzab::net::detail {
[[noreturn]] void check_failed(const char* expression, const char* file, int line) noexcept;
}  // namespace fastzab::net::detail

#define FZ_NET_CHECK(condition)                                                     \
  ((condition) ? static_cast<void>(0)                                               \
               : ::fastzab::net::detail::check_failed(#condition, __FILE__, __LINE__))
