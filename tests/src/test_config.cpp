// JsonFields: defaults kept, types checked, unknown keys rejected with file and key named.
#include <gtest/gtest.h>

#include "src/config.h"

namespace r1kit {
namespace {

struct Opts {
  int steps = 10;  // default kept when the key is absent
  double lr = 1e-3;
  std::string name = "x";
  std::vector<int> ids;
};

Opts parse(const Json& j) {
  Opts o;
  JsonFields f(j, "recipe.json: stages[0]");
  f.get("steps", o.steps);
  f.get("lr", o.lr);
  f.get("name", o.name);
  f.get("ids", o.ids);
  f.finish();
  return o;
}

TEST(Config, DefaultsAndValues) {
  Opts o = parse(Json::parse(R"({"lr": 0.5, "ids": [1, 2]})"));
  EXPECT_EQ(o.steps, 10);
  EXPECT_DOUBLE_EQ(o.lr, 0.5);
  EXPECT_EQ(o.name, "x");
  EXPECT_EQ(o.ids, (std::vector<int>{1, 2}));
  EXPECT_EQ(parse(Json::parse(R"({"steps": 1e3})")).steps, 1000);  // 1e3 is an integer to a human
}

TEST(Config, UnknownKeyNamesFileAndKey) {
  try {
    parse(Json::parse(R"({"lr": 0.5, "bta": 1})"));
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "recipe.json: stages[0].bta: unknown key");
  }
}

TEST(Config, WrongTypeNamesKey) {
  try {
    parse(Json::parse(R"({"steps": "ten"})"));
    FAIL() << "string accepted as integer";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "recipe.json: stages[0].steps must be an integer, got string");
  }
  EXPECT_THROW(parse(Json::parse(R"({"steps": 2.5})")), Error);
  EXPECT_THROW(parse(Json::parse(R"({"ids": [1, "a"]})")), Error);
}

// Found by fuzz_model_config: a whole-valued float past int64 (2.5e48) was converted with
// undefined behaviour, and values past int's range wrapped silently.
TEST(Config, IntegersOutOfRangeAreErrors) {
  for (const char* text : {R"({"steps": 2.5e48})", R"({"steps": 3000000000})", R"({"steps": 18446744073709551615})",
                           R"({"ids": [1, -1e300]})"}) {
    try {
      parse(Json::parse(text));
      FAIL() << text << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is out of range, got"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse(Json::parse(R"({"steps": 1e3})")).steps, 1000);
}

TEST(Config, SyntaxErrorNamesLine) {
  try {
    parse_json_text("{\n  \"a\": 1,\n  \"b\": ]\n}", "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cfg.json:3:", 0), 0u) << e.what();
  }
}

// Found by fuzz_model_config (tests/fuzz/regressions): a number beyond double's range is not a
// syntax error but nlohmann's out_of_range, which escaped as an internal error.
TEST(Config, NumberOutOfRangeIsAUserError) {
  try {
    parse_json_text("{\"hidden_size\": 1e999}", "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("config.json: invalid JSON: number overflow parsing '1e999'", 0), 0u)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
