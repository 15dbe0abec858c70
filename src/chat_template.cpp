// ChatTemplate (see chat_template.h).
#include "src/chat_template.h"

#include "src/jinja_builtins.h"

namespace r1kit {

Conversation conversation_from_row(const nlohmann::ordered_json& row, const std::string& messages_key,
                                   const std::string& where, const jinja::Dict& default_kwargs) {
  Conversation c;
  c.kwargs = default_kwargs;
  auto it = row.find(messages_key);
  if (it == row.end()) throw Error(where + ": no field '" + messages_key + "'");
  if (!it->is_array()) throw Error(where + ": '" + messages_key + "' is not a list of messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& m = (*it)[i];
    const std::string at = where + ": " + messages_key + "[" + std::to_string(i) + "]";
    if (!m.is_object()) throw Error(at + " is not an object");
    if (!m.contains("role") || !m["role"].is_string()) throw Error(at + " has no string 'role'");
  }
  c.messages = jinja::from_json(*it);
  if (auto t = row.find("tools"); t != row.end() && !t->is_null()) {
    if (!t->is_array()) throw Error(where + ": 'tools' is not a list");
    c.tools = jinja::from_json(*t);
  }
  if (auto k = row.find("chat_template_kwargs"); k != row.end() && !k->is_null()) {
    if (!k->is_object()) throw Error(where + ": 'chat_template_kwargs' is not an object");
    const jinja::Value row_kwargs = jinja::from_json(*k);  // held: a range-for over a temporary's dict dangles
    for (const auto& kv : row_kwargs.dict()) c.kwargs.push_back(kv);  // later keys win
  }
  return c;
}

ChatTemplate::ChatTemplate(const Tokenizer::ChatConfig& chat, const std::string& model)
    : template_([&] {
        if (chat.chat_template.empty()) {
          throw Error((model.empty() ? std::string("the model's tokenizer") : model + ": the tokenizer") +
                      " has no chat template (no chat_template in tokenizer_config.json, no "
                      "chat_template.jinja); conversational data needs one, or use plain prompts with prompt_template");
        }
        return jinja::Template::parse(chat.chat_template, !chat.source.empty() ? chat.source
                                                          : model.empty()      ? std::string("chat_template")
                                                                               : model);
      }()) {
  for (const auto& [k, v] : chat.special_tokens) special_tokens_.emplace_back(k, jinja::Value(v));
}

jinja::Template::Output ChatTemplate::render(const Conversation& c, bool add_generation_prompt) const {
  // transformers: render(messages=..., tools=..., documents=..., add_generation_prompt=...,
  // **special_tokens_map, **kwargs); a later key wins, so the user's kwargs come last.
  jinja::Dict vars = special_tokens_;
  vars.emplace_back("messages", c.messages);
  vars.emplace_back("tools", c.tools);
  vars.emplace_back("documents", jinja::Value::none());
  vars.emplace_back("add_generation_prompt", jinja::Value(add_generation_prompt));
  for (const auto& kv : c.kwargs) vars.push_back(kv);
  return template_.render(vars);
}

namespace {

// The text's ids, with 1 for each token that overlaps one of `spans` (transformers marks the
// tokens from the one holding a span's first character to the one holding its last). The
// tokens' bytes spell the normalized text (NFC for Qwen2), so each span's ends are mapped
// there: the normalized length of the text before them.
ChatTemplate::Masked masked(const Tokenizer& tokenizer, const std::string& text,
                            const std::vector<std::pair<size_t, size_t>>& spans, const std::string& where) {
  ChatTemplate::Masked out;
  out.text = text;
  out.ids = tokenizer.encode(text, /*add_special_tokens=*/false);
  out.assistant.assign(out.ids.size(), 0);
  const std::string normalized = tokenizer.normalize(text);
  std::vector<std::pair<size_t, size_t>> ranges;  // per token: [begin, end) in `normalized`
  ranges.reserve(out.ids.size());
  size_t at = 0;
  for (int32_t id : out.ids) {
    const std::string_view bytes = tokenizer.token_bytes(id);
    if (normalized.compare(at, bytes.size(), bytes) != 0) {
      throw Error(where +
                  ": the tokens do not spell the rendered conversation byte for byte, so the assistant "
                  "tokens cannot be located");
    }
    ranges.emplace_back(at, at + bytes.size());
    at += bytes.size();
  }
  const bool identity = normalized == text;
  auto to_normalized = [&](size_t offset) {
    return identity ? offset : tokenizer.normalize(std::string_view(text).substr(0, offset)).size();
  };
  for (const auto& [span_begin, span_end] : spans) {
    const size_t begin = to_normalized(span_begin), end = to_normalized(span_end);
    if (begin >= end) continue;
    for (size_t t = 0; t < ranges.size(); ++t) {
      if (ranges[t].first < end && ranges[t].second > begin) out.assistant[t] = 1;
    }
  }
  return out;
}

}  // namespace

ChatTemplate::Masked ChatTemplate::encode_with_assistant_mask(const Tokenizer& tokenizer, const Conversation& c,
                                                              const std::string& where) const {
  // The template's own errors (raise_exception) name the row too.
  auto render_at = [&](const Conversation& conv, bool generation_prompt) {
    try {
      return render(conv, generation_prompt);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  };
  jinja::Template::Output full = render_at(c, /*add_generation_prompt=*/false);
  std::vector<std::pair<size_t, size_t>> spans = full.generation_spans;
  if (!template_.has_generation_blocks()) {
    // Each assistant turn's text: what rendering messages[:i+1] adds to messages[:i] with the
    // generation prompt, provided both are prefixes of the whole conversation.
    const auto& messages = c.messages.list();
    for (size_t i = 0; i < messages.size(); ++i) {
      const jinja::Value* role = messages[i].find("role");
      if (!role || role->str() != "assistant") continue;
      Conversation head = c;
      head.messages = jinja::Value(jinja::List(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i)));
      const std::string prompt = render_at(head, /*add_generation_prompt=*/true).text;
      head.messages.list().push_back(messages[i]);
      const std::string turn = render_at(head, /*add_generation_prompt=*/false).text;
      if (turn.compare(0, prompt.size(), prompt) != 0 || full.text.compare(0, turn.size(), turn) != 0) {
        throw Error(where + ": the chat template (" + template_.name() + ") renders message " + std::to_string(i) +
                    " (assistant) differently once later turns follow, so its tokens cannot be found; give the "
                    "template {% generation %} blocks around assistant output (as TRL's training templates do)");
      }
      spans.emplace_back(prompt.size(), turn.size());
    }
  }
  return masked(tokenizer, full.text, spans, where);
}

ChatTemplate::Masked ChatTemplate::encode_completion(const Tokenizer& tokenizer, const Conversation& prompt,
                                                     const jinja::Value& completion, const std::string& where) const {
  std::string head, text;
  try {
    head = render_text(prompt, /*add_generation_prompt=*/true);
    Conversation whole = prompt;
    whole.messages = jinja::Value(prompt.messages.list());
    for (const jinja::Value& m : jinja::iterate(completion)) whole.messages.list().push_back(m);
    text = render_text(whole, /*add_generation_prompt=*/false);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());  // the template's own errors name the row too
  }
  if (text.compare(0, head.size(), head) != 0) {
    throw Error(where + ": the chat template (" + template_.name() +
                ") does not render the prompt as the start of prompt + completion, so the completion's tokens "
                "cannot be found");
  }
  return masked(tokenizer, text, {{head.size(), text.size()}}, where);
}

}  // namespace r1kit
