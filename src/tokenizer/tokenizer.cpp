#include "qa/tokenizer/tokenizer.hpp"

#include <dlfcn.h>

#include <cctype>
#include <mutex>

#include "qa/tokenizer/spm_plugin_abi.h"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"
#include "qa/util/random.hpp"

namespace qa {
namespace {

constexpr const char* kPluginName = "libqa_spm.so";

struct Plugin {
  decltype(&qa_spm_abi_version) abi_version;
  decltype(&qa_spm_load) load;
  decltype(&qa_spm_free) free;
  decltype(&qa_spm_piece_size) piece_size;
  decltype(&qa_spm_encode) encode;
  decltype(&qa_spm_decode) decode;
  decltype(&qa_spm_train) train;
  decltype(&qa_spm_free_buffer) free_buffer;
};

template <class F>
void bind(void* handle, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(::dlsym(handle, name));
  if (!fn) throw Error(path + ": the SentencePiece plugin lacks symbol " + std::string(name));
}

// Loaded once per process and never unloaded (SentencePiece keeps static state).
const Plugin& plugin() {
  static std::once_flag once;
  static Plugin p;
  std::call_once(once, [] {
    const std::string path = Tokenizer::plugin_path();
    // RTLD_DEEPBIND: the plugin resolves protobuf inside libsentencepiece, never LibTorch's copy.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      const char* why = ::dlerror();
      throw Error(path + ": cannot load the SentencePiece plugin (" + std::string(why ? why : "unknown error") +
                  "); it must be installed next to the qa-train executable or named by QA_TRAIN_SPM_PLUGIN");
    }
    bind(handle, "qa_spm_abi_version", p.abi_version, path);
    bind(handle, "qa_spm_load", p.load, path);
    bind(handle, "qa_spm_free", p.free, path);
    bind(handle, "qa_spm_piece_size", p.piece_size, path);
    bind(handle, "qa_spm_encode", p.encode, path);
    bind(handle, "qa_spm_decode", p.decode, path);
    bind(handle, "qa_spm_train", p.train, path);
    bind(handle, "qa_spm_free_buffer", p.free_buffer, path);
    if (p.abi_version() != QA_SPM_ABI_VERSION) {
      throw Error(path + ": SentencePiece plugin ABI " + std::to_string(p.abi_version()) + ", expected " +
                  std::to_string(QA_SPM_ABI_VERSION) + " (rebuild qa-train)");
    }
  });
  return p;
}

}  // namespace

struct Tokenizer::Model {
  qa_spm* handle = nullptr;
  ~Model() {
    if (handle) plugin().free(handle);
  }
};

std::string Tokenizer::plugin_path() {
  if (const char* env = std::getenv("QA_TRAIN_SPM_PLUGIN"); env && *env) return env;
  const std::string dir = executable_dir();
  for (const std::string& candidate : {dir + "/" + kPluginName, dir + "/../lib/qa-train/" + kPluginName}) {
    if (file_exists(candidate)) return candidate;
  }
  return dir + "/" + kPluginName;
}

Tokenizer::Tokenizer(std::shared_ptr<Model> model, std::string bytes) : model_(std::move(model)), bytes_(std::move(bytes)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  return from_bytes(read_file(path, "tokenizer model"), path);
}

Tokenizer Tokenizer::from_bytes(std::string bytes, const std::string& source) {
  const Plugin& p = plugin();
  if (bytes.empty()) throw_bad_file(source, "the tokenizer model is empty");
  char err[512];
  auto model = std::make_shared<Model>();
  if (p.load(bytes.data(), bytes.size(), &model->handle, err, sizeof err) != 0) throw_bad_file(source, err);
  return Tokenizer(std::move(model), std::move(bytes));
}

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options) {
  const Plugin& p = plugin();
  if (sentences.empty()) throw Error("cannot train a tokenizer on no text");
  // Pieces never span whitespace, so word order carries no information for the unigram model, but
  // SentencePiece's seed-piece search does see it: on templated text (the same phrases in every
  // line) it then misses frequent words, and the result needs ~40% more pieces per sentence. The
  // words of each sentence are therefore shuffled (deterministically) before training.
  std::vector<std::string> shuffled;
  shuffled.reserve(sentences.size());
  SplitMix64 rng(options.seed);
  for (const auto& s : sentences) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      std::size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i) words.emplace_back(s.data() + i, j - i);
      i = j;
    }
    shuffle(words, rng);
    std::string line;
    for (const auto& w : words) {
      if (!line.empty()) line += ' ';
      line += w;
    }
    shuffled.push_back(std::move(line));
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(shuffled.size());
  lens.reserve(shuffled.size());
  for (const auto& s : shuffled) {
    ptrs.push_back(s.data());
    lens.push_back(s.size());
  }
  // T5's conventions: pad 0, eos 1, unk 2, no bos. hard_vocab_limit=false lets a small corpus
  // produce fewer pieces than asked instead of failing.
  std::string args = "--model_type=unigram --vocab_size=" + std::to_string(options.vocab_size) +
                     " --hard_vocab_limit=false --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1" +
                     " --pad_piece=<pad> --eos_piece=</s> --unk_piece=<unk>" +
                     " --character_coverage=" + std::to_string(options.character_coverage) +
                     " --num_threads=" + std::to_string(options.num_threads) +
                     " --input_sentence_size=0 --max_sentence_length=65536";
  char err[1024];
  char* out = nullptr;
  size_t size = 0;
  if (p.train(ptrs.data(), lens.data(), ptrs.size(), args.c_str(), options.seed, &out, &size, err, sizeof err) != 0) {
    throw Error(std::string("training the tokenizer failed: ") + err);
  }
  std::string bytes(out, size);
  p.free_buffer(out);
  return from_bytes(std::move(bytes), "<trained tokenizer>");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const Plugin& p = plugin();
  std::vector<int> ids(text.size() * 2 + 8);
  size_t n = 0;
  char err[512];
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (p.encode(model_->handle, text.data(), text.size(), ids.data(), ids.size(), &n, err, sizeof err) != 0) {
      throw Error(std::string("tokenizer: cannot encode text: ") + err, ExitCode::kBadInput);
    }
    if (n <= ids.size()) break;
    ids.resize(n);
  }
  ids.resize(n);
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Plugin& p = plugin();
  std::vector<int> in(ids.begin(), ids.end());
  std::string out(ids.size() * 16 + 16, '\0');
  size_t len = 0;
  char err[512];
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (p.decode(model_->handle, in.data(), in.size(), out.data(), out.size(), &len, err, sizeof err) != 0) {
      throw Error(std::string("tokenizer: cannot decode ids: ") + err);
    }
    if (len <= out.size()) break;
    out.resize(len);
  }
  out.resize(len);
  return out;
}

int64_t Tokenizer::vocab_size() const { return plugin().piece_size(model_->handle); }

}  // namespace qa
