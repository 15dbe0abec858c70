// Engine (see engine.h). One generate() call = one Run: slots, block pool, prefix store,
// preempted rows, results.
#include "rollout/engine.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "policy/causal_lm.h"
#include "rollout/kv_cache.h"
#include "rollout/kv_pool.h"
#include "src/byte_size.h"
#include "src/device.h"
#include "src/error.h"

namespace r1kit::rollout {

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

// Positions every running row must be able to grow by before another row is admitted under a
// constrained pool (plan_admissions).
constexpr int64_t kAdmitHorizon = 256;

// A prefilled prompt waiting for its remaining samples to take a slot. It holds one
// reference on each of its blocks; samples retain the full ones and copy the partial last one
// (the last sample takes it over).
struct Prefix {
  std::vector<int64_t> blocks;  // pool blocks of positions [0, P)
  at::Tensor logits;            // [V] fp32 next-token logits after the prompt
  int64_t waiting = 0;          // samples not yet admitted
};

// One sequence's prefill: its row in the batch's contiguous cache and the logits after it.
struct Prefilled {
  std::shared_ptr<KvCache> cache;
  int64_t row = 0;
  at::Tensor logits;  // [V] fp32
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
    std::unique_ptr<KvPool> pool;
    at::Tensor tables;                              // [R, nb_max] int64 on the CPU: each slot's block table
    std::vector<std::vector<int64_t>> slot_blocks;  // [R] the blocks a slot's row holds, in position order
    at::Tensor last_token;                          // [R, 1] int64: the token each slot feeds next
    at::Tensor positions;                           // [R, 1] int64: its position
    at::Tensor keys;                                // [R] int64: the slot's row stream key
    at::Tensor steps;                               // [R] int64: tokens the row has drawn
    at::Tensor seen;                                // [R, V] bool, only with a repetition penalty
    std::vector<int64_t> slot_row;                  // [R] row in the slot, -1 = free
    std::vector<int64_t> slot_pos;                  // [R] host mirror of positions (no sync to read it)
    std::map<int64_t, Prefix> prefixes;             // by prompt
    std::set<int64_t> preempted;                    // rows to resume, oldest first
    int64_t next_row = 0;                           // first row never admitted
    Rollouts out;

    bool pending() const { return next_row < N || !preempted.empty(); }
  };

  at::TensorOptions float_opts() const { return model->lm_head_weight().options(); }
  at::TensorOptions long_opts() const { return float_opts().dtype(at::kLong); }

  int64_t window() const {
    const int64_t mpe = model->config().max_position_embeddings;
    return options.max_model_len > 0 ? std::min(options.max_model_len, mpe) : mpe;
  }
  std::string window_name() const {
    return options.max_model_len > 0 && options.max_model_len < model->config().max_position_embeddings
               ? "max_model_len"
               : "max_position_embeddings";
  }

  // The memory budget: max_memory_bytes, or 90% of what is available now (0 when unknown).
  std::pair<int64_t, std::string> memory_budget() const {
    if (options.max_memory_bytes > 0) return {options.max_memory_bytes, "max_memory"};
    const int64_t available = available_memory_bytes(float_opts().device());
    if (available <= 0) return {0, ""};
    return {available / 10 * 9, fmt::format("90% of the {} available", format_bytes(static_cast<double>(available)))};
  }

  // Slots R and pool blocks within the memory budget. Per slot, each step's logits work: the
  // [V] logits in fp32 with the sampler's copies of them (probabilities, sorted values and
  // their indices for top-p/k: kLogitCopies) plus the repetition penalty's [V] mask. The pool:
  // max_kv_tokens, or by default every slot's longest row plus one waiting prompt, so that
  // nothing is preempted; the default pool shrinks with R to fit, an explicit one must fit.
  std::pair<int64_t, int64_t> size_slots_and_pool(int64_t R, int64_t capacity, int64_t p_max,
                                                  bool repetition_mask) const {
    constexpr int64_t kLogitCopies = 4;
    const auto& c = model->config();
    const int64_t Bs = options.kv_block_size;
    const int64_t block_bytes = Bs * kv_bytes_per_token(c, float_opts().dtype().toScalarType());
    const int64_t work =
        kLogitCopies * c.vocab_size * static_cast<int64_t>(sizeof(float)) + (repetition_mask ? c.vocab_size : 0);
    const int64_t row_blocks = (capacity + Bs - 1) / Bs, prompt_blocks = (p_max + Bs - 1) / Bs;
    const bool fixed = options.max_kv_tokens > 0;
    if (fixed && options.max_kv_tokens < row_blocks * Bs) {
      throw Error(fmt::format("rollout: max_kv_tokens {} cannot hold one sequence of {} tokens ({} blocks of {})",
                              options.max_kv_tokens, capacity, row_blocks, Bs));
    }
    auto pool_blocks = [&](int64_t rows) {
      return fixed ? (options.max_kv_tokens + Bs - 1) / Bs : rows * row_blocks + prompt_blocks;
    };
    const auto [budget, source] = memory_budget();
    if (budget == 0) return {R, pool_blocks(R)};  // unknown: no check
    auto bytes = [&](int64_t rows) { return pool_blocks(rows) * block_bytes + rows * work; };
    if (bytes(1) > budget) {
      throw Error(fmt::format(
          "rollout: one sequence of {} tokens needs {} of KV cache and logits, over the memory budget of {} ({}); "
          "lower max_new_tokens / max_model_len / max_kv_tokens or raise the budget (--max-memory)",
          capacity, format_bytes(static_cast<double>(bytes(1))), format_bytes(static_cast<double>(budget)), source));
    }
    while (R > 1 && bytes(R) > budget) R = std::max<int64_t>(1, std::min(R - 1, R * budget / bytes(R)));
    return {R, pool_blocks(R)};
  }

  // Prefills each sequence once (batched while K * longest fits max_prefill_tokens), into a
  // contiguous cache per batch that the caller stores into pool blocks.
  std::vector<Prefilled> prefill(Run& run, const std::vector<const std::vector<int32_t>*>& seqs) {
    std::vector<Prefilled> out;
    size_t i = 0;
    while (i < seqs.size()) {
      // The batch: sequences in order while K * Pmax fits the prefill budget (at least one).
      size_t j = i;
      int64_t p_max = 0;
      while (j < seqs.size()) {
        const int64_t p = static_cast<int64_t>(seqs[j]->size());
        const int64_t next_max = std::max(p_max, p);
        if (j > i && next_max * static_cast<int64_t>(j - i + 1) > options.max_prefill_tokens) break;
        p_max = next_max;
        ++j;
      }
      const int64_t K = static_cast<int64_t>(j - i);
      at::Tensor tokens = at::zeros({K, p_max}, at::kLong);  // [K, Pmax] right-padded with id 0
      at::Tensor last = at::zeros({K}, at::kLong);           // [K] index of each sequence's last token
      auto acc = tokens.accessor<int64_t, 2>();
      for (int64_t k = 0; k < K; ++k) {
        const auto& ids = *seqs[i + k];
        for (size_t t = 0; t < ids.size(); ++t) acc[k][static_cast<int64_t>(t)] = ids[t];
        last[k] = static_cast<int64_t>(ids.size()) - 1;
      }
      // Pads sit after each sequence at positions >= P: no real token attends to them, and
      // the pool takes only [0, P).
      const at::Tensor positions = at::arange(p_max, long_opts()).unsqueeze(0).expand({K, p_max});
      auto cache = std::make_shared<KvCache>(model->config(), K, p_max, float_opts());
      std::vector<policy::LayerKv> views = cache->view(K, p_max);
      const at::Tensor hidden =
          model->forward_hidden(tokens.to(positions.device()), positions, &views, /*prefill=*/true);  // [K, Pmax, D]
      const int64_t D = hidden.size(2);
      const at::Tensor h_last =
          hidden.gather(1, last.to(hidden.device()).view({K, 1, 1}).expand({K, 1, D})).squeeze(1);  // [K, D]
      const at::Tensor logits = model->logits(h_last).to(at::kFloat);                               // [K, V]
      for (int64_t k = 0; k < K; ++k) out.push_back({cache, k, logits[k]});
      i = j;
    }
    return out;
  }

  // `count` fresh blocks; the caller checked that the pool has them.
  std::vector<int64_t> allocate(Run& run, int64_t count) {
    std::vector<int64_t> blocks;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t b = run.pool->allocate();
      TORCH_CHECK(b >= 0, "rollout: the kv pool ran out during an admission it had room for");
      blocks.push_back(b);
    }
    return blocks;
  }

  void set_blocks(Run& run, int64_t slot, std::vector<int64_t> blocks) {
    auto table = run.tables[slot];
    for (size_t j = 0; j < blocks.size(); ++j) table[static_cast<int64_t>(j)] = blocks[j];
    run.slot_blocks[slot] = std::move(blocks);
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

  // Frees the slot and hands its row's blocks back.
  bool finish_slot(Run& run, int64_t slot) {
    run.pool->release(run.slot_blocks[slot]);
    run.slot_blocks[slot].clear();
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

  // The sequence a preempted row is resumed from: prompt + every drawn token but the last,
  // which it feeds next (its cache then ends where it ended before).
  std::vector<int32_t> resume_sequence(const Run& run, int64_t row) const {
    const Rollout& r = run.out.rows[row];
    std::vector<int32_t> seq = (*run.prompts)[row / run.G];
    seq.insert(seq.end(), r.completion_ids.begin(), r.completion_ids.end() - 1);
    return seq;
  }

  // A pending row and the free slot it takes.
  struct Admission {
    int64_t slot, row;
    bool resume;  // a preempted row, else a new one
  };

  // Which pending rows take free slots now: preempted rows first (oldest first), then new rows
  // in order, while the pool has their blocks and headroom for every active row to grow
  // kAdmitHorizon more positions (or to its longest, if less). Without that headroom a resumed
  // row refilled the pool within one block's steps and pushed the next-youngest row out, whose
  // resume did the same: measured on 64 rows x 2,048 tokens under a quarter-size pool, rows
  // were preempted 73 times and half the generated positions recomputed. The default pool
  // holds every row's longest, so there the headroom never binds. With no active row the first
  // candidate is admitted whenever its blocks fit (the pool holds one row: generate checks).
  // Also returns the prompts that need a prefill (no prefix yet).
  std::pair<std::vector<Admission>, std::set<int64_t>> plan_admissions(const Run& run) const {
    const auto& prompts = *run.prompts;
    const int64_t Bs = run.pool->block_size();
    const int64_t row_blocks = run.tables.size(1), horizon = run.pool->blocks_for(kAdmitHorizon);
    std::vector<Admission> assign;
    std::set<int64_t> new_prompts;
    int64_t free_blocks = run.pool->free_blocks(), next_row = run.next_row;
    int64_t headroom = 0;  // blocks the admitted rows may take within the horizon
    for (size_t s = 0; s < run.slot_row.size(); ++s) {
      if (run.slot_row[s] >= 0)
        headroom += std::min(horizon, row_blocks - static_cast<int64_t>(run.slot_blocks[s].size()));
    }
    bool any_active = std::any_of(run.slot_row.begin(), run.slot_row.end(), [](int64_t r) { return r >= 0; });
    auto preempted = run.preempted.begin();
    for (int64_t slot = 0; slot < static_cast<int64_t>(run.slot_row.size()); ++slot) {
      if (run.slot_row[slot] >= 0) continue;
      const bool resume = preempted != run.preempted.end();
      if (!resume && next_row >= run.N) break;
      const int64_t row = resume ? *preempted : next_row;
      const int64_t p = row / run.G, P = static_cast<int64_t>(prompts[p].size());
      int64_t need = 0;  // blocks taken at admission
      if (resume) {
        need = run.pool->blocks_for(P + static_cast<int64_t>(run.out.rows[row].completion_ids.size()) - 1);
      } else {
        const bool prefilled = run.prefixes.count(p) != 0 || new_prompts.count(p) != 0;
        need = (prefilled ? 0 : run.pool->blocks_for(P)) + (P % Bs != 0 ? 1 : 0);
      }
      const int64_t own = std::min(horizon, row_blocks - need);  // this row's growth within the horizon
      if (need > free_blocks || (any_active && need + headroom + own > free_blocks)) break;
      free_blocks -= need;
      headroom += own;
      any_active = true;
      assign.push_back({slot, row, resume});
      if (resume) {
        ++preempted;
      } else {
        if (run.prefixes.count(p) == 0) new_prompts.insert(p);
        ++next_row;
      }
    }
    return {assign, new_prompts};
  }

  // Admits what plan_admissions chose: one prefill for the new prompts and the resumed rows;
  // new rows take their prompt's blocks and draw their first token from its logits (rows
  // that finish on it leave their slot free again). Returns the number of rows admitted.
  int64_t admit(Run& run) {
    const auto& prompts = *run.prompts;
    const auto [assign, new_prompts] = plan_admissions(run);
    if (assign.empty()) return 0;
    for (const Admission& a : assign) {
      if (a.resume) {
        run.preempted.erase(a.row);
      } else {
        run.next_row = a.row + 1;
      }
    }

    // One prefill for the new prompts and the resumed rows, stored into pool blocks.
    std::vector<std::vector<int32_t>> resumed;
    std::vector<const std::vector<int32_t>*> seqs;
    for (int64_t p : new_prompts) seqs.push_back(&prompts[p]);
    for (const Admission& a : assign) {
      if (a.resume) resumed.push_back(resume_sequence(run, a.row));
    }
    for (const auto& seq : resumed) seqs.push_back(&seq);
    const std::vector<Prefilled> done = prefill(run, seqs);
    size_t k = 0;
    for (int64_t p : new_prompts) {
      const int64_t P = static_cast<int64_t>(prompts[p].size());
      std::vector<int64_t> blocks = allocate(run, run.pool->blocks_for(P));
      run.pool->store(blocks, *done[k].cache, done[k].row, P);
      run.prefixes[p] = Prefix{std::move(blocks), done[k].logits, 0};
      run.out.prefill_tokens += P;
      ++k;
    }
    // A prompt's samples are admitted in order, so those not yet admitted are G - g of the
    // first one admitted now.
    for (const Admission& a : assign) {
      if (a.resume) continue;
      Prefix& px = run.prefixes.at(a.row / run.G);
      if (px.waiting == 0) px.waiting = run.G - a.row % run.G;
    }

    std::vector<int64_t> drawing;   // indices into assign of the new rows
    std::vector<at::Tensor> first;  // [V] their prompt's next-token logits
    for (size_t i = 0; i < assign.size(); ++i) {
      const Admission& a = assign[i];
      const int64_t p = a.row / run.G;
      Rollout& r = run.out.rows[a.row];
      if (a.resume) {
        const int64_t L = static_cast<int64_t>(resumed[k - new_prompts.size()].size());
        std::vector<int64_t> blocks = allocate(run, run.pool->blocks_for(L));
        run.pool->store(blocks, *done[k].cache, done[k].row, L);
        set_blocks(run, a.slot, std::move(blocks));
        run.out.cache.recomputed_tokens += L;
        ++k;
      } else {
        first.push_back(run.prefixes.at(p).logits);
        set_blocks(run, a.slot, take_prompt_blocks(run, p));
        r.prompt_index = p;
        r.sample_index = a.row % run.G;
        r.prompt_ids = prompts[p];
        drawing.push_back(static_cast<int64_t>(i));
      }
      run.slot_row[a.slot] = a.row;
    }
    start_slots(run, assign, drawing, first);
    return static_cast<int64_t>(assign.size());
  }

  // A new sample's blocks: its prompt's full blocks shared, the partial last one copied (or
  // taken over by the last sample). Drops the prefix when no sample waits for it.
  std::vector<int64_t> take_prompt_blocks(Run& run, int64_t p) {
    Prefix& px = run.prefixes.at(p);
    const int64_t P = static_cast<int64_t>((*run.prompts)[p].size());
    const bool partial = P % run.pool->block_size() != 0;
    const size_t full = px.blocks.size() - (partial ? 1 : 0);
    const bool last = --px.waiting == 0;
    std::vector<int64_t> blocks(px.blocks.begin(), px.blocks.begin() + static_cast<std::ptrdiff_t>(full));
    for (int64_t b : blocks) run.pool->retain(b);
    run.out.cache.shared_blocks += static_cast<int64_t>(full);
    if (partial) {
      if (last) {
        blocks.push_back(px.blocks.back());  // the prefix's reference passes to this sample
      } else {
        blocks.push_back(allocate(run, 1)[0]);
        run.pool->copy_block(blocks.back(), px.blocks.back());
      }
    }
    if (last) {
      for (size_t j = 0; j < full; ++j) run.pool->release(px.blocks[j]);
      run.prefixes.erase(p);
    }
    return blocks;
  }

  // Sets the slot state of admitted rows: resumed rows continue from their last token (their
  // draws are keyed by position, so they draw what they would have); new rows draw their
  // first token from the prompt's logits.
  void start_slots(Run& run, const std::vector<Admission>& assign, const std::vector<int64_t>& drawing,
                   const std::vector<at::Tensor>& first) {
    const auto& prompts = *run.prompts;
    const int64_t A = static_cast<int64_t>(assign.size());
    at::Tensor slots_host = at::empty({A}, at::kLong), keys_host = at::empty({A}, at::kLong);
    at::Tensor pos_host = at::empty({A, 1}, at::kLong), steps_host = at::empty({A}, at::kLong);
    at::Tensor last_host = at::zeros({A, 1}, at::kLong);
    for (int64_t a = 0; a < A; ++a) {
      const int64_t slot = assign[a].slot, row = assign[a].row, p = row / run.G;
      const auto& done = run.out.rows[row].completion_ids;
      const int64_t P = static_cast<int64_t>(prompts[p].size()), T = static_cast<int64_t>(done.size());
      slots_host[a] = slot;
      keys_host[a] = static_cast<int64_t>(row_key(run.seeds[p], row % run.G));
      const int64_t position = assign[a].resume ? P + T - 1 : P;
      pos_host[a][0] = position;
      steps_host[a] = assign[a].resume ? T : 0;
      if (assign[a].resume) last_host[a][0] = done.back();
      run.slot_pos[slot] = position;
    }
    const at::Tensor idx = slots_host.to(run.keys.device());  // [A]
    run.keys.index_copy_(0, idx, keys_host.to(idx.device()));
    run.positions.index_copy_(0, idx, pos_host.to(idx.device()));
    run.steps.index_copy_(0, idx, steps_host.to(idx.device()));
    run.last_token.index_copy_(0, idx, last_host.to(idx.device()));
    if (run.seen.defined()) {  // the prompt's tokens and every token drawn so far
      run.seen.index_fill_(0, idx, false);
      for (int64_t a = 0; a < A; ++a) {
        std::vector<int64_t> ids(prompts[assign[a].row / run.G].begin(), prompts[assign[a].row / run.G].end());
        const auto& done = run.out.rows[assign[a].row].completion_ids;
        ids.insert(ids.end(), done.begin(), done.end());
        run.seen[assign[a].slot].index_fill_(0, at::tensor(ids, at::kLong).to(idx.device()), true);
      }
    }
    if (drawing.empty()) return;
    const int64_t D = static_cast<int64_t>(drawing.size());
    at::Tensor draw_slots = at::empty({D}, at::kLong);
    for (int64_t i = 0; i < D; ++i) draw_slots[i] = assign[drawing[i]].slot;
    const at::Tensor didx = draw_slots.to(run.keys.device());  // [D]
    const at::Tensor keys = run.keys.index_select(0, didx);
    at::Tensor seen = run.seen.defined() ? run.seen.index_select(0, didx) : at::Tensor();  // [D, V]
    const Draw d = sample(at::stack(first), seen, run.o, row_uniforms(keys, at::zeros_like(keys)));
    run.last_token.index_copy_(0, didx, d.tokens.unsqueeze(1));
    run.steps.index_fill_(0, didx, 1);
    if (run.seen.defined()) run.seen.index_put_({didx, d.tokens}, true);
    const at::Tensor tok_cpu = d.tokens.cpu(), lp_cpu = d.logprobs.cpu();
    for (int64_t i = 0; i < D; ++i) {
      record(run, assign[drawing[i]].slot, tok_cpu[i].item<int64_t>(), lp_cpu[i].item<float>());
    }
  }

  // Before a step: a block for every active row whose next position starts one. When the
  // pool is dry, waiting prompts' blocks go first (re-prefilled when their samples come),
  // then the youngest rows are preempted (possibly the one asking).
  void grow(Run& run, int64_t n) {
    const int64_t Bs = run.pool->block_size();
    for (int64_t s = 0; s < n; ++s) {
      if (run.slot_row[s] < 0) continue;
      const int64_t j = run.slot_pos[s] / Bs;
      if (j < static_cast<int64_t>(run.slot_blocks[s].size())) continue;
      int64_t b = -1;
      while (run.slot_row[s] >= 0 && (b = run.pool->allocate()) < 0) {
        if (!run.prefixes.empty()) {
          drop_prefix(run, std::prev(run.prefixes.end()));
          continue;
        }
        int64_t youngest = -1, active = 0;
        for (int64_t t = 0; t < n; ++t) {
          if (run.slot_row[t] < 0) continue;
          ++active;
          if (youngest < 0 || run.slot_row[t] > run.slot_row[youngest]) youngest = t;
        }
        // generate() sized the pool for one whole row, so a row alone always finds a block.
        TORCH_CHECK(active > 1, "rollout: the kv pool of ", run.pool->blocks(), " blocks cannot grow a row alone");
        preempt(run, youngest);
      }
      if (b < 0) continue;  // the row itself was preempted
      run.slot_blocks[s].push_back(b);
      run.tables[s][j] = b;
    }
  }

  void drop_prefix(Run& run, std::map<int64_t, Prefix>::iterator it) {
    run.pool->release(it->second.blocks);
    run.prefixes.erase(it);
  }

  void preempt(Run& run, int64_t slot) {
    run.preempted.insert(run.slot_row[slot]);
    ++run.out.cache.preemptions;
    finish_slot(run, slot);
  }

  // One batched forward of the n active slots [0, n) and one draw per slot.
  void step(Run& run, int64_t n) {
    const int64_t S = *std::max_element(run.slot_pos.begin(), run.slot_pos.begin() + n) + 1;
    const at::Tensor table =
        run.tables.narrow(0, 0, n).narrow(1, 0, run.pool->blocks_for(S)).contiguous().to(run.keys.device());  // [n, nb]
    std::vector<policy::LayerKv> views = run.pool->view(table);
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

  // Moves active slots into the lowest free ones so that the active set is [0, n): their
  // state and block tables move, the cache stays where it is.
  int64_t compact(Run& run) {
    const int64_t R = static_cast<int64_t>(run.slot_row.size());
    int64_t lo = 0, hi = R - 1;
    while (true) {
      while (lo < R && run.slot_row[lo] >= 0) ++lo;
      while (hi >= 0 && run.slot_row[hi] < 0) --hi;
      if (lo >= hi) break;
      for (at::Tensor* t : {&run.last_token, &run.positions, &run.keys, &run.steps, &run.seen, &run.tables}) {
        if (t->defined()) (*t)[lo].copy_((*t)[hi]);
      }
      run.slot_blocks[lo] = std::move(run.slot_blocks[hi]);
      run.slot_blocks[hi].clear();
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

    // A row holds a position per token drawn after the prompt, minus the last (never fed); a
    // row also ends at the model's window (record), so no row needs more than that.
    const int64_t capacity = std::min(p_max + o.max_new_tokens, window());
    const auto [R, blocks] =
        size_slots_and_pool(std::min(options.max_batch_rows, run.N), capacity, p_max, o.repetition_penalty != 1.0);
    if (options.retain_cpu_memory && float_opts().device().is_cpu()) retain_cpu_memory_once();
    c10::InferenceMode inference;
    EvalScope eval(*model);
    run.pool = std::make_unique<KvPool>(config, blocks, options.kv_block_size, float_opts());
    run.tables = at::zeros({R, run.pool->blocks_for(capacity)}, at::kLong);
    run.slot_blocks.resize(R);
    run.last_token = at::zeros({R, 1}, long_opts());
    run.positions = at::zeros({R, 1}, long_opts());
    run.keys = at::zeros({R}, long_opts());
    run.steps = at::zeros({R}, long_opts());
    if (o.repetition_penalty != 1.0) run.seen = at::zeros({R, config.vocab_size}, long_opts().dtype(at::kBool));
    run.slot_row.assign(R, -1);
    run.slot_pos.assign(R, 0);

    while (true) {
      int64_t admitted = admit(run);
      int64_t n = compact(run);
      if (n == 0 && run.pending() && admitted == 0) {
        // Nothing runs and nothing fits: only waiting prompts can hold the pool.
        while (!run.prefixes.empty()) drop_prefix(run, run.prefixes.begin());
        admitted = admit(run);
        n = compact(run);
        TORCH_CHECK(admitted > 0, "rollout: the kv pool of ", run.pool->blocks(), " blocks cannot admit a row");
      }
      if (n == 0) {
        if (!run.pending()) break;
        continue;  // every admitted row finished on its first token
      }
      grow(run, n);
      n = compact(run);
      if (n > 0) step(run, n);
    }

    CacheReport& c = run.out.cache;
    c.values_per_token_per_layer = kv_values_per_token_per_layer(config);
    c.bytes_per_token = run.pool->bytes_per_token();
    c.rows = R;
    c.capacity = capacity;
    c.block_size = run.pool->block_size();
    c.blocks = run.pool->blocks();
    c.total_bytes = run.pool->total_bytes();
    c.peak_blocks = run.pool->peak_used_blocks();
    c.free_blocks_at_end = run.pool->free_blocks();
    for (const auto& r : run.out.rows) run.out.generated_tokens += static_cast<int64_t>(r.completion_ids.size());
    run.out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return std::move(run.out);
  }
};

Engine::Engine(std::shared_ptr<policy::CausalLM> model, EngineOptions options, Detokenizer detokenizer)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw Error("rollout engine: no model");
  if (options.max_batch_rows < 1) throw Error("rollout engine: max_batch_rows must be >= 1");
  if (options.kv_block_size < 1) throw Error("rollout engine: kv_block_size must be >= 1");
  if (options.max_kv_tokens < 0)
    throw Error("rollout engine: max_kv_tokens must be >= 0 (0 = every slot's longest row)");
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
