// The timeline's route memory: routes from hops, what counts as a change,
// lookups by run and the bound.
#include "collector/web/route_cache.h"

#include "gtest/gtest.h"

namespace netvigil::collector::web {
namespace {

v1::PathRun PathRunOf(std::vector<std::pair<uint32_t, std::string>> hops) {
  v1::PathRun r;
  for (const auto& [ttl, addr] : hops) {
    v1::PathHop* h = r.add_hops();
    h->set_ttl(ttl);
    if (!addr.empty()) h->add_addresses()->set_address(addr);
  }
  return r;
}

TEST(RouteCacheTest, RouteIsOneAddressPerTtl) {
  EXPECT_EQ(RouteOf(PathRunOf({{1, "10.0.0.1"}, {3, "192.0.2.1"}})),
            (Route{"10.0.0.1", "", "192.0.2.1"}));
  // A TTL out of range (hostile or broken input) is left out.
  EXPECT_EQ(RouteOf(PathRunOf({{0, "a"}, {256, "b"}, {1, "c"}})), (Route{"c"}));
  EXPECT_TRUE(RouteOf(v1::PathRun()).empty());
}

TEST(RouteCacheTest, OnlyADifferentAnsweringAddressIsAChange) {
  const Route a{"10.0.0.1", "10.0.0.2", "192.0.2.1"};
  EXPECT_FALSE(RouteChanged(a, a));
  // A hop that did not answer once is rate limiting, not a new route.
  EXPECT_FALSE(RouteChanged(a, {"10.0.0.1", "", "192.0.2.1"}));
  EXPECT_FALSE(RouteChanged(a, {"10.0.0.1"}));
  EXPECT_TRUE(RouteChanged(a, {"10.0.0.1", "10.0.0.3", "192.0.2.1"}));
}

TEST(RouteCacheTest, FindsWhatWasPutAndNamesWhatIsMissing) {
  RouteCache cache(100);
  const Route a{"10.0.0.1", "10.0.0.2"}, b{"10.0.0.1", "10.0.0.3"};
  cache.Put("h", "gw", 1, a);
  cache.Put("h", "gw", 2, b);
  cache.Put("h", "gw", 3, Route{});  // known to have no route
  cache.Put("other", "gw", 4, a);
  std::vector<size_t> missing;
  std::vector<Route> got = cache.Find("h", "gw", {1, 4, 2, 3}, &missing);
  EXPECT_EQ(missing, std::vector<size_t>{1});  // seq 4 is another host's
  EXPECT_EQ(got[0], a);
  EXPECT_EQ(got[2], b);
  EXPECT_TRUE(got[3].empty());
  cache.Find("h", "dns", {1}, &missing);
  EXPECT_EQ(missing, std::vector<size_t>{0});
  cache.Put("h", "gw", 1, a);  // again: not counted twice
  EXPECT_EQ(cache.size(), 4u);
}

TEST(RouteCacheTest, EmptiedPastItsBound) {
  RouteCache cache(3);
  for (uint64_t seq = 1; seq <= 3; ++seq) cache.Put("h", "gw", seq, {"a"});
  EXPECT_EQ(cache.size(), 3u);
  cache.Put("h", "gw", 4, {"a"});
  EXPECT_EQ(cache.size(), 1u);
  std::vector<size_t> missing;
  cache.Find("h", "gw", {1, 4}, &missing);
  EXPECT_EQ(missing, std::vector<size_t>{0});
}

}  // namespace
}  // namespace netvigil::collector::web
