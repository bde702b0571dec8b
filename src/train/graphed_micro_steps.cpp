#include "qa/train/graphed_micro_steps.hpp"

#include <stdexcept>

namespace qa {

namespace {
int64_t round_up(int64_t n, int64_t multiple) { return multiple > 0 ? (n + multiple - 1) / multiple * multiple : n; }
}  // namespace

BatchShape shape_bucket(int64_t rows, int64_t source_length, int64_t target_length, int64_t source_multiple,
                        int64_t target_multiple) {
  return {rows, round_up(source_length, source_multiple), round_up(target_length, target_multiple)};
}

GraphedMicroSteps::GraphedMicroSteps(T5Model& model, MicroStepSpec spec) : model_(model), spec_(std::move(spec)) {
  if (!CudaGraph::supported()) throw std::runtime_error("train.cuda_graphs: this build's LibTorch has no CUDA");
  if (!spec_.device.is_cuda()) throw std::runtime_error("train.cuda_graphs: needs the cuda device");
  model_->set_capturable_embedding(true);
  denominator_ = torch::ones({}, torch::TensorOptions().dtype(torch::kFloat).device(spec_.device));
}

BatchShape GraphedMicroSteps::shape_of(const Batch& b) const {
  return shape_bucket(b.input_ids.size(0), b.input_ids.size(1), b.labels.size(1));
}

torch::Tensor GraphedMicroSteps::forward_backward(const Batch& b, double denominator) {
  const BatchShape shape = shape_of(b);
  const auto key = std::make_tuple(shape.rows, shape.source_length, shape.target_length);
  denominator_.fill_(denominator);  // a kernel with the value as its argument: no wait for the device
  const int64_t pad = model_->config().pad_token_id;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    copy_padded(b, it->second.inputs, pad);
    it->second.graph->replay();
    return it->second.loss;
  }
  // First micro-batch of this bucket: run it for real, then record the same work.
  Entry e;
  e.inputs = padded_to(b, shape.source_length, shape.target_length, pad);
  torch::Tensor loss;
  CudaGraph::run_on_side_stream([&] { loss = qa::forward_backward(model_, e.inputs, spec_, denominator_); });
  e.graph = std::make_unique<CudaGraph>();
  e.graph->record([&] { e.loss = qa::forward_backward(model_, e.inputs, spec_, denominator_); }, first_graph_);
  if (!first_graph_) first_graph_ = e.graph.get();
  entries_.emplace(key, std::move(e));
  return loss;
}

}  // namespace qa
