// Chat conversations rendered with a model's Jinja chat template, as transformers'
// apply_chat_template does: the template gets `messages`, `tools` (None when absent),
// `documents` (None), `add_generation_prompt`, the tokenizer's special tokens by name
// (bos_token, eos_token, ...) and the row's chat_template_kwargs (enable_thinking, ...);
// token ids are the rendered text encoded without added special tokens (the template wrote
// them). Assistant masks follow TRL's assistant_only_loss: the tokens inside the template's
// {% generation %} blocks; for a template without them, each assistant turn's own text
// (what rendering the turn adds after the prompt that asks for it), which needs a template
// that renders conversations prefix-consistently (an error names the turn otherwise).
// Reference: transformers utils/chat_template_utils.py (render_jinja_template), TRL's
// dataset formats (https://huggingface.co/docs/trl/dataset_formats).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/jinja_template.h"
#include "src/tokenizer.h"

namespace r1kit {

// One conversation in TRL's conversational format.
struct Conversation {
  jinja::Value messages = jinja::Value(jinja::List{});  // [{"role", "content", ...}], key order kept
  jinja::Value tools = jinja::Value::none();            // a list of JSON schemas, or None
  jinja::Dict kwargs;                                   // chat_template_kwargs
};

// `messages_key` (a list of {role, content} objects), `tools` and `chat_template_kwargs` of a
// JSONL row parsed with key order kept; the row's kwargs come after `default_kwargs` (a
// stage's), so its keys win. `where` ("data.jsonl:12") prefixes errors.
Conversation conversation_from_row(const nlohmann::ordered_json& row, const std::string& messages_key,
                                   const std::string& where, const jinja::Dict& default_kwargs = {});

class ChatTemplate {
 public:
  // A tokenizer's chat template (Tokenizer::chat_config). Throws r1kit::Error naming `model`
  // ("" = "the model's tokenizer") when it has none, or naming the template's file, line and
  // column when it does not parse.
  ChatTemplate(const Tokenizer::ChatConfig& chat, const std::string& model);

  // The conversation's text, and the byte spans of its {% generation %} blocks.
  jinja::Template::Output render(const Conversation& c, bool add_generation_prompt) const;
  std::string render_text(const Conversation& c, bool add_generation_prompt) const {
    return render(c, add_generation_prompt).text;
  }

  struct Masked {
    std::string text;  // the rendered conversation
    std::vector<int32_t> ids;
    std::vector<uint8_t> assistant;  // per id: 1 inside an assistant turn
  };
  // The whole conversation's ids and its assistant mask. Errors name `where`.
  Masked encode_with_assistant_mask(const Tokenizer& tokenizer, const Conversation& c, const std::string& where) const;
  // Prompt + completion as TRL's conversational prompt-completion rows: the prompt rendered
  // with the generation prompt, the whole with the completion's messages; mask = the tokens
  // after the prompt. An error names `where` when the prompt is not a prefix of the whole.
  Masked encode_completion(const Tokenizer& tokenizer, const Conversation& prompt, const jinja::Value& completion,
                           const std::string& where) const;

 private:
  jinja::Template template_;
  jinja::Dict special_tokens_;
};

}  // namespace r1kit
