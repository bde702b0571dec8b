#include "qa/data/jsonl_reader.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "qa/util/error.hpp"

namespace qa {
namespace {

std::string write_temp(const std::string& content) {
  static int n = 0;
  auto path = std::filesystem::temp_directory_path() /
              ("qa-jsonl-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".jsonl");
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

// The error message for reading `content`, which must fail.
std::string read_error(const std::string& content) {
  auto path = write_temp(content);
  try {
    read_qa_jsonl(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path, 0), 0u) << "message must start with the file name: " << msg;
    std::filesystem::remove(path);
    return msg.substr(path.size());
  }
  ADD_FAILURE() << "no error for: " << content;
  return "";
}

}  // namespace

TEST(JsonlReader, ReadsFlatAndSquadRecordsAndSkipsEmptyLines) {
  auto path = write_temp(
      R"({"question": "Q1?", "context": "C1", "answer": "A1"})"
      "\n\n   \r\n"
      R"({"id": "x7", "question": "Q2?", "context": "C2", "answers": {"text": ["A2", "a2b"], "answer_start": [0, 1]}, "title": "t"})"
      "\r\n" R"({"id": 12, "question": "Q3?", "context": "C3", "answer": "A3"})");
  auto ex = read_qa_jsonl(path);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].question, "Q1?");
  EXPECT_EQ(ex[0].answers, std::vector<std::string>{"A1"});
  EXPECT_EQ(ex[0].id, "");
  EXPECT_EQ(ex[1].id, "x7");
  EXPECT_EQ(ex[1].answers, (std::vector<std::string>{"A2", "a2b"}));
  EXPECT_EQ(ex[1].line, 4);
  EXPECT_EQ(ex[2].id, "12");
  std::filesystem::remove(path);
}

TEST(JsonlReader, EveryBadInputIsAOneLineErrorWithFileAndLine) {
  const std::string ok = R"({"question": "q", "context": "c", "answer": "a"})";
  struct Case {
    std::string content, expected;
  } cases[] = {
      {ok + "\n{\"question\": \"q\",", ":2: invalid JSON"},
      {ok + "\n[1, 2]", ":2: expected a JSON object, got an array"},
      {R"({"context": "c", "answer": "a"})", ":1: missing field 'question'"},
      {R"({"question": 5, "context": "c", "answer": "a"})", ":1: field 'question' must be a string, got an integer"},
      {R"({"question": "q", "context": null, "answer": "a"})", ":1: field 'context' must be a string, got null"},
      {R"({"question": "q", "context": "c"})", ":1: missing field 'answer'"},
      {R"({"question": "  ", "context": "c", "answer": "a"})", ":1: field 'question' is empty"},
      {R"({"question": "q", "context": "c", "answer": ["a"]})", ":1: field 'answer' must be a string, got an array"},
      {R"({"question": "q", "context": "c", "answers": {"text": []}})", ":1: field 'answers.text' is empty"},
      {R"({"question": "q", "context": "c", "answers": {"text": [3]}})", ":1: answers.text[0] must be a string"},
      {R"({"question": "q", "context": "c", "answers": ["a"]})", ":1: field 'answers' must be an object"},
      {R"({"question": "q", "context": "c", "answers": {"answer_start": [0]}})", ":1: missing field 'answers.text'"},
      {R"({"question": "q", "context": "c", "answers": {"text": ["a"], "answer_start": [0, 1]}})",
       ":1: 'answers.answer_start' has 2 entries"},
      {R"({"question": "q", "context": "c", "answers": {"text": ["a"], "answer_start": [-1]}})",
       ":1: answers.answer_start[0] must be a non-negative integer"},
      {R"({"question": "q", "context": "c", "answer": "a", "answers": {"text": ["a"]}})", ":1: has both"},
      {R"({"id": [1], "question": "q", "context": "c", "answer": "a"})", ":1: field 'id' must be a string or an integer"},
      {ok + "\n" + "{\"question\": \"q\xff\", \"context\": \"c\", \"answer\": \"a\"}", ":2: invalid UTF-8 at byte 16"},
      {"", ": the file is empty"},
      {"\n  \n\n", ": the file has no records"},
  };
  for (const auto& c : cases) {
    std::string msg = read_error(c.content);
    EXPECT_EQ(msg.rfind(c.expected, 0), 0u) << "got '" << msg << "', expected it to start with '" << c.expected << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(JsonlReader, OverlongLineIsReportedNotParsed) {
  std::string line = "{\"question\": \"" + std::string(kMaxJsonlLineBytes, 'x') + "\", \"context\": \"c\", \"answer\": \"a\"}";
  std::string msg = read_error(line);
  EXPECT_NE(msg.find(":1: line is"), std::string::npos) << msg.substr(0, 200);
  EXPECT_NE(msg.find("longer than the limit"), std::string::npos);
}

TEST(JsonlReader, ParsesContentInMemoryLikeTheFileReader) {
  auto ex = parse_qa_jsonl("\n" R"({"question": "q", "context": "c", "answer": "a"})" "\n \n", "mem.jsonl");
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].line, 2);
  try {
    parse_qa_jsonl("\n\n", "mem.jsonl");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "mem.jsonl: the file has no records (only empty lines)");
  }
  EXPECT_THROW(parse_qa_jsonl("", "mem.jsonl"), Error);
}

// Found by tests/fuzz (corpus/jsonl_record_fuzz/crash-number-overflow-1e400): a number too large for a
// double makes nlohmann throw out_of_range (not parse_error), which escaped as a non-qa::Error.
TEST(JsonlReader, NumberTooLargeForADoubleIsAnInvalidJsonError) {
  const std::string ok = R"({"question": "q", "context": "c", "answer": "a"})";
  std::string msg = read_error(ok + "\n" + R"({"question": "q", "context": "c", "answer": "a", "x": -1e400})");
  EXPECT_EQ(msg.rfind(":2: invalid JSON: number overflow", 0), 0u) << msg;
}

// Found by tests/fuzz (corpus/jsonl_record_fuzz/crash-deep-answer-start-dump): the error message used to
// dump() the bad answer_start entry, which recurses once per nesting level and overflowed the stack.
TEST(JsonlReader, DeeplyNestedAnswerStartIsAnErrorNotAStackOverflow) {
  const std::size_t depth = 200000;
  std::string line = R"({"question": "q", "context": "c", "answers": {"text": ["a"], "answer_start": [)" +
                     std::string(depth, '[') + std::string(depth, ']') + "]}}";
  std::string msg = read_error(line);
  EXPECT_EQ(msg, ":1: answers.answer_start[0] must be a non-negative integer, got an array");
  msg = read_error(R"({"question": "q", "context": "c", "answers": {"text": ["a"], "answer_start": ["7"]}})");
  EXPECT_EQ(msg, ":1: answers.answer_start[0] must be a non-negative integer, got \"7\"");
}

TEST(JsonlReader, MissingFileIsAnError) {
  EXPECT_THROW(read_qa_jsonl("/nonexistent/file.jsonl"), Error);
}

}  // namespace qa
