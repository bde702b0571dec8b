#include "qa/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "qa/io/safetensors_header.hpp"
#include "qa/util/error.hpp"

namespace qa {
namespace {

torch::ScalarType to_torch_dtype(const std::string& dtype, const std::string& source, const std::string& name) {
  if (dtype == "F32") return torch::kFloat;
  if (dtype == "F16") return torch::kHalf;
  if (dtype == "BF16") return torch::kBFloat16;
  if (dtype == "F64") return torch::kDouble;
  throw_bad_file(source, "tensor '" + name + "': unsupported dtype " + dtype + " (supported: F32, BF16, F16, F64)");
}

std::string to_st_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "F32";
    case torch::kHalf: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kDouble: return "F64";
    case torch::kLong: return "I64";
    case torch::kInt: return "I32";
    default: throw Error(std::string("safetensors: cannot store dtype ") + c10::toString(t));
  }
}

// A read-only memory map that unmaps itself.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_bad_file(path, std::string("cannot open model weights: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw_bad_file(path, "not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data_ == MAP_FAILED) {
        data_ = nullptr;
        ::close(fd);
        throw_bad_file(path, std::string("cannot map model weights: ") + std::strerror(errno));
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(data_); }
  std::size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace

void visit_safetensors(const std::string& path,
                       const std::function<void(const std::string& name, const torch::Tensor& tensor)>& fn) {
  MappedFile file(path);
  static const uint8_t kEmpty[8] = {};
  const uint8_t* base = file.size() ? file.data() : kEmpty;
  SafetensorsHeader header = parse_safetensors_header(base, file.size(), file.size(), path);
  for (const auto& e : header.tensors) to_torch_dtype(e.dtype, path, e.name);  // every dtype checked before any use
  for (const auto& e : header.tensors) {
    void* ptr = const_cast<uint8_t*>(base + header.data_start + e.begin);
    fn(e.name, torch::from_blob(ptr, e.shape, torch::TensorOptions().dtype(to_torch_dtype(e.dtype, path, e.name))));
  }
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path, torch::ScalarType dtype) {
  std::map<std::string, torch::Tensor> out;
  // The mapped bytes are only borrowed: clone (or convert) copies them into the tensor's own storage.
  visit_safetensors(path, [&](const std::string& name, const torch::Tensor& view) {
    out.emplace(name, view.scalar_type() == dtype ? view.clone() : view.to(dtype));
  });
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  std::vector<torch::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    SafetensorsEntry e;
    e.name = name;
    e.dtype = to_st_dtype(c.scalar_type());
    e.shape = c.sizes().vec();
    e.begin = offset;
    e.end = offset + static_cast<uint64_t>(c.nbytes());
    offset = e.end;
    entries.push_back(e);
    cpu.push_back(c);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot write: " + std::strerror(errno));
  const std::string header = build_safetensors_header(entries, metadata);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& c : cpu) out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  out.flush();
  if (!out) throw Error(path + ": cannot write: " + std::strerror(errno));
}

}  // namespace qa
