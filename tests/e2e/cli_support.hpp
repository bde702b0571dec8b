// End-to-end test support: run the real qa-train binary in a work folder and read what it wrote.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "qa/util/fs.hpp"

namespace qa::e2e {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct RunResult {
  int code;
  std::string out, err;
};

// Runs qa-train with `args` (a shell fragment) and environment assignments `env` ("A=1 B=2"),
// capturing stdout and stderr. A process killed by signal S reports code 128 + S (the shell's way).
inline RunResult qa_train(const std::string& args, const fs::path& work, const std::string& env = "") {
  const auto out = work / "stdout.txt", err = work / "stderr.txt";
  std::string cmd = "cd '" + work.string() + "' && " + (env.empty() ? "" : "env " + env + " ") + "'" QA_TRAIN_BIN "' " +
                    args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  int status = std::system(cmd.c_str());
  std::ifstream out_in(out), err_in(err);
  std::stringstream out_text, err_text;
  out_text << out_in.rdbuf();
  err_text << err_in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out_text.str(), err_text.str()};
}

inline std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

inline std::string last_line(const std::string& s) {
  auto t = s.substr(0, s.find_last_not_of('\n') + 1);
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

// Copies the first n lines; a missing or short source (e.g. demo data not committed) fails loudly here
// instead of surfacing later as an "empty file" error from qa-train.
inline void head_lines(const fs::path& from, const fs::path& to, int n) {
  std::ifstream in(from);
  ASSERT_TRUE(in) << "cannot read " << from;
  std::ofstream out(to);
  std::string line;
  int copied = 0;
  for (; copied < n && std::getline(in, line); ++copied) out << line << "\n";
  ASSERT_EQ(copied, n) << from << " has fewer than " << n << " lines";
}

// A fresh work folder /tmp/<prefix>-<pid> holding the first 240 training and 40 validation lines of
// the demo data and tests/e2e/tiny.json: what every end-to-end suite trains on.
inline fs::path make_work_dir(const std::string& prefix) {
  const fs::path work = fs::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()));
  qa::remove_tree(work);
  fs::create_directories(work);
  head_lines(fs::path(QA_SOURCE_DIR) / "data/train.jsonl", work / "train.jsonl", 240);
  head_lines(fs::path(QA_SOURCE_DIR) / "data/validation.jsonl", work / "validation.jsonl", 40);
  fs::copy_file(fs::path(QA_SOURCE_DIR) / "tests/e2e/tiny.json", work / "tiny.json");
  return work;
}

// A whole text file ("" when missing), and the integer a shell wrote into one (-1 when missing).
inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline int read_code(const fs::path& p) {
  std::ifstream in(p);
  int code = -1;
  in >> code;
  return code;
}

}  // namespace qa::e2e
