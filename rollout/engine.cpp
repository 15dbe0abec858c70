// Engine (see engine.h). One generate() call = one Run: slots, prefix store, results.
#include "rollout/engine.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "policy/causal_lm.h"
#include "rollout/kv_cache.h"
#include "src/byte_size.h"
#include "src/device.h"
#include "src/error.h"

namespace r1kit::rollout {

EngineOptions parse_engine_options(const Json& j, const std::string& where) {
  EngineOptions o;
  JsonFields f(j, where);
  f.get("max_batch_rows", o.max_batch_rows);
  f.get("max_cache_tokens", o.max_cache_tokens);
  f.get("max_prefill_tokens", o.max_prefill_tokens);
  f.get("retain_cpu_memory", o.retain_cpu_memory);
  f.get("max_model_len", o.max_model_len);
  f.get("max_memory_bytes", o.max_memory_bytes);
  f.finish();
  if (o.max_model_len < 0) throw Error(where + ": max_model_len must be >= 0 (0 = the model's window)");
  if (o.max_memory_bytes < 0) throw Error(where + ": max_memory_bytes must be >= 0 (0 = 90% of available memory)");
  if (o.max_batch_rows < 1) throw Error(where + ": max_batch_rows must be >= 1");
  if (o.max_cache_tokens < 0) throw Error(where + ": max_cache_tokens must be >= 0 (0 = no cap)");
  if (o.max_prefill_tokens < 1) throw Error(where + ": max_prefill_tokens must be >= 1");
  return o;
}

std::string to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopString:
      return "stop";
    case FinishReason::kLength:
      return "length";
  }
  return "?";
}

namespace {

// A prefilled prompt waiting for its remaining samples to take a slot.
struct Prefix {
  std::shared_ptr<KvCache> cache;  // the prefill batch's cache, shared by its prompts
  int64_t row = 0;                 // this prompt's row in it
  at::Tensor logits;               // [V] fp32 next-token logits after the prompt
  int64_t waiting = 0;             // samples not yet admitted
};

// Every decode step allocates and frees the same multi-MB temporaries (GQA's repeated keys,
// attention inputs). glibc serves blocks above its mmap threshold with fresh mmaps and trims
// freed heap tops, so each step page-faults and zeroes that memory again: measured on the
// bench model (2-core CPU, 1 thread) that is over half of the step time. Raising both
// thresholds once keeps the blocks in the heap for reuse. Process-wide, CPU only, opt-out
// with EngineOptions::retain_cpu_memory = false.
void retain_cpu_memory_once() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

// Restores the module's train/eval mode on scope exit.
class EvalScope {
 public:
  explicit EvalScope(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_training_); }

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

}  // namespace

struct Engine::Impl {
  std::shared_ptr<policy::CausalLM> model;
  EngineOptions options;
  Detokenizer detokenizer;

  // ---- state of one generate() call ----
  struct Run {
    const std::vector<std::vector<int32_t>>* prompts = nullptr;
    int64_t G = 1, N = 0;
    SamplingOptions o;
    std::vector<uint64_t> seeds;  // [B]
    std::unordered_set<int64_t> eos;
    size_t stop_window = 0;  // tokens decoded to look for a stop string
    std::unique_ptr<KvCache> cache;
    at::Tensor last_token;          // [R, 1] int64: the token each slot feeds next
    at::Tensor positions;           // [R, 1] int64: its position
    at::Tensor keys;                // [R] int64: the slot's row stream key
    at::Tensor steps;               // [R] int64: tokens the row has drawn
    at::Tensor seen;                // [R, V] bool, only with a repetition penalty
    std::vector<int64_t> slot_row;  // [R] row in the slot, -1 = free
    std::vector<int64_t> slot_pos;  // [R] host mirror of positions (no sync to read it)
    std::map<int64_t, Prefix> prefixes;
    int64_t next_row = 0;
    Rollouts out;
  };

  at::TensorOptions float_opts() const { return model->lm_head_weight().options(); }

  int64_t window() const {
    const int64_t mpe = model->config().max_position_embeddings;
    return options.max_model_len > 0 ? std::min(options.max_model_len, mpe) : mpe;
  }
  std::string window_name() const {
    return options.max_model_len > 0 && options.max_model_len < model->config().max_position_embeddings
               ? "max_model_len"
               : "max_position_embeddings";
  }

  // Slots whose KV cache and logits work fit the memory budget. Per slot: `capacity`
  // positions of every layer's cache, and per step the [V] logits in fp32 with the
  // sampler's copies of them (probabilities, sorted values and their indices for top-p/k:
  // kLogitCopies) plus the repetition penalty's [V] mask.
  int64_t rows_within_memory(int64_t capacity, bool repetition_mask) const {
    constexpr int64_t kLogitCopies = 4;
    const auto& c = model->config();
    const int64_t per_row = capacity * kv_bytes_per_token(c, float_opts().dtype().toScalarType()) +
                            kLogitCopies * c.vocab_size * static_cast<int64_t>(sizeof(float)) +
                            (repetition_mask ? c.vocab_size : 0);
    int64_t budget = options.max_memory_bytes;
    std::string source = "max_memory";
    if (budget == 0) {
      const int64_t available = available_memory_bytes(float_opts().device());
      if (available <= 0) return std::numeric_limits<int64_t>::max();  // unknown: no check
      budget = available / 10 * 9;
      source = fmt::format("90% of the {} available", format_bytes(static_cast<double>(available)));
    }
    if (per_row > budget) {
      throw Error(fmt::format(
          "rollout: one sequence of {} tokens needs {} of KV cache and logits, over the memory budget of {} ({}); "
          "lower max_new_tokens / max_model_len or raise the budget (--max-memory)",
          capacity, format_bytes(static_cast<double>(per_row)), format_bytes(static_cast<double>(budget)), source));
    }
    return budget / per_row;
  }
  at::TensorOptions long_opts() const { return float_opts().dtype(at::kLong); }

  void prefill(Run& run, const std::vector<int64_t>& todo) {
    const auto& prompts = *run.prompts;
    size_t i = 0;
    while (i < todo.size()) {
      // The batch: prompts in order while K * Pmax fits the prefill budget (at least one).
      size_t j = i;
      int64_t p_max = 0;
      while (j < todo.size()) {
        const int64_t p = static_cast<int64_t>(prompts[todo[j]].size());
        const int64_t next_max = std::max(p_max, p);
        if (j > i && next_max * static_cast<int64_t>(j - i + 1) > options.max_prefill_tokens) break;
        p_max = next_max;
        ++j;
      }
      const int64_t K = static_cast<int64_t>(j - i);
      at::Tensor tokens = at::zeros({K, p_max}, at::kLong);  // [K, Pmax] right-padded with id 0
      at::Tensor last = at::zeros({K}, at::kLong);           // [K] index of each prompt's last token
      for (int64_t k = 0; k < K; ++k) {
        const auto& ids = prompts[todo[i + k]];
        auto acc = tokens.accessor<int64_t, 2>();
        for (size_t t = 0; t < ids.size(); ++t) acc[k][static_cast<int64_t>(t)] = ids[t];
        last[k] = static_cast<int64_t>(ids.size()) - 1;
        run.out.prefill_tokens += static_cast<int64_t>(ids.size());
      }
      // Pads sit after each prompt at positions >= P: no real token attends to them, and the
      // slot copy takes only [0, P).
      const at::Tensor positions = at::arange(p_max, long_opts()).unsqueeze(0).expand({K, p_max});
      auto cache = std::make_shared<KvCache>(model->config(), K, p_max, float_opts());
      std::vector<policy::LayerKv> views = cache->view(K, p_max);
      const at::Tensor hidden =
          model->forward_hidden(tokens.to(positions.device()), positions, &views);  // [K, Pmax, D]
      const int64_t D = hidden.size(2);
      const at::Tensor h_last =
          hidden.gather(1, last.to(hidden.device()).view({K, 1, 1}).expand({K, 1, D})).squeeze(1);  // [K, D]
      const at::Tensor logits = model->logits(h_last).to(at::kFloat);                               // [K, V]
      for (int64_t k = 0; k < K; ++k) {
        run.prefixes[todo[i + k]] = Prefix{cache, k, logits[k], run.G};
      }
      i = j;
    }
  }

  // Appends one drawn token to the slot's row; returns true when the row is finished.
  bool record(Run& run, int64_t slot, int64_t token, float logprob) {
    Rollout& r = run.out.rows[run.slot_row[slot]];
    r.completion_ids.push_back(static_cast<int32_t>(token));
    r.logprobs.push_back(logprob);
    bool done = false;
    if (run.eos.count(token) != 0) {
      r.finish = FinishReason::kEos;
      done = true;
    } else if (!run.o.stop_strings.empty() && find_stop(run, r)) {
      r.finish = FinishReason::kStopString;
      return finish_slot(run, slot);  // text already cut
    } else if (static_cast<int64_t>(r.completion_ids.size()) >= run.o.max_new_tokens ||
               static_cast<int64_t>((*run.prompts)[r.prompt_index].size() + r.completion_ids.size()) >=
                   window()) {  // the window is full
      r.finish = FinishReason::kLength;
      done = true;
    }
    if (!done) return false;
    if (detokenizer) r.text = detokenizer(r.completion_ids);
    return finish_slot(run, slot);
  }

  bool finish_slot(Run& run, int64_t slot) {
    run.slot_row[slot] = -1;
    return true;
  }

  // A stop string can only be completed by the newest token (older ones were checked), so
  // only a tail of W tokens is decoded per step; on a hit the whole completion is decoded
  // and cut at the first occurrence (text ends right after, or right before, the string).
  bool find_stop(Run& run, Rollout& r) {
    const auto& ids = r.completion_ids;
    const size_t w = std::min(ids.size(), run.stop_window);
    const std::string tail = detokenizer(std::vector<int32_t>(ids.end() - static_cast<std::ptrdiff_t>(w), ids.end()));
    bool hit = false;
    for (const auto& s : run.o.stop_strings) hit = hit || tail.find(s) != std::string::npos;
    if (!hit) return false;
    const std::string full = detokenizer(ids);
    size_t best = std::string::npos, best_len = 0;
    for (const auto& s : run.o.stop_strings) {
      const size_t at = full.find(s);
      if (at < best) {
        best = at;
        best_len = s.size();
      }
    }
    if (best == std::string::npos) return false;  // a tail-decoding artefact, not in the text
    r.text = full.substr(0, run.o.include_stop_string ? best + best_len : best);
    return true;
  }

  // Puts pending rows into `free_slots` (ascending); rows that finish on their first token
  // leave their slot free again.
  void admit(Run& run, const std::vector<int64_t>& free_slots) {
    const auto& prompts = *run.prompts;
    std::vector<std::pair<int64_t, int64_t>> assign;  // (slot, row)
    for (int64_t slot : free_slots) {
      if (run.next_row >= run.N) break;
      assign.emplace_back(slot, run.next_row++);
    }
    if (assign.empty()) return;
    std::vector<int64_t> todo;
    for (const auto& [slot, row] : assign) {
      const int64_t p = row / run.G;
      if (run.prefixes.count(p) == 0 && (todo.empty() || todo.back() != p)) todo.push_back(p);
    }
    prefill(run, todo);

    const int64_t A = static_cast<int64_t>(assign.size());
    std::vector<at::Tensor> logits_rows;
    at::Tensor slots_host = at::empty({A}, at::kLong), keys_host = at::empty({A}, at::kLong);
    at::Tensor pos_host = at::empty({A, 1}, at::kLong);
    for (int64_t a = 0; a < A; ++a) {
      const auto [slot, row] = assign[a];
      const int64_t p = row / run.G, g = row % run.G;
      const int64_t P = static_cast<int64_t>(prompts[p].size());
      Prefix& px = run.prefixes.at(p);
      run.cache->copy_slot(slot, *px.cache, px.row, P);
      logits_rows.push_back(px.logits);
      if (--px.waiting == 0) run.prefixes.erase(p);
      slots_host[a] = slot;
      keys_host[a] = static_cast<int64_t>(row_key(run.seeds[p], g));
      pos_host[a][0] = P;
      run.slot_row[slot] = row;
      run.slot_pos[slot] = P;
      Rollout& r = run.out.rows[row];
      r.prompt_index = p;
      r.sample_index = g;
      r.prompt_ids = prompts[p];
    }
    const at::Tensor idx = slots_host.to(run.keys.device());  // [A]
    const at::Tensor keys = keys_host.to(run.keys.device());  // [A]
    run.keys.index_copy_(0, idx, keys);
    run.positions.index_copy_(0, idx, pos_host.to(idx.device()));
    at::Tensor seen;  // [A, V]
    if (run.seen.defined()) {
      run.seen.index_fill_(0, idx, false);
      for (int64_t a = 0; a < A; ++a) {
        const auto& ids = prompts[assign[a].second / run.G];
        run.seen[assign[a].first].index_fill_(
            0, at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).to(idx.device()), true);
      }
      seen = run.seen.index_select(0, idx);
    }
    const Draw d = sample(at::stack(logits_rows), seen, run.o, row_uniforms(keys, at::zeros_like(keys)));
    run.last_token.index_copy_(0, idx, d.tokens.unsqueeze(1));
    run.steps.index_fill_(0, idx, 1);
    if (run.seen.defined()) run.seen.index_put_({idx, d.tokens}, true);
    const at::Tensor tok_cpu = d.tokens.cpu(), lp_cpu = d.logprobs.cpu();
    for (int64_t a = 0; a < A; ++a) {
      record(run, assign[a].first, tok_cpu[a].item<int64_t>(), lp_cpu[a].item<float>());
    }
  }

  // One batched forward of the n active slots [0, n) and one draw per slot.
  void step(Run& run, int64_t n) {
    const int64_t S = *std::max_element(run.slot_pos.begin(), run.slot_pos.begin() + n) + 1;
    std::vector<policy::LayerKv> views = run.cache->view(n, S);
    at::Tensor last_token = run.last_token.narrow(0, 0, n), positions = run.positions.narrow(0, 0, n);
    const at::Tensor hidden = model->forward_hidden(last_token, positions, &views);  // [n, 1, D]
    const at::Tensor logits = model->logits(hidden.select(1, 0));                    // [n, V]
    at::Tensor seen = run.seen.defined() ? run.seen.narrow(0, 0, n) : at::Tensor();
    at::Tensor steps = run.steps.narrow(0, 0, n);
    const Draw d = sample(logits, seen, run.o, row_uniforms(run.keys.narrow(0, 0, n), steps));
    last_token.copy_(d.tokens.unsqueeze(1));
    positions.add_(1);
    steps.add_(1);
    if (seen.defined()) seen.scatter_(1, d.tokens.unsqueeze(1), true);
    // The one host sync per step: tokens and logprobs in one copy (fp64 holds any token id
    // exactly), for EOS / stop / length detection.
    const at::Tensor host = at::stack({d.tokens.to(at::kDouble), d.logprobs.to(at::kDouble)}).cpu();  // [2, n]
    const double* tok = host.data_ptr<double>();
    const double* lpp = tok + n;
    for (int64_t s = 0; s < n; ++s) {
      ++run.slot_pos[s];
      record(run, s, static_cast<int64_t>(tok[s]), static_cast<float>(lpp[s]));
    }
    ++run.out.decode_steps;
  }

  // Moves active slots into the lowest free ones so that the active set is [0, n).
  int64_t compact(Run& run) {
    const int64_t R = static_cast<int64_t>(run.slot_row.size());
    int64_t lo = 0, hi = R - 1;
    while (true) {
      while (lo < R && run.slot_row[lo] >= 0) ++lo;
      while (hi >= 0 && run.slot_row[hi] < 0) --hi;
      if (lo >= hi) break;
      run.cache->copy_slot(lo, *run.cache, hi, run.slot_pos[hi]);
      for (at::Tensor* t : {&run.last_token, &run.positions, &run.keys, &run.steps, &run.seen}) {
        if (t->defined()) (*t)[lo].copy_((*t)[hi]);
      }
      run.slot_row[lo] = run.slot_row[hi];
      run.slot_pos[lo] = run.slot_pos[hi];
      run.slot_row[hi] = -1;
    }
    return lo;  // == number of active slots
  }

  Rollouts generate(const std::vector<std::vector<int32_t>>& prompts, int64_t G, const SamplingOptions& o,
                    const std::vector<uint64_t>& prompt_seeds) {
    validate(o, "rollout sampling options");
    const auto t0 = std::chrono::steady_clock::now();
    const policy::ModelConfig& config = model->config();
    const int64_t B = static_cast<int64_t>(prompts.size());
    if (G < 1) throw Error("rollout: group_size must be >= 1, got " + std::to_string(G));
    if (!prompt_seeds.empty() && static_cast<int64_t>(prompt_seeds.size()) != B) {
      throw Error("rollout: " + std::to_string(prompt_seeds.size()) + " prompt seeds for " + std::to_string(B) +
                  " prompts");
    }
    int64_t p_max = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (prompts[b].empty()) throw Error("rollout: prompt " + std::to_string(b) + " is empty");
      for (int32_t id : prompts[b]) {
        if (id < 0 || id >= config.vocab_size) {
          throw Error("rollout: prompt " + std::to_string(b) + " has token id " + std::to_string(id) +
                      " outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
        }
      }
      // The model has no position past its window: a prompt must leave room for one token.
      if (static_cast<int64_t>(prompts[b].size()) >= window()) {
        throw Error(
            fmt::format("rollout: prompt {} has {} tokens, the model's window ({}) is {}; shorten it or "
                        "set max_prompt_length",
                        b, prompts[b].size(), window_name(), window()));
      }
      p_max = std::max<int64_t>(p_max, static_cast<int64_t>(prompts[b].size()));
    }
    if (!o.stop_strings.empty() && !detokenizer) {
      throw Error("rollout: stop_strings need an engine built with a detokenizer");
    }
    Run run;
    run.prompts = &prompts;
    run.G = G;
    run.N = B * G;
    run.o = o;
    run.out.group_size = G;
    run.out.rows.resize(run.N);
    if (B == 0) return std::move(run.out);
    for (int64_t b = 0; b < B; ++b) {
      run.seeds.push_back(prompt_seeds.empty() ? prompt_seed(o.seed, b) : prompt_seeds[b]);
    }
    if (!o.ignore_eos) run.eos.insert(config.eos_token_ids.begin(), config.eos_token_ids.end());
    run.eos.insert(o.stop_token_ids.begin(), o.stop_token_ids.end());
    for (const auto& s : o.stop_strings) run.stop_window = std::max(run.stop_window, s.size() + 2);

    // Slots: a stop position per token drawn after the prompt, minus the last (never fed); a
    // row also ends at the model's window (record), so no slot needs more than that.
    const int64_t capacity = std::min(p_max + o.max_new_tokens, window());
    int64_t R = std::min(options.max_batch_rows, run.N);
    if (options.max_cache_tokens > 0) R = std::min(R, options.max_cache_tokens / capacity);
    if (R < 1) {
      throw Error("rollout: max_cache_tokens " + std::to_string(options.max_cache_tokens) +
                  " cannot hold one sequence of " + std::to_string(capacity) + " tokens");
    }
    R = std::min(R, rows_within_memory(capacity, o.repetition_penalty != 1.0));
    if (options.retain_cpu_memory && float_opts().device().is_cpu()) retain_cpu_memory_once();
    c10::InferenceMode inference;
    EvalScope eval(*model);
    run.cache = std::make_unique<KvCache>(config, R, capacity, float_opts());
    run.last_token = at::zeros({R, 1}, long_opts());
    run.positions = at::zeros({R, 1}, long_opts());
    run.keys = at::zeros({R}, long_opts());
    run.steps = at::zeros({R}, long_opts());
    if (o.repetition_penalty != 1.0) run.seen = at::zeros({R, config.vocab_size}, long_opts().dtype(at::kBool));
    run.slot_row.assign(R, -1);
    run.slot_pos.assign(R, 0);

    while (true) {
      while (run.next_row < run.N) {
        std::vector<int64_t> free_slots;
        for (int64_t s = 0; s < R; ++s) {
          if (run.slot_row[s] < 0) free_slots.push_back(s);
        }
        if (free_slots.empty()) break;
        admit(run, free_slots);
      }
      const int64_t n = compact(run);
      if (n == 0) break;
      step(run, n);
    }

    CacheReport& c = run.out.cache;
    c.values_per_token_per_layer = kv_values_per_token_per_layer(config);
    c.bytes_per_token = run.cache->bytes_per_token();
    c.rows = R;
    c.capacity = capacity;
    c.total_bytes = run.cache->total_bytes();
    for (const auto& r : run.out.rows) run.out.generated_tokens += static_cast<int64_t>(r.completion_ids.size());
    run.out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return std::move(run.out);
  }
};

Engine::Engine(std::shared_ptr<policy::CausalLM> model, EngineOptions options, Detokenizer detokenizer)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw Error("rollout engine: no model");
  if (options.max_batch_rows < 1) throw Error("rollout engine: max_batch_rows must be >= 1");
  impl_->model = std::move(model);
  impl_->options = options;
  impl_->detokenizer = std::move(detokenizer);
}

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

Rollouts Engine::generate(const std::vector<std::vector<int32_t>>& prompts, int64_t group_size,
                          const SamplingOptions& options, const std::vector<uint64_t>& prompt_seeds) {
  return impl_->generate(prompts, group_size, options, prompt_seeds);
}

}  // namespace r1kit::rollout
