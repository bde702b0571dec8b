// The forward and backward pass of micro-batches as CUDA graph replays (train.cuda_graphs).
// A graph replays fixed shapes, so each micro-batch is padded up to a shape bucket (sequence lengths
// rounded up to a multiple of 64 source / 16 target tokens); each bucket's graph is recorded the
// first time the bucket comes up, after that micro-batch has run eagerly (that run is the real one:
// recording runs nothing). All buckets share one memory pool: only one graph runs at a time.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "qa/data/collate.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/cuda_graph.hpp"
#include "qa/train/train_step.hpp"

namespace qa {

struct BatchShape {
  int64_t rows = 0, source_length = 0, target_length = 0;
};

// The bucket a batch of this shape is padded to: lengths rounded up to a multiple of
// `source_multiple` / `target_multiple`, rows as they are.
BatchShape shape_bucket(int64_t rows, int64_t source_length, int64_t target_length, int64_t source_multiple = 64,
                        int64_t target_multiple = 16);

class GraphedMicroSteps {
 public:
  // Needs a CUDA build and a model on a CUDA device (throws otherwise). Switches the model's input
  // embedding to its capturable form (T5ModelImpl::set_capturable_embedding).
  GraphedMicroSteps(T5Model& model, MicroStepSpec spec);

  // forward_backward (train_step.hpp) of `b` (on the device) at its bucket's shape, objective divided
  // by `denominator`. Returns the cross-entropy sum as a tensor that the next call overwrites: add it
  // up (on the device) before then.
  torch::Tensor forward_backward(const Batch& b, double denominator);

  BatchShape shape_of(const Batch& b) const;
  std::size_t graphs() const { return entries_.size(); }

 private:
  struct Entry {
    Batch inputs;        // the graph's inputs: every replay reads the micro-batch from here
    torch::Tensor loss;  // and leaves its cross-entropy sum here
    std::unique_ptr<CudaGraph> graph;
  };
  T5Model model_;
  MicroStepSpec spec_;
  torch::Tensor denominator_;  // 0-dim, on the device, read by every graph
  std::map<std::tuple<int64_t, int64_t, int64_t>, Entry> entries_;
  const CudaGraph* first_graph_ = nullptr;  // owner of the shared memory pool
};

}  // namespace qa
