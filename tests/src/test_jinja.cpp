// The Jinja renderer (src/jinja_template.h) against transformers' own Jinja environment on
// the cases of tests/parity/jinja_cases.py, plus what only r1kit promises: errors that name
// the template's line and column, and {% generation %} spans.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "src/jinja_template.h"
#include "tests/test_util.h"

namespace r1kit::jinja {
namespace {

using r1kit::testing::TempDir;

TEST(Jinja, MatchesTransformersEnvironment) {
  TempDir tmp;
  const std::string cases = tmp / "cases.jsonl";
  ASSERT_EQ(r1kit::testing::run_python("tests/parity/jinja_cases.py '" + cases + "'"), 0)
      << "tests/parity/jinja_cases.py failed (is transformers in .venv?)";
  std::ifstream in(cases);
  std::string line;
  int n = 0, mismatches = 0;
  while (std::getline(in, line)) {
    const auto row = nlohmann::ordered_json::parse(line);
    const std::string name = row["name"];
    ++n;
    Dict vars = from_json(row["vars"]).dict();
    std::string got;
    bool failed = false;
    try {
      got = Template::parse(row["template"].get<std::string>(), name).render(vars).text;
    } catch (const Error& e) {
      failed = true;
      got = e.what();
    }
    if (row.contains("error")) {
      EXPECT_TRUE(failed) << name << ": transformers raised, r1kit rendered " << got;
      mismatches += failed ? 0 : 1;
    } else {
      EXPECT_FALSE(failed) << name << ": " << got;
      EXPECT_EQ(got, row["text"].get<std::string>()) << name;
      mismatches += (!failed && got == row["text"].get<std::string>()) ? 0 : 1;
    }
  }
  EXPECT_GE(n, 50);
  std::printf("jinja: %d cases, %d mismatches\n", n, mismatches);
}

std::string render_error(const std::string& source, const Dict& vars = {}) {
  try {
    Template::parse(source, "t.jinja").render(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, ErrorsNameLineAndColumn) {
  EXPECT_EQ(render_error("ok\n  {% include 'x' %}"), "t.jinja:2:6: unsupported tag 'include'");
  EXPECT_EQ(render_error("{{ x | nofilter }}"), "t.jinja:1:6: unknown filter 'nofilter'");
  EXPECT_EQ(render_error("{% if x %}never closed"), "t.jinja:1:11: unexpected end of template: missing 'endif'");
  EXPECT_EQ(render_error("a\n{{ 1 +"), "t.jinja:2:1: tag is not closed (missing '}}')");
  EXPECT_EQ(render_error("{% endfor %}"), "t.jinja:1:4: unexpected 'endfor'");
  EXPECT_EQ(render_error("line\n{{ raise_exception('Only user and assistant roles') }}"),
            "t.jinja:2:4: raise_exception: Only user and assistant roles");
  EXPECT_EQ(render_error("{{ a.b.c }}"), "t.jinja:1:5: 'a' is undefined");
  EXPECT_EQ(render_error("{{ 'x' % 2 }}"), "t.jinja:1:8: '%' string formatting is not supported");
}

TEST(Jinja, GenerationSpans) {
  const Template t = Template::parse(
      "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>"
      "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}",
      "g.jinja");
  EXPECT_TRUE(t.has_generation_blocks());
  Dict vars;
  vars.emplace_back("messages", from_json(nlohmann::ordered_json::parse(
                                    R"([{"role":"user","content":"q"},{"role":"assistant","content":"a1"},)"
                                    R"({"role":"user","content":"r"},{"role":"assistant","content":"a2"}])")));
  const auto out = t.render(vars);
  EXPECT_EQ(out.text, "<user>q<assistant>a1</s><user>r<assistant>a2</s>");
  ASSERT_EQ(out.generation_spans.size(), 2u);
  EXPECT_EQ(
      out.text.substr(out.generation_spans[0].first, out.generation_spans[0].second - out.generation_spans[0].first),
      "a1</s>");
  EXPECT_EQ(out.text.substr(out.generation_spans[1].first), "a2</s>");
}

}  // namespace
}  // namespace r1kit::jinja
