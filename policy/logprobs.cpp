// Chunked token logprobs (see logprobs.h). Gradient per chunk, with z = h W^T / tau and
// p = softmax(z):  d logp(y)/dz = onehot(y) - p;  d H/dz = -p * (z - sum_k p_k z_k);
// then dh = dz W / tau and dW = dz^T h / tau.
#include "policy/logprobs.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <functional>
#include <utility>

namespace r1kit::policy {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The backward of a chunked head z = h W^T / tau: per chunk of rows [s, s+n), `dz_of` gives
// dL/dz [n, V] (from hc = h[s:s+n] in fp32 and W in fp32); dh = dz W / tau, dW += dz^T h / tau
// (the caller's dz already carries 1/tau). Returns (dh, dW) in h's and W's dtypes.
std::pair<at::Tensor, at::Tensor> chunked_head_backward(
    const at::Tensor& h, const at::Tensor& w, int64_t chunk,
    const std::function<at::Tensor(int64_t s, int64_t n, const at::Tensor& hc, const at::Tensor& w32)>& dz_of) {
  const int64_t M = h.size(0);
  at::Tensor dh = at::zeros_like(h, h.options().dtype(at::kFloat));
  at::Tensor dw = at::zeros_like(w, w.options().dtype(at::kFloat));
  const at::Tensor w32 = w.to(at::kFloat);
  for (int64_t s = 0; s < M; s += chunk) {
    const int64_t n = std::min(chunk, M - s);
    const at::Tensor hc = h.narrow(0, s, n).to(at::kFloat);
    const at::Tensor dz = dz_of(s, n, hc, w32);  // [n, V]
    dh.narrow(0, s, n).copy_(at::matmul(dz, w32));
    dw.add_(at::matmul(dz.t(), hc));
  }
  return {dh.to(h.scalar_type()), dw.to(w.scalar_type())};
}

struct ChunkedLogprobs : public torch::autograd::Function<ChunkedLogprobs> {
  // h [N*T, D], w [V, D], y [N*T] -> logp [N*T], entropy [N*T]
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& y,
                               double tau, int64_t chunk) {
    const int64_t M = h.size(0);
    at::Tensor logp = at::empty({M}, h.options().dtype(at::kFloat));
    at::Tensor entropy = at::empty({M}, h.options().dtype(at::kFloat));
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t n = std::min(chunk, M - s);
      const at::Tensor z = at::matmul(h.narrow(0, s, n), w.t()).to(at::kFloat) / tau;  // [n, V]
      const at::Tensor lse = at::logsumexp(z, /*dim=*/-1);                             // [n]
      logp.narrow(0, s, n).copy_(z.gather(1, y.narrow(0, s, n).unsqueeze(1)).squeeze(1) - lse);
      const at::Tensor p = at::exp(z - lse.unsqueeze(1));
      entropy.narrow(0, s, n).copy_(lse - (p * z).sum(-1));
    }
    ctx->save_for_backward({h, w, y});
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["chunk"] = chunk;
    return {logp, entropy};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &w = saved[1], &y = saved[2];
    const double tau = ctx->saved_data["tau"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor g_logp = grads[0].defined() ? grads[0] : at::zeros({h.size(0)}, h.options().dtype(at::kFloat));
    const bool use_entropy = grads[1].defined();
    auto [dh, dw] =
        chunked_head_backward(h, w, chunk, [&](int64_t s, int64_t n, const at::Tensor& hc, const at::Tensor& w32) {
          const at::Tensor z = at::matmul(hc, w32.t()) / tau;  // [n, V]
          const at::Tensor p = at::softmax(z, /*dim=*/-1);
          at::Tensor dz = -p * g_logp.narrow(0, s, n).unsqueeze(1);                                 // -(g p)
          dz.scatter_add_(1, y.narrow(0, s, n).unsqueeze(1), g_logp.narrow(0, s, n).unsqueeze(1));  // + g onehot
          if (use_entropy) {
            const at::Tensor mean_z = (p * z).sum(-1, /*keepdim=*/true);
            dz = dz - grads[1].narrow(0, s, n).unsqueeze(1) * p * (z - mean_z);
          }
          return dz / tau;
        });
    return {dh, dw, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// KL(p_t || p_s) with p = softmax(z / tau): dKL/dz_s = (p_s - p_t) / tau.
struct ChunkedKl : public torch::autograd::Function<ChunkedKl> {
  // h [M, D], w [V, D], ht [M, Dt], wt [V, Dt] -> kl [M]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& ht,
                            const at::Tensor& wt, double tau, int64_t chunk) {
    const int64_t M = h.size(0);
    at::Tensor kl = at::empty({M}, h.options().dtype(at::kFloat));
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t n = std::min(chunk, M - s);
      const at::Tensor lp_s = at::log_softmax(at::matmul(h.narrow(0, s, n), w.t()).to(at::kFloat) / tau, -1);
      const at::Tensor lp_t = at::log_softmax(at::matmul(ht.narrow(0, s, n), wt.t()).to(at::kFloat) / tau, -1);
      kl.narrow(0, s, n).copy_((lp_t.exp() * (lp_t - lp_s)).sum(-1));  // [n]
    }
    ctx->save_for_backward({h, w, ht, wt});
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["chunk"] = chunk;
    return kl;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &w = saved[1], &ht = saved[2], &wt = saved[3];
    const double tau = ctx->saved_data["tau"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor& g = grads[0];  // [M]
    auto [dh, dw] =
        chunked_head_backward(h, w, chunk, [&](int64_t s, int64_t n, const at::Tensor& hc, const at::Tensor& w32) {
          const at::Tensor p_s = at::softmax(at::matmul(hc, w32.t()) / tau, -1);
          const at::Tensor p_t = at::softmax(at::matmul(ht.narrow(0, s, n), wt.t()).to(at::kFloat) / tau, -1);
          return (p_s - p_t) * (g.narrow(0, s, n).unsqueeze(1) / tau);  // [n, V]
        });
    return {dh, dw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor token_kl(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& teacher_hidden,
                    const at::Tensor& teacher_head, const LogprobOptions& options) {
  TORCH_CHECK(hidden.dim() == 3 && teacher_hidden.dim() == 3 && hidden.size(0) == teacher_hidden.size(0) &&
                  hidden.size(1) == teacher_hidden.size(1) && lm_head.size(0) == teacher_head.size(0),
              "token_kl: hidden ", hidden.sizes(), " / head ", lm_head.sizes(), " and the teacher's ",
              teacher_hidden.sizes(), " / ", teacher_head.sizes(), " must be [N, T, D] / [V, D] alike");
  TORCH_CHECK(options.temperature > 0, "token_kl: temperature must be > 0");
  const int64_t N = hidden.size(0), T = hidden.size(1);
  const at::Tensor kl =
      ChunkedKl::apply(hidden.reshape({N * T, hidden.size(2)}), lm_head,
                       teacher_hidden.reshape({N * T, teacher_hidden.size(2)}).detach(), teacher_head.detach(),
                       options.temperature, std::max<int64_t>(options.chunk_rows, 1));
  return kl.view({N, T});
}

TokenLogprobs token_logprobs(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& targets,
                             const LogprobOptions& options) {
  TORCH_CHECK(
      hidden.dim() == 3 && targets.dim() == 2 && hidden.size(0) == targets.size(0) && hidden.size(1) == targets.size(1),
      "token_logprobs: hidden ", hidden.sizes(), " and targets ", targets.sizes(), " must be [N, T, D] and [N, T]");
  TORCH_CHECK(options.temperature > 0, "token_logprobs: temperature must be > 0");
  const int64_t N = hidden.size(0), T = hidden.size(1), D = hidden.size(2);
  auto out = ChunkedLogprobs::apply(hidden.reshape({N * T, D}), lm_head, targets.reshape({N * T}), options.temperature,
                                    std::max<int64_t>(options.chunk_rows, 1));
  return {out[0].view({N, T}), out[1].view({N, T})};
}

TokenLogprobs token_logprobs_naive(const at::Tensor& hidden, const at::Tensor& lm_head, const at::Tensor& targets,
                                   double temperature) {
  const at::Tensor z = at::matmul(hidden, lm_head.t()).to(at::kFloat) / temperature;  // [N, T, V]
  const at::Tensor lp = at::log_softmax(z, -1);
  return {lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), -(lp.exp() * lp).sum(-1)};
}

}  // namespace r1kit::policy
