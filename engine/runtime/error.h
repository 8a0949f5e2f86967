// Errors of the runtime, as values (style practice 14). At the runtime's start-up edges
// (configuration, command line) an error is one line of text meant for an operator, so it is
// carried as that line; the message already names where the problem is (file:line, key).
#pragma once

#include <expected>
#include <string>

namespace fastzab::runtime {

struct Error {
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

}  // namespace fastzab::runtime
