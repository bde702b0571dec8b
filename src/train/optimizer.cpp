#include "qa/train/optimizer.hpp"

#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

#include "qa/runtime/torch_compat.hpp"
#include "qa/train/adamw_kernel.hpp"
#include "qa/train/grad_norm_kernel.hpp"
#include "qa/util/error.hpp"

namespace qa {

Optimizer::Optimizer(T5Model& model, const TrainSection& train) : options_(train) {
  torch::NoGradGuard no_grad;
  auto named = model->named_parameters();
  int64_t total = 0;
  for (const auto& p : named) total += p.value().numel();
  const auto opts = named.begin()->value().options().dtype(torch::kFloat);
  params_ = torch::empty({total}, opts);
  grads_ = torch::zeros({total}, opts);
  exp_avg_ = torch::zeros({total}, opts);
  exp_avg_sq_ = torch::zeros({total}, opts);
  int64_t offset = 0;
  for (auto& p : named) {
    torch::Tensor& t = p.value();
    const int64_t n = t.numel();
    // T5 initialises embeddings with std 1 and projections with std ~d^-0.5: with one absolute step
    // size the embeddings move orders of magnitude slower, relative to their size, than the rest.
    // param_rms scales each tensor's step by its RMS at the start (Adafactor's scale_parameter).
    // Not the relative position bias: its entries are added to the attention logits as they are, so
    // scaling by its small initial RMS (d_model^-0.5) made the positional heads form ~11x slower than
    // the content heads, and the demo's "whose attribute" step waited on them (README, demo section).
    const bool is_position_bias = p.key().find("relative_attention_bias") != std::string::npos;
    const double mult = train.lr_scaling == "param_rms" && !is_position_bias
                            ? std::max(1e-3, t.detach().pow(2).mean().sqrt().item<double>())
                            : 1.0;
    const bool is_norm = p.key().find("layer_norm") != std::string::npos;
    multipliers_.push_back(mult);
    segments_.push_back({offset, offset + n, static_cast<float>(mult), static_cast<float>(is_norm ? 0.0 : mult * train.weight_decay)});
    auto view = params_.narrow(0, offset, n).view_as(t);
    view.copy_(t);
    t.set_data(view);  // the module's parameter now lives in the flat buffer
    // Autograd accumulates into an existing .grad in place, so gradients land in the flat buffer too.
    t.mutable_grad() = grads_.narrow(0, offset, n).view_as(t);
    if (compat::has_fused_adamw(opts.device().type())) {
      const double wd = is_norm ? 0.0 : train.weight_decay;
      auto g = std::find_if(fused_groups_.begin(), fused_groups_.end(),
                            [&](const FusedGroup& f) { return f.lr_multiplier == mult && f.weight_decay == wd; });
      if (g == fused_groups_.end()) g = fused_groups_.insert(fused_groups_.end(), FusedGroup{mult, wd, {}, {}, {}, {}});
      g->params.push_back(params_.narrow(0, offset, n));
      g->grads.push_back(grads_.narrow(0, offset, n));
      g->exp_avgs.push_back(exp_avg_.narrow(0, offset, n));
      g->exp_avg_sqs.push_back(exp_avg_sq_.narrow(0, offset, n));
    }
    offset += n;
  }
  // Every .grad is now a dense view of grads_: a sparse embedding gradient is added into it in place.
  model->set_sparse_embedding_grad(true);
}

double Optimizer::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  double norm = 0;
  if (grads_.is_cpu()) {
    RECORD_FUNCTION("qa::grad_norm_cpu", std::vector<c10::IValue>());  // named in profiles
    norm = std::sqrt(sum_of_squares_cpu(grads_.data_ptr<float>(), grads_.numel()));
  } else {
    norm = grads_.norm().item<double>();
  }
  grad_scale_ = 1.0;
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    grad_scale_ = max_norm / (norm + 1e-6);
    // On CPU the fused update applies the factor as it reads each gradient: one pass fewer.
    if (!grads_.device().is_cpu()) {
      grads_.mul_(grad_scale_);
      grad_scale_ = 1.0;
    }
  }
  return norm;
}

namespace {
// One field of every segment spread over its elements, built on first use into `cache`.
const torch::Tensor& per_element(torch::Tensor& cache, const torch::Tensor& like, const std::vector<AdamWSegment>& segments,
                                 float AdamWSegment::*field) {
  if (!cache.defined()) {
    cache = torch::empty_like(like);
    for (const auto& sg : segments) cache.narrow(0, sg.begin, sg.end - sg.begin).fill_(sg.*field);
  }
  return cache;
}
}  // namespace

const torch::Tensor& Optimizer::lr_scale() { return per_element(lr_scale_, params_, segments_, &AdamWSegment::lr_scale); }
const torch::Tensor& Optimizer::decay() { return per_element(decay_, params_, segments_, &AdamWSegment::decay); }

void Optimizer::zero_grad() {
  if (!grads_zeroed_) grads_.zero_();
  grads_zeroed_ = false;
  grad_scale_ = 1.0;
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  if (params_.device().is_cpu()) {
    RECORD_FUNCTION("qa::adamw_step_cpu", std::vector<c10::IValue>());  // named in profiles, not "outside any operator"
    AdamWStep s;
    s.lr = lr, s.beta1 = options_.adam_beta1, s.beta2 = options_.adam_beta2, s.eps = options_.adam_epsilon;
    s.step = step_, s.grad_scale = grad_scale_, s.zero_grad = true;
    adamw_step_cpu(params_.data_ptr<float>(), grads_.data_ptr<float>(), exp_avg_.data_ptr<float>(),
                   exp_avg_sq_.data_ptr<float>(), segments_, params_.numel(), s);
    grads_zeroed_ = true;
    return;
  }
  const double b1 = options_.adam_beta1, b2 = options_.adam_beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  params_.addcmul_(params_, decay(), -lr);  // decoupled weight decay: p *= 1 - lr * wd
  exp_avg_.mul_(b1).add_(grads_, 1.0 - b1);
  exp_avg_sq_.mul_(b2).addcmul_(grads_, grads_, 1.0 - b2);
  auto denom = (exp_avg_sq_.sqrt() / std::sqrt(bias2)).add_(options_.adam_epsilon);
  params_.addcdiv_(exp_avg_ * lr_scale(), denom, -lr / bias1);
}

Optimizer::DeviceStep Optimizer::clip_and_step_on_device(double max_norm, double lr, const torch::Tensor& loss) {
  torch::NoGradGuard no_grad;
  if (!device_step_.defined()) {
    device_step_ = torch::full({}, static_cast<double>(step_), params_.options());
  }
  const double b1 = options_.adam_beta1, b2 = options_.adam_beta2;
  auto norm = grads_.norm();
  auto ok = torch::isfinite(norm).logical_and(torch::isfinite(loss.to(torch::kFloat)));
  auto okf = ok.to(torch::kFloat);
  if (!fused_groups_.empty()) {
    // One multi-tensor kernel per group; it divides gradients by grad_scale (the inverse clip factor)
    // and leaves everything untouched where found_inf is 1.
    auto found_inf = 1.0 - okf;
    auto inv_clip = torch::ones({}, params_.options());
    if (max_norm > 0) inv_clip = torch::where(ok, ((norm + 1e-6) / max_norm).clamp_min(1.0), inv_clip);
    device_step_.add_(1.0);
    for (const auto& g : fused_groups_) {
      compat::fused_adamw_(g.params, g.grads, g.exp_avgs, g.exp_avg_sqs, device_step_, lr * g.lr_multiplier, b1, b2,
                           g.weight_decay, options_.adam_epsilon, inv_clip, found_inf);
    }
    device_step_.sub_(found_inf);
    return {norm, found_inf};
  }
  auto scale = okf;  // 0 zeroes a skipped step's gradient (NaN * 0 is NaN, hence where() below)
  if (max_norm > 0) scale = scale * (max_norm / (norm + 1e-6)).clamp_max(1.0);
  auto g = torch::where(ok, grads_ * scale, torch::zeros({}, grads_.options()));
  device_step_.add_(okf);
  // A skipped step leaves the step count as it was: the corrections below are then finite and unused.
  // In float64: 1 - 0.999^t in float32 is off by ~1e-5 relative.
  auto t = device_step_.to(torch::kDouble).clamp_min(1.0);
  auto bias1 = (1.0 - torch::pow(b1, t)).to(torch::kFloat);
  auto bias2 = (1.0 - torch::pow(b2, t)).to(torch::kFloat);
  // Moments move by the usual amount where ok, not at all where skipped: m + w (g - m) with w = 0.
  exp_avg_.lerp_(g, okf * (1.0 - b1));
  exp_avg_sq_.lerp_(g * g, okf * (1.0 - b2));
  params_.sub_(params_ * decay() * (okf * lr));  // decoupled weight decay
  auto denom = (exp_avg_sq_.sqrt() / bias2.sqrt()).add_(options_.adam_epsilon);
  params_.sub_(exp_avg_ * lr_scale() / denom * (okf * lr / bias1));
  return {norm, 1.0 - okf};
}

std::vector<std::pair<std::string, torch::Tensor>> Optimizer::state() const {
  auto step = device_step_.defined() ? device_step_.to(torch::kCPU, torch::kDouble)
                                     : torch::tensor(static_cast<double>(step_), torch::kDouble);
  return {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}, {"step", step}};
}

void Optimizer::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (const char* name : {"exp_avg", "exp_avg_sq", "step"}) {
    if (!state.count(name)) throw_bad_file(source, std::string("missing tensor '") + name + "'");
  }
  for (auto [name, dst] : {std::pair<const char*, torch::Tensor*>{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}}) {
    const auto& src = state.at(name);
    if (src.sizes() != dst->sizes()) {
      throw_bad_file(source, std::string("tensor '") + name + "' has " + std::to_string(src.numel()) +
                                 " elements, this model has " + std::to_string(dst->numel()) + " parameters");
    }
    dst->copy_(src);
  }
  step_ = static_cast<int64_t>(state.at("step").item<double>());
  device_step_ = torch::Tensor();  // the device count restarts from step_
}

}  // namespace qa
