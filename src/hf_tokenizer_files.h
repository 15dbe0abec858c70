// A Hugging Face tokenizer as transformers' AutoTokenizer (and so TRL, vLLM, PEFT) expects it
// in a model directory: tokenizer.json, tokenizer_config.json (tokenizer class, bos / eos /
// pad tokens, model_max_length, added_tokens_decoder, chat_template when there is one) and
// special_tokens_map.json. Without tokenizer_config.json transformers' tokenizer has no eos
// or pad token and TRL fails at its first padding. R1's task tags are written as added
// tokens that are not special (Tokenizer::is_task_tag), whatever the tokenizer had.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/tokenizer.h"

namespace r1kit {

struct HfTokenizerInfo {
  std::vector<int32_t> eos_token_ids;  // the first is eos_token, and the pad token (TRL pads with it)
  int32_t bos_token_id = -1;           // -1: none
  int64_t model_max_length = 0;        // the model's window; 0: not written
  std::string chat_template;           // "": the tokenizer's own (Tokenizer::chat_config), if any
};

// Writes the three files into `dir` (created), each atomically. Throws r1kit::Error naming
// the file when an eos / bos id has no token.
void save_hf_tokenizer(Tokenizer tokenizer, const HfTokenizerInfo& info, const std::string& dir);

}  // namespace r1kit
