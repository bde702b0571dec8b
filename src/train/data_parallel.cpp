#include "qa/train/data_parallel.hpp"

#ifndef QA_NO_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#define QA_COMPAT_C10D
#include "qa/runtime/torch_compat.hpp"

#include <chrono>
#include <mutex>
#include <cstdlib>
#include <vector>

#include <spdlog/spdlog.h>

#include "qa/util/error.hpp"

namespace qa {

struct DataParallel::Impl {
  ProcessLayout layout;
  std::chrono::milliseconds timeout{0};
  std::string backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<compat::CollectiveGroup> group;
  std::mutex pending_mutex;
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;
};

namespace {

[[noreturn]] void rethrow(const std::string& what, const std::exception& e) {
  // c10d's messages can be long (stack traces): the first line says what happened.
  std::string msg = e.what();
  msg = msg.substr(0, msg.find('\n'));
  throw Error("distributed " + what + " failed: " + msg +
              " (a rank stopped or never joined? see distributed.timeout_seconds)");
}

void wait(const c10::intrusive_ptr<c10d::Work>& work, std::chrono::milliseconds timeout, const char* what) {
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    rethrow(what, e);
  }
}

}  // namespace

DataParallel::DataParallel() = default;
DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;
DataParallel& DataParallel::operator=(DataParallel&&) noexcept = default;

DataParallel::DataParallel(const ProcessLayout& layout, const torch::Device& device, double timeout_seconds)
    : impl_(std::make_unique<Impl>()) {
  impl_->layout = layout;
  impl_->timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(layout.master_port);
    opts.isServer = layout.rank == 0;
    opts.numWorkers = static_cast<std::size_t>(layout.world_size);
    opts.waitWorkers = true;  // rank 0 waits for everyone: a rank that never comes is a timeout
    opts.timeout = impl_->timeout;
    compat::disable_libuv(opts);
    impl_->store = c10::make_intrusive<c10d::TCPStore>(layout.master_addr, opts);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    if (msg.find("waiting for clients") != std::string::npos) {  // LibTorch 2.x: the server waits for everyone
      throw Error("distributed: not all " + std::to_string(layout.world_size) + " processes joined at " +
                  layout.master_addr + ":" + std::to_string(layout.master_port) +
                  " within distributed.timeout_seconds: " + msg);
    }
    rethrow("rendezvous at " + layout.master_addr + ":" + std::to_string(layout.master_port), e);
  }
  try {
#ifdef USE_C10D_NCCL
    if (device.is_cuda()) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = impl_->timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, static_cast<int>(layout.rank),
                                                                 static_cast<int>(layout.world_size), options);
      impl_->backend = "nccl";
    }
#endif
#ifdef QA_NO_GLOO
    if (!impl_->group) {
      throw Error(std::string("distributed: this build of qa-train has no Gloo backend (its LibTorch ships no Gloo "
                              "headers), so several processes need CUDA devices and NCCL") +
                  (device.is_cuda() ? "; this LibTorch has no NCCL either" : "; this run is on the CPU"));
    }
#else
    if (!impl_->group) {
      auto options = c10d::ProcessGroupGloo::Options::create(impl_->timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      const bool loopback = layout.master_addr == "localhost" || layout.master_addr.rfind("127.", 0) == 0;
      options->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                 : loopback      ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                                 : c10d::ProcessGroupGloo::createDefaultDevice());
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, static_cast<int>(layout.rank),
                                                                 static_cast<int>(layout.world_size), options);
      impl_->backend = "gloo";
      if (device.is_cuda()) spdlog::warn("distributed: this LibTorch has no NCCL; using Gloo for CUDA tensors");
    }
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw Error("distributed: not all " + std::to_string(layout.world_size) + " processes joined at " + layout.master_addr +
                ":" + std::to_string(layout.master_port) + " within distributed.timeout_seconds (" +
                std::to_string(impl_->timeout.count() / 1000) + " s): " + msg.substr(0, msg.find('\n')));
  }
}

const std::string& DataParallel::backend() const {
  static const std::string none = "none";
  return impl_ ? impl_->backend : none;
}

namespace {

// Submits one collective; c10d's exceptions become qa::Error.
template <class Submit>
c10::intrusive_ptr<c10d::Work> submit(const char* what, Submit&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    rethrow(what, e);
  }
}

}  // namespace

void DataParallel::broadcast(const torch::Tensor& tensor) {
  if (!impl_) return;
  std::vector<at::Tensor> t{tensor};
  c10d::BroadcastOptions opts;
  opts.rootRank = 0;
  opts.timeout = impl_->timeout;
  wait(submit("broadcast", [&] { return impl_->group->broadcast(t, opts); }), impl_->timeout, "broadcast");
}

void DataParallel::all_reduce_sum(const torch::Tensor& tensor, int64_t bucket_bytes) {
  if (!impl_) return;
  const int64_t n = tensor.numel();
  const int64_t per_bucket = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(tensor.element_size()));
  auto flat = tensor.view({-1});  // a view: the reduction lands in `tensor`
  for (int64_t off = 0; off < n; off += per_bucket) start_all_reduce_sum(flat.narrow(0, off, std::min(per_bucket, n - off)));
  wait_pending();
}

void DataParallel::start_all_reduce_sum(const torch::Tensor& tensor) {
  if (!impl_) return;
  std::vector<at::Tensor> t{tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = impl_->timeout;
  std::lock_guard<std::mutex> lock(impl_->pending_mutex);
  impl_->pending.push_back(submit("all-reduce", [&] { return impl_->group->allreduce(t, opts); }));
}

void DataParallel::wait_pending() {
  if (!impl_) return;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  {
    std::lock_guard<std::mutex> lock(impl_->pending_mutex);
    works.swap(impl_->pending);
  }
  for (auto& w : works) wait(w, impl_->timeout, "all-reduce");
}

void DataParallel::all_reduce_max(const torch::Tensor& tensor) {
  if (!impl_) return;
  std::vector<at::Tensor> t{tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::MAX;
  opts.timeout = impl_->timeout;
  wait(submit("all-reduce", [&] { return impl_->group->allreduce(t, opts); }), impl_->timeout, "all-reduce");
}

}  // namespace qa
