// Errors are values. g++ 12 ships std::expected; clang 14 (used for the libFuzzer build) cannot
// compile libstdc++'s <expected>, so a minimal stand-in with the same surface is used there.
#pragma once

#include <version>

#if defined(__cpp_lib_expected)
#include <expected>
namespace fastzab::core {
template <class T, class E>
using Expected = std::expected<T, E>;
template <class E>
constexpr std::unexpected<E> unexpected(E e) { return std::unexpected<E>(e); }
}  // namespace fastzab::core
#else
#include <utility>
#include <variant>
namespace fastzab::core {
template <class E>
struct Unexpected {
  E error;
};
template <class E>
constexpr Unexpected<E> unexpected(E e) { return Unexpected<E>{e}; }

template <class T, class E>
class Expected {
 public:
  constexpr Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  template <class G>
  constexpr Expected(Unexpected<G> u) : v_(std::in_place_index<1>, E(u.error)) {}
  constexpr bool has_value() const noexcept { return v_.index() == 0; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr T& operator*() { return std::get<0>(v_); }
  constexpr const T& operator*() const { return std::get<0>(v_); }
  constexpr T* operator->() { return &std::get<0>(v_); }
  constexpr const T* operator->() const { return &std::get<0>(v_); }
  constexpr T& value() { return std::get<0>(v_); }
  constexpr const T& value() const { return std::get<0>(v_); }
  constexpr const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};
}  // namespace fastzab::core
#endif
