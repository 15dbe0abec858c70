// libFuzzer target: a chat template (tokenizer_config.json's chat_template comes with any
// downloaded model) parsed and rendered with a conversation that has a system prompt, tool
// calls, a tool result and kwargs, with and without the generation prompt. Bad templates may
// only raise r1kit::Error; the output must be valid UTF-8 wherever the template and the
// conversation are.
#include "src/jinja_template.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const r1kit::jinja::Dict& variables() {
  static const r1kit::jinja::Dict vars = [] {
    const auto conversation = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris? 你好"},
        {"role": "assistant", "content": "<think>\nlook it up\n</think>\n\n",
         "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp\": 21.5}"},
        {"role": "assistant", "content": "21.5 degrees."}],
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
      "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false})");
    return r1kit::jinja::from_json(conversation).dict();
  }();
  return vars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(r1kit::fuzz::text_of(data, size));
  r1kit::fuzz::expect_clean([&] {
    const auto t = r1kit::jinja::Template::parse(source, "fuzz.jinja");
    for (bool generation_prompt : {false, true}) {
      r1kit::jinja::Dict vars = variables();
      vars.emplace_back("add_generation_prompt", r1kit::jinja::Value(generation_prompt));
      const auto out = t.render(vars);
      for (const auto& [begin, end] : out.generation_spans) {
        if (begin > end || end > out.text.size()) std::abort();  // a span outside the output
      }
    }
  });
  return 0;
}
