#include "qa/model/activation_checkpoint.hpp"

#include <ATen/Context.h>

#include <algorithm>
#include <mutex>

#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct GeneratorState {
  at::Generator generator;
  at::Tensor state;
};

at::Tensor get_state(at::Generator& g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_states(std::vector<GeneratorState>& states) {
  for (auto& s : states) {
    std::lock_guard<std::mutex> lock(s.generator.mutex());
    s.generator.set_state(s.state);
  }
}

// The default generators that fn's random ops may draw from: the CPU's, and each other device's of
// the inputs (torch.utils.checkpoint forks the same ones).
std::vector<GeneratorState> capture_generators(const std::vector<torch::Tensor>& inputs) {
  std::vector<c10::Device> devices{c10::Device(c10::kCPU)};
  for (const auto& t : inputs) {
    if (t.defined() && std::find(devices.begin(), devices.end(), t.device()) == devices.end()) {
      devices.push_back(t.device());
    }
  }
  std::vector<GeneratorState> states;
  for (const auto& d : devices) {
    at::Generator g = at::globalContext().defaultGenerator(d);
    states.push_back({g, get_state(g)});
  }
  return states;
}

// Sets the generators to `saved` for the scope, then back to where they were.
class GeneratorFork {
 public:
  explicit GeneratorFork(std::vector<GeneratorState> saved) : saved_(std::move(saved)) {
    for (auto& s : saved_) current_.push_back({s.generator, get_state(s.generator)});
    set_states(saved_);
  }
  ~GeneratorFork() { set_states(current_); }
  GeneratorFork(const GeneratorFork&) = delete;
  GeneratorFork& operator=(const GeneratorFork&) = delete;

 private:
  std::vector<GeneratorState> saved_, current_;
};

// What the recompute needs besides the saved inputs; rides on the autograd node as a capsule.
struct Recompute : torch::CustomClassHolder {
  CheckpointedFn fn;
  std::vector<bool> defined;  // which of fn's inputs were defined (only those are autograd inputs)
  compat::AutocastSnapshot autocast;
  std::vector<GeneratorState> generators;  // before the first run

  std::vector<torch::Tensor> expand(const std::vector<torch::Tensor>& given) const {
    std::vector<torch::Tensor> all(defined.size());
    std::size_t next = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (defined[i]) all[i] = given[next++];
    }
    return all;
  }
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<Recompute> r, torch::TensorList inputs) {
    r->autocast = compat::AutocastSnapshot::capture();
    r->generators = capture_generators(inputs.vec());
    torch::Tensor out;
    {
      torch::NoGradGuard no_grad;
      out = r->fn(r->expand(inputs.vec()));
    }
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["recompute"] = at::IValue::make_capsule(std::move(r));
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto holder = ctx->saved_data["recompute"].toCapsule();
    const auto& r = static_cast<const Recompute&>(*holder);
    const auto saved = ctx->get_saved_variables();
    tensor_list grads(1 + saved.size());  // [0]: the Recompute argument
    if (!grad_outputs[0].defined()) return grads;

    // fn gets a view of each detached leaf, not the leaf: autocast caches its bf16 cast of a leaf that
    // requires grad, so k and v of cross-attention would share one cast and sum their gradients in
    // bf16, where the first run (inputs computed by other ops, never cached) summed them in fp32.
    std::vector<torch::Tensor> detached, given;
    torch::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      for (const auto& t : saved) {
        detached.push_back(t.detach().requires_grad_(t.requires_grad()));
        given.push_back(t.requires_grad() ? detached.back().view_as(detached.back()) : detached.back());
      }
      GeneratorFork rng(r.generators);
      compat::AutocastSnapshotScope autocast(r.autocast);
      out = r.fn(r.expand(given));
    }
    // Reaches the parameters' AccumulateGrad nodes: .grad += (in place, into the optimizer's buffer).
    if (out.requires_grad()) torch::autograd::backward({out}, {grad_outputs[0]});
    for (std::size_t i = 0; i < detached.size(); ++i) {
      if (detached[i].requires_grad()) grads[1 + i] = detached[i].grad();
    }
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(const CheckpointedFn& fn, const std::vector<torch::Tensor>& inputs) {
  const bool any_grad = std::any_of(inputs.begin(), inputs.end(),
                                    [](const torch::Tensor& t) { return t.defined() && t.requires_grad(); });
  if (!any_grad || !torch::GradMode::is_enabled()) return fn(inputs);
  auto r = c10::make_intrusive<Recompute>();
  r->fn = fn;
  std::vector<torch::Tensor> defined_inputs;
  for (const auto& t : inputs) {
    r->defined.push_back(t.defined());
    if (t.defined()) defined_inputs.push_back(t);
  }
  return CheckpointFunction::apply(std::move(r), torch::TensorList(defined_inputs));
}

}  // namespace qa
