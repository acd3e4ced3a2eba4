#include "shared/net/address.h"

#include <gtest/gtest.h>

namespace fulcrum {
namespace {

TEST(IpAddress, ParsesAndFormatsIpv4) {
  auto a = IpAddress::parse("198.18.0.10");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->isV4());
  EXPECT_EQ(a->v4HostOrder(), 0xC612000Au);
  EXPECT_EQ(a->toString(), "198.18.0.10");
  EXPECT_EQ(formatEndpoint(*a, 80), "198.18.0.10:80");
  EXPECT_EQ(IpAddress::v4(0xC612000Au), *a);
}

TEST(IpAddress, ParsesAndFormatsIpv6) {
  auto a = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->isV4());
  EXPECT_EQ(a->toString(), "2001:db8::1");
  EXPECT_EQ(formatEndpoint(*a, 443), "[2001:db8::1]:443");
}

TEST(IpAddress, RejectsGarbage) {
  for (const char* bad : {"", "198.18.0", "198.18.0.256", "198.18.0.1.2", "host", "1::2::3",
                          " 198.18.0.1", "198.18.0.1 ", "::ffff:zz"}) {
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  }
  EXPECT_FALSE(IpAddress::parse(std::string(200, '1')));
}

TEST(IpAddress, OrdersAndCompares) {
  EXPECT_LT(IpAddress::v4(1), IpAddress::v4(2));
  EXPECT_NE(IpAddress::v4(1), *IpAddress::parse("::1"));
}

}  // namespace
}  // namespace fulcrum
