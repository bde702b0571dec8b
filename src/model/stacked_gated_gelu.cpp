#include "qa/model/stacked_gated_gelu.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class StackedGatedGeluFunction : public torch::autograd::Function<StackedGatedGeluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const std::string& approximate) {
    const int64_t n = x.size(-1) / 2;
    const auto gelu_a = at::gelu(x.narrow(-1, 0, n), approximate);
    ctx->save_for_backward({x, gelu_a});
    ctx->saved_data["approximate"] = approximate;
    return gelu_a * x.narrow(-1, n, n);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &gelu_a = saved[1];
    const int64_t n = x.size(-1) / 2;
    const auto g = grads[0].to(x.scalar_type());
    auto dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
    auto da = dx.narrow(-1, 0, n), db = dx.narrow(-1, n, n);
    at::mul_out(db, g, gelu_a);
    at::gelu_backward_out(da, g * x.narrow(-1, n, n), x.narrow(-1, 0, n), ctx->saved_data["approximate"].toStringRef());
    return {dx, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor stacked_gated_gelu(const torch::Tensor& x, const std::string& approximate) {
  return StackedGatedGeluFunction::apply(x, approximate);
}

}  // namespace qa
