// `r1kit tokenize --model DIR --data IN.jsonl|IN.parquet --out OUT.jsonl [--chat]
// [--add-generation-prompt] [--add-special-tokens]`: what the model will see. Each row of IN
// is written to OUT with two more fields: `text` (with --chat, the row's `messages` rendered
// with the model's chat template, the row's `tools` and `chat_template_kwargs` passed to it as
// transformers' apply_chat_template does; without, the row's `text`) and `input_ids` (the
// text's tokens: for a chat, encoded without added special tokens since the template wrote
// them, as apply_chat_template(tokenize=True); for plain text, as r1kit's stages encode a
// prompt, plus the tokenizer's own special tokens with --add-special-tokens). With --chat
// and the `assistant_masks` flag, also `assistant_masks` (1 per assistant token, as
// transformers' return_assistant_tokens_mask). OUT is written atomically.
#include <memory>
#include <optional>
#include <string>

#include "src/chat_template.h"
#include "src/cli/commands.h"
#include "src/dataset_rows.h"
#include "src/error.h"
#include "src/jsonl.h"
#include "src/logging.h"
#include "src/tokenizer.h"

namespace r1kit::cli {
namespace {

struct TokenizeCommandArgs {
  std::string model;  // directory with tokenizer.json (+ tokenizer_config.json)
  std::string data;   // .jsonl or .parquet
  std::string out;    // .jsonl
  bool chat = false;  // rows are conversations (`messages`)
  std::string messages_field = "messages";
  std::string text_field = "text";     // without --chat
  bool add_generation_prompt = false;  // --chat: end with the assistant turn's opening
  bool add_special_tokens = false;     // plain text: the tokenizer's BOS etc.
  bool assistant_masks = false;        // --chat: also `assistant_masks`
};

void run_tokenize(const TokenizeCommandArgs& a) {
  const Tokenizer tokenizer = Tokenizer::load(a.model);
  std::optional<ChatTemplate> chat;
  if (a.chat) chat.emplace(tokenizer.chat_config(), a.model);
  JsonlWriter out(a.out);
  for (DatasetRow& row : read_dataset(a.data)) {
    nlohmann::ordered_json& fields = row.fields;
    std::string text;
    if (chat) {
      const Conversation c = conversation_from_row(fields, a.messages_field, row.where);
      if (a.assistant_masks) {
        const ChatTemplate::Masked m = chat->encode_with_assistant_mask(tokenizer, c, row.where);
        fields["text"] = m.text;
        fields["input_ids"] = m.ids;
        fields["assistant_masks"] = m.assistant;
        out.write(fields);
        continue;
      }
      try {
        text = chat->render_text(c, a.add_generation_prompt);
      } catch (const Error& e) {
        throw Error(row.where + ": " + e.what());  // the template's own error (raise_exception)
      }
      fields["text"] = text;
      fields["input_ids"] = tokenizer.encode(text, /*add_special_tokens=*/false);
    } else {
      auto it = fields.find(a.text_field);
      if (it == fields.end() || !it->is_string()) {
        throw Error(row.where + ": no string field '" + a.text_field + "' (a chat row? use --chat)");
      }
      text = it->get<std::string>();
      fields["input_ids"] = tokenizer.encode(text, a.add_special_tokens);
    }
    out.write(fields);
  }
  out.commit();
  log::info("tokenize: {} rows -> {}", out.rows(), a.out);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeCommandArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Render (chat template) and tokenize a dataset: what the model sees");
  cmd->add_option("--model", args->model, "Model or tokenizer directory (tokenizer.json, tokenizer_config.json)")
      ->required();
  cmd->add_option("--data", args->data, "Input rows: .jsonl or .parquet")->required();
  cmd->add_option("--out", args->out, "Output .jsonl (each row + text + input_ids)")->required();
  cmd->add_flag("--chat", args->chat, "Rows are conversations: render `messages` with the chat template");
  cmd->add_option("--messages-field", args->messages_field, "With --chat: the field holding the messages")
      ->capture_default_str();
  cmd->add_option("--text-field", args->text_field, "Without --chat: the field holding the text")
      ->capture_default_str();
  cmd->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "With --chat: end with the opening of the assistant's turn");
  cmd->add_flag("--add-special-tokens", args->add_special_tokens,
                "Without --chat: add the tokenizer's special tokens (e.g. Llama's BOS)");
  cmd->add_flag("--assistant-masks", args->assistant_masks,
                "With --chat: also write assistant_masks (1 per assistant token)");
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace r1kit::cli
