// ChatTemplate (see chat_template.h).
#include "src/chat_template.h"

namespace r1kit {

Conversation conversation_from_row(const nlohmann::ordered_json& row, const std::string& messages_key,
                                   const std::string& where) {
  Conversation c;
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
    c.kwargs = jinja::from_json(*k).dict();
  }
  return c;
}

bool is_conversational(const Json& value) {
  if (!value.is_array() || value.empty()) return false;
  for (const Json& m : value) {
    if (!m.is_object() || !m.contains("role")) return false;
  }
  return true;
}

ChatTemplate::ChatTemplate(const Tokenizer& tokenizer, const std::string& model)
    : tokenizer_(tokenizer),
      template_([&] {
        const auto& chat = tokenizer.chat_config();
        if (chat.chat_template.empty()) {
          throw Error(model +
                      ": the tokenizer has no chat template (no chat_template in tokenizer_config.json, no "
                      "chat_template.jinja); conversational data needs one, or use plain prompts with prompt_template");
        }
        return jinja::Template::parse(chat.chat_template, chat.source.empty() ? model : chat.source);
      }()) {
  for (const auto& [k, v] : tokenizer.chat_config().special_tokens) special_tokens_.emplace_back(k, jinja::Value(v));
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

std::vector<int32_t> ChatTemplate::encode(const Conversation& c, bool add_generation_prompt) const {
  return tokenizer_.encode(render_text(c, add_generation_prompt), /*add_special_tokens=*/false);
}

namespace {

// Each token's [begin, end) byte range in `text`, from the tokens' own bytes; an error when
// they do not spell the text (a normalizer changed it).
std::vector<std::pair<size_t, size_t>> token_ranges(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                                    const std::string& text, const std::string& where) {
  std::vector<std::pair<size_t, size_t>> ranges;
  ranges.reserve(ids.size());
  size_t at = 0;
  for (int32_t id : ids) {
    std::string_view bytes = tok.token_bytes(id);
    if (text.compare(at, bytes.size(), bytes) != 0) {
      throw Error(where +
                  ": the tokenizer's tokens do not spell the rendered conversation byte for byte (its normalizer "
                  "changes the text), so the assistant tokens cannot be located");
    }
    ranges.emplace_back(at, at + bytes.size());
    at += bytes.size();
  }
  return ranges;
}

}  // namespace

ChatTemplate::Masked ChatTemplate::encode_with_assistant_mask(const Conversation& c, const std::string& where) const {
  jinja::Template::Output full = render(c, /*add_generation_prompt=*/false);
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
      const std::string prompt = render_text(head, /*add_generation_prompt=*/true);
      head.messages.list().push_back(messages[i]);
      const std::string turn = render_text(head, /*add_generation_prompt=*/false);
      if (turn.compare(0, prompt.size(), prompt) != 0 || full.text.compare(0, turn.size(), turn) != 0) {
        throw Error(where + ": the chat template (" + template_.name() + ") renders message " + std::to_string(i) +
                    " (assistant) differently once later turns follow, so its tokens cannot be found; give the "
                    "template {% generation %} blocks around assistant output (as TRL's training templates do)");
      }
      spans.emplace_back(prompt.size(), turn.size());
    }
  }
  Masked out;
  out.ids = tokenizer_.encode(full.text, /*add_special_tokens=*/false);
  out.assistant.assign(out.ids.size(), 0);
  const auto ranges = token_ranges(tokenizer_, out.ids, full.text, where);
  // A token is an assistant token when it overlaps a span (transformers marks the tokens from
  // the one holding the span's first character to the one holding its last).
  for (const auto& [begin, end] : spans) {
    if (begin >= end) continue;
    for (size_t t = 0; t < ranges.size(); ++t) {
      if (ranges[t].first < end && ranges[t].second > begin) out.assistant[t] = 1;
    }
  }
  return out;
}

}  // namespace r1kit
