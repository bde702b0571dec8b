#include "qa/data/jsonl_reader.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"
#include "qa/util/json_text.hpp"
#include "qa/util/utf8.hpp"

namespace qa {
namespace {

using json = nlohmann::json;

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

QAExample parse_qa_record(std::string_view line, const std::string& file, long line_number) {
  auto bad = [&](const std::string& what) { throw_at_line(file, line_number, what); };
  if (line.size() > kMaxJsonlLineBytes) {
    bad("line is " + std::to_string(line.size()) + " bytes, longer than the limit of " +
        std::to_string(kMaxJsonlLineBytes) + " bytes");
  }
  std::size_t bad_at = 0;
  if (!is_valid_utf8(line, &bad_at)) bad("invalid UTF-8 at byte " + std::to_string(bad_at + 1) + " of the line");
  json rec;
  try {
    rec = json::parse(line.begin(), line.end());
  } catch (const json::parse_error& e) {
    bad("invalid JSON: " + short_parse_error(e));
  } catch (const json::exception& e) {
    // The parser's other error: out_of_range.406, a number too large for a double (1e400).
    std::string what = e.what();
    auto tag_end = what.find("] ");
    bad("invalid JSON: " + (tag_end == std::string::npos ? what : what.substr(tag_end + 2)));
  }
  if (!rec.is_object()) bad("expected a JSON object, got " + json_type_name(rec));

  auto string_field = [&](const char* name) -> std::string {
    auto it = rec.find(name);
    if (it == rec.end()) bad(std::string("missing field '") + name + "'");
    if (!it->is_string()) bad(std::string("field '") + name + "' must be a string, got " + json_type_name(*it));
    std::string s = it->get<std::string>();
    if (s.find_first_not_of(" \t\r\n") == std::string::npos) bad(std::string("field '") + name + "' is empty");
    return s;
  };

  QAExample ex;
  ex.line = line_number;
  ex.question = string_field("question");
  ex.context = string_field("context");
  if (auto it = rec.find("id"); it != rec.end() && !it->is_null()) {
    if (it->is_string()) {
      ex.id = it->get<std::string>();
    } else if (it->is_number_integer()) {
      ex.id = it->dump();
    } else {
      bad("field 'id' must be a string or an integer, got " + json_type_name(*it));
    }
  }
  const bool has_flat = rec.contains("answer");
  const bool has_squad = rec.contains("answers");
  if (has_flat && has_squad) bad("has both 'answer' and 'answers': use one");
  if (!has_flat && !has_squad) bad("missing field 'answer' (or SQuAD-style 'answers')");
  if (has_flat) {
    ex.answers.push_back(string_field("answer"));
  } else {
    const json& answers = rec.at("answers");
    if (!answers.is_object()) bad("field 'answers' must be an object {\"text\": [...], \"answer_start\": [...]}, got " + json_type_name(answers));
    auto text = answers.find("text");
    if (text == answers.end()) bad("missing field 'answers.text'");
    if (!text->is_array()) bad("field 'answers.text' must be an array of strings, got " + json_type_name(*text));
    if (text->empty()) bad("field 'answers.text' is empty (unanswerable questions are not supported)");
    for (std::size_t i = 0; i < text->size(); ++i) {
      const json& t = (*text)[i];
      if (!t.is_string()) bad("answers.text[" + std::to_string(i) + "] must be a string, got " + json_type_name(t));
      if (t.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) {
        bad("answers.text[" + std::to_string(i) + "] is empty");
      }
      ex.answers.push_back(t.get<std::string>());
    }
    if (auto start = answers.find("answer_start"); start != answers.end()) {
      if (!start->is_array()) bad("field 'answers.answer_start' must be an array of integers, got " + json_type_name(*start));
      if (start->size() != text->size()) {
        bad("'answers.answer_start' has " + std::to_string(start->size()) + " entries but 'answers.text' has " +
            std::to_string(text->size()));
      }
      for (std::size_t i = 0; i < start->size(); ++i) {
        const json& s = (*start)[i];
        if (!s.is_number_integer() || s.get<long long>() < 0) {
          // Only a scalar is shown: dump() recurses once per nesting level of an array or object,
          // and a deeply nested one ([[[[...]]]]) overflows the stack.
          bad("answers.answer_start[" + std::to_string(i) + "] must be a non-negative integer, got " +
              (s.is_primitive() ? s.dump() : json_type_name(s)));
        }
      }
    }
  }
  return ex;
}

std::vector<QAExample> parse_qa_jsonl(std::string_view content, const std::string& file) {
  std::vector<QAExample> out;
  long number = 0;
  std::size_t pos = 0;
  // Lines as std::getline splits them: a final '\n' does not start another (empty) line.
  while (pos < content.size()) {
    std::size_t nl = content.find('\n', pos);
    if (nl == std::string_view::npos) nl = content.size();
    std::string_view line = content.substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    if (is_blank(line)) continue;
    out.push_back(parse_qa_record(line, file, number));
  }
  if (out.empty()) throw_bad_file(file, number == 0 ? "the file is empty" : "the file has no records (only empty lines)");
  return out;
}

std::vector<QAExample> read_qa_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_file(path, "cannot open data file");
  std::ostringstream content;
  // `content << rdbuf` reports a read error (even after some bytes) as failbit on `content`.
  if (in.peek() != std::ifstream::traits_type::eof() && !(content << in.rdbuf())) throw_bad_file(path, "read error");
  if (in.bad()) throw_bad_file(path, "read error");
  return parse_qa_jsonl(content.str(), path);
}

}  // namespace qa
