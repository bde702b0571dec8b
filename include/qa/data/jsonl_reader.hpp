// Reads question-answering JSONL: flat {"question","context","answer"} records or SQuAD /
// HF-datasets {"id","question","context","answers":{"text":[...],"answer_start":[...]}} records.
// Every malformed line is an error "FILE:LINE: what is wrong"; nothing is skipped silently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "qa/data/qa_example.hpp"

namespace qa {

// Longest accepted line; longer lines are reported instead of being parsed.
inline constexpr std::size_t kMaxJsonlLineBytes = 16u << 20;

// Parses one non-empty line; throws qa::Error "FILE:LINE: ..." (exit code kBadInput).
QAExample parse_qa_record(std::string_view line, const std::string& file, long line_number);

// Parses the bytes of a whole JSONL file (lines end at '\n'; empty lines allowed); `file` names it in
// errors. Empty content or content of only empty lines is an error.
std::vector<QAExample> parse_qa_jsonl(std::string_view content, const std::string& file);

// Reads a whole file and parses it with parse_qa_jsonl.
std::vector<QAExample> read_qa_jsonl(const std::string& path);

}  // namespace qa
