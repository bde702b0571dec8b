// One question-answering example as read from a JSONL file.
#pragma once

#include <string>
#include <vector>

namespace qa {

struct QAExample {
  std::string id;                    // "" when the record has none
  std::string question;
  std::string context;
  std::vector<std::string> answers;  // answers[0] is the training target; all count for EM/F1
  long line = 0;                     // 1-based line in its file, for messages
};

}  // namespace qa
