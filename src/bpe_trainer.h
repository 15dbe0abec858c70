// Byte-level BPE training, so that tiny models get their own small vocabulary.
//
// Counts the pre-tokenised words of the texts (special tokens cut out first), starts from
// the 256 byte symbols and repeatedly merges the most frequent adjacent pair within words
// (Sennrich et al. 2016; byte-level as GPT-2), ties broken by the lower (left id, right id).
// Ids: 0..255 the bytes in byte order, then one per merge, then the special tokens.
// Does not: reproduce the `tokenizers` trainer's merges (its alphabet order and tie-breaking
// differ), normalize text, or stream a corpus larger than memory. What it guarantees: the
// Tokenizer it returns, once saved, encodes identically in r1kit and in the library.
#pragma once
#include <string>
#include <vector>

#include "src/tokenizer.h"

namespace r1kit {

struct BpeTrainerOptions {
  int vocab_size = 1024;  // all ids: 256 bytes + merges + special tokens
  int min_frequency = 2;  // a pair seen fewer times is never merged
  // Added tokens, ids last: control tokens ("<|endoftext|>") are special; R1's task tags
  // ("<think>", Tokenizer::is_task_tag) are added tokens that are not special, as in DeepSeek-R1.
  std::vector<std::string> special_tokens;
  std::string pre_tokenizer = "qwen2";  // "gpt2", "qwen2", "llama3" or "deepseek_v3"
};

// Throws r1kit::Error for a vocab_size that cannot hold the bytes and the special tokens, or
// an unknown pre_tokenizer.
Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options);

}  // namespace r1kit
