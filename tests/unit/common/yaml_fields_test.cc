// The shared strict YAML reader (common/yaml_fields.h): both error
// spellings, defaults kept, numbers at their edges, cross-field checks and
// the places it records. The config files' own rules are tested in
// collector_config_test.cc and analysis_options_test.cc.
#include "common/yaml_fields.h"

#include <cstdint>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace netvigil {
namespace {

using ::netvigil::testing::IsOk;
using ::netvigil::testing::StatusIs;

struct Doc {
  explicit Doc(const std::string& yaml) : root(YAML::Load(yaml)) {}
  YAML::Node root;
  std::string source = "f.yaml";
  absl::Status error;
  std::map<std::string, std::string> where;
};

TEST(YamlFieldsTest, AbsentAndNullFieldsKeepTheirDefaults) {
  Doc d("a: ~\n");
  YamlFields f(d.root, "", d.source, &d.error);
  uint32_t a = 7, b = 8;
  f.Uint("a", 0, 100, &a);
  f.Uint("b", 0, 100, &b);
  f.Finish();
  EXPECT_THAT(d.error, IsOk());
  EXPECT_EQ(a, 7u);
  EXPECT_EQ(b, 8u);
}

TEST(YamlFieldsTest, QuotedAndPlainNamingOfTheSameMistake) {
  {
    Doc d("top:\n  n: 300\n");
    YamlFields f(d.root, "", d.source, &d.error);
    YamlFields t = f.Map("top");
    uint32_t n = 0;
    t.Uint("n", 1, 64, &n);
    EXPECT_THAT(d.error, StatusIs(absl::StatusCode::kInvalidArgument,
                                  "f.yaml:2:6: field 'top.n': must be "
                                  "between 1 and 64, got 300"));
  }
  {
    Doc d("top:\n  n: 300\n");
    YamlFields t(d.root["top"], "top", d.source, &d.error, nullptr,
                 YamlFieldNaming::kPlain);
    uint32_t n = 0;
    t.Uint("n", 1, 64, &n);
    EXPECT_THAT(d.error,
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "f.yaml:2:6: top.n: must be between 1 and 64"));
  }
}

TEST(YamlFieldsTest, UnknownKeysInBothNamings) {
  Doc d("top:\n  known: 1\n  other: 2\n");
  YamlFields q = YamlFields(d.root, "", d.source, &d.error).Map("top");
  uint32_t v = 0;
  q.Uint("known", 0, 9, &v);
  q.Finish();
  EXPECT_THAT(d.error, StatusIs(absl::StatusCode::kInvalidArgument,
                                "f.yaml:3:3: unknown field 'top.other' "
                                "(known here: known)"));
  absl::Status plain;
  YamlFields p(d.root["top"], "top", d.source, &plain, nullptr,
               YamlFieldNaming::kPlain);
  p.Uint("known", 0, 9, &v);
  p.Finish();
  EXPECT_THAT(plain, StatusIs(absl::StatusCode::kInvalidArgument,
                              "f.yaml:3:3: top.other: unknown field"));
}

TEST(YamlFieldsTest, NumbersAtTheirEdges) {
  Doc d(
      "big: 99999999999999999999999\nneg: -1\nexp: 1e3\nnan: .nan\n"
      "inf: .inf\nlow: 0\nok: 0.5\n");
  auto first_error = [&](auto read) {
    absl::Status e;
    YamlFields f(d.root, "", d.source, &e);
    read(f);
    return e;
  };
  uint64_t u = 0;
  double x = 0;
  EXPECT_THAT(first_error([&](YamlFields& f) { f.Uint64("big", 0, 10, &u); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "field 'big': must be between 0 and 10, got "
                       "99999999999999999999999"));
  EXPECT_THAT(first_error([&](YamlFields& f) { f.Uint64("neg", 0, 10, &u); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "expected a whole number, got '-1'"));
  EXPECT_THAT(first_error([&](YamlFields& f) { f.Uint64("exp", 0, 1e4, &u); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "expected a whole number, got '1e3'"));
  for (const char* key : {"nan", "inf"}) {
    EXPECT_THAT(
        first_error([&](YamlFields& f) { f.Double(key, 0, 1e9, false, &x); }),
        StatusIs(absl::StatusCode::kInvalidArgument, "expected a number"))
        << key;
  }
  EXPECT_THAT(
      first_error([&](YamlFields& f) { f.Double("low", 0, 1, true, &x); }),
      StatusIs(absl::StatusCode::kInvalidArgument, "must be above 0"));
  EXPECT_THAT(
      first_error([&](YamlFields& f) { f.Double("low", 0, 1, false, &x); }),
      IsOk());
  EXPECT_THAT(
      first_error([&](YamlFields& f) { f.Double("ok", 0, 1, true, &x); }),
      IsOk());
  EXPECT_EQ(x, 0.5);
}

TEST(YamlFieldsTest, DurationsAreFiniteAndInRange) {
  Doc d("a: inf\nb: 90s\nc: 2h\n");
  absl::Duration out = absl::Seconds(1);
  absl::Status e;
  YamlFields f(d.root, "", d.source, &e);
  f.Duration("b", absl::ZeroDuration(), absl::Hours(1), &out);
  EXPECT_EQ(out, absl::Seconds(90));
  f.Duration("a", absl::ZeroDuration(), absl::Hours(1), &out);
  EXPECT_THAT(e, StatusIs(absl::StatusCode::kInvalidArgument,
                          "f.yaml:1:4: field 'a': expected a duration"));
  f.Duration("c", absl::ZeroDuration(), absl::Hours(1), &out);
  EXPECT_EQ(out, absl::Seconds(90)) << "no read after the first error";
}

TEST(YamlFieldsTest, ACheckReportsAtItsKeyOrAtTheMapping) {
  Doc d("m:\n  lo: 5\n  hi: 3\n");
  YamlFields f(d.root["m"], "m", d.source, &d.error, nullptr,
               YamlFieldNaming::kPlain);
  f.Check(false, "hi", "must not be below lo");
  EXPECT_THAT(d.error, StatusIs(absl::StatusCode::kInvalidArgument,
                                "f.yaml:3:7: m.hi: must not be below lo"));
  absl::Status absent;
  YamlFields g(d.root["m"], "m", d.source, &absent, nullptr,
               YamlFieldNaming::kPlain);
  g.Check(false, "mid", "is wrong");
  EXPECT_THAT(absent, StatusIs(absl::StatusCode::kInvalidArgument,
                               "f.yaml:2:3: m.mid: is wrong"));
}

TEST(YamlFieldsTest, DuplicatesAndNonMappingsFailAtOnce) {
  Doc d("a: 1\nb: 2\na: 3\n");
  YamlFields f(d.root, "", d.source, &d.error);
  EXPECT_THAT(d.error, StatusIs(absl::StatusCode::kInvalidArgument,
                                "f.yaml:3:1: field 'a': given twice, on line 1 "
                                "and on line 3"));
  Doc list("[1, 2]\n");
  YamlFields g(list.root, "x", list.source, &list.error);
  EXPECT_THAT(list.error,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "f.yaml:1:1: field 'x': expected a mapping of keys"));
}

TEST(YamlFieldsTest, PlacesAndListElementPaths) {
  Doc d("s:\n  - {name: a}\n  - 7\n");
  YamlFields f(d.root, "", d.source, &d.error, &d.where);
  std::string name;
  f.Sequence("s", [&](const YAML::Node& n, const std::string& path) {
    YamlFields e = f.Nested(n, path);
    e.String("name", &name);
    e.Finish();
  });
  EXPECT_EQ(name, "a");
  EXPECT_EQ(d.where.at("s"), "f.yaml:2:3");
  EXPECT_EQ(d.where.at("s[0].name"), "f.yaml:2:12");
  EXPECT_THAT(d.error,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "f.yaml:3:5: field 's[1]': expected a mapping"));
}

}  // namespace
}  // namespace netvigil
