// Suite `dpdk`: EAL arguments DPDK refuses give an error that says so and names them, instead
// of DPDK's own exit (its own process: a process has one EAL).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "net/dpdk_port.h"

namespace fastzab::net::dpdk {
namespace {

TEST(DpdkEal, BadArgumentsAreAnErrorNamingThem) {
  const std::string prefix = "fz-dpdk-bad-" + std::to_string(::getpid());
  const std::vector<std::string> args{"--no-huge", "--no-pci", "--file-prefix", prefix,
                                      "--no-such-eal-option"};
  const auto eal = Eal::init(args);
  ASSERT_FALSE(eal.has_value());
  EXPECT_EQ(eal.error().code, errc::dpdk_error);
  const std::string text = eal.error().to_string();
  EXPECT_NE(text.find("EAL init failed"), std::string::npos) << text;
  EXPECT_NE(text.find("--no-such-eal-option"), std::string::npos) << text;
  for (const char* base : {"/var/run/dpdk/", "/tmp/dpdk/"}) {
    std::error_code ignored;
    std::filesystem::remove_all(std::string(base) + prefix, ignored);
  }
}

}  // namespace
}  // namespace fastzab::net::dpdk
