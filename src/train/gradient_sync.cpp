#include "qa/train/gradient_sync.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace qa {

struct GradientSync::State {
  DataParallel* dp = nullptr;
  std::vector<torch::Tensor> bucket_views;  // contiguous slices of the flat gradient buffer
  std::vector<int64_t> expected, ready;     // parameters per bucket; of them, ready in this pass
  std::vector<bool> started;
  std::vector<std::size_t> bucket_of;       // parameter index -> bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: the hooks live on them
  std::mutex mutex;
  bool armed = false;
  bool alive = true;
  int64_t started_by_hooks = 0;

  void start(std::size_t b) {  // caller holds the mutex
    started[b] = true;
    dp->start_all_reduce_sum(bucket_views[b]);
  }
  void on_ready(std::size_t param) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!alive || !armed) return;
    const std::size_t b = bucket_of[param];
    if (++ready[b] == expected[b] && !started[b]) {
      start(b);
      ++started_by_hooks;
    }
  }
};

namespace {

struct ReadyHook : torch::autograd::FunctionPostHook {
  ReadyHook(std::weak_ptr<GradientSync::State> s, std::size_t p) : state(std::move(s)), param(p) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = state.lock()) s->on_ready(param);
    return outputs;
  }
  std::weak_ptr<GradientSync::State> state;
  std::size_t param;
};

}  // namespace

GradientSync::GradientSync(DataParallel& dp, T5Model& model, const torch::Tensor& flat_grads, int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  state_->dp = &dp;
  auto params = model->named_parameters();
  std::vector<int64_t> offset, size;
  int64_t total = 0;
  for (const auto& p : params) {
    offset.push_back(total);
    size.push_back(p.value().numel());
    total += p.value().numel();
  }
  const int64_t per_bucket = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(flat_grads.element_size()));
  state_->bucket_of.assign(params.size(), 0);
  // Reverse order: the last parameters' gradients are computed first.
  int64_t end = total, count = 0;
  for (std::size_t i = params.size(); i-- > 0;) {
    state_->bucket_of[i] = state_->bucket_views.size();
    ++count;
    const int64_t begin = offset[i];
    if (end - begin >= per_bucket || i == 0) {
      state_->bucket_views.push_back(flat_grads.narrow(0, begin, end - begin));
      state_->expected.push_back(count);
      end = begin;
      count = 0;
    }
  }
  state_->ready.assign(state_->bucket_views.size(), 0);
  state_->started.assign(state_->bucket_views.size(), false);
  std::size_t i = 0;
  for (auto& p : params) {
    auto acc = torch::autograd::impl::grad_accumulator(p.value());
    acc->add_post_hook(std::make_unique<ReadyHook>(state_, i++));
    state_->accumulators.push_back(std::move(acc));
  }
}

GradientSync::~GradientSync() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->alive = false;
}

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  std::fill(state_->ready.begin(), state_->ready.end(), 0);
  std::fill(state_->started.begin(), state_->started.end(), false);
  state_->started_by_hooks = 0;
  state_->armed = true;
}

void GradientSync::finish() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    // Not armed: this rank ran no backward in this step (an empty share), so nothing started yet.
    if (!state_->armed) std::fill(state_->started.begin(), state_->started.end(), false);
    for (std::size_t b = 0; b < state_->started.size(); ++b) {
      if (!state_->started[b]) state_->start(b);
    }
    state_->armed = false;
  }
  state_->dp->wait_pending();
}

int64_t GradientSync::buckets() const { return static_cast<int64_t>(state_->bucket_views.size()); }

int64_t GradientSync::started_during_backward() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->started_by_hooks;
}

}  // namespace qa
