// libFuzzer target: the JSONL reader on untrusted bytes, one record (parse_qa_record) and a whole
// file's content (parse_qa_jsonl, which read_qa_jsonl uses). qa::Error is the designed outcome for bad
// input; anything else escaping, a crash, a sanitizer report, a timeout or running out of memory is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "qa/data/jsonl_reader.hpp"
#include "qa/util/error.hpp"

namespace {

bool is_blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// What a successful parse promises (the checks parse_qa_record makes): fail loudly when it breaks.
void check(const qa::QAExample& ex, long line) {
  bool ok = ex.line == line && !is_blank(ex.question) && !is_blank(ex.context) && !ex.answers.empty();
  for (const auto& a : ex.answers) ok = ok && !is_blank(a);
  if (!ok) {
    std::fprintf(stderr, "jsonl_record_fuzz: accepted a record that breaks the reader's guarantees\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // One record: the whole input as one line (newlines inside are JSON whitespace).
  try {
    check(qa::parse_qa_record(bytes, "fuzz.jsonl", 7), 7);
  } catch (const qa::Error&) {
  }
  // A whole file: lines, empty lines, line numbers, the empty-file errors.
  try {
    auto examples = qa::parse_qa_jsonl(bytes, "fuzz.jsonl");
    if (examples.empty()) {
      std::fprintf(stderr, "jsonl_record_fuzz: parse_qa_jsonl returned no records without an error\n");
      std::abort();
    }
    long prev = 0;
    for (const auto& ex : examples) {
      if (ex.line <= prev) std::abort();
      check(ex, ex.line);
      prev = ex.line;
    }
  } catch (const qa::Error&) {
  }
  return 0;
}
