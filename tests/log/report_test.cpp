#include "qa/log/report.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("qa-report-" + name + "-" + std::to_string(::getpid()));
  qa::remove_tree(d);
  fs::create_directories(d / "logs");
  return d;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// Drawn series: <path class="series" d="M<x> <y>..." with at least one more drawing command.
std::size_t drawn_series(const std::string& html) {
  static const std::regex re(R"re(<path class="series" d="M[0-9.]+ [0-9.]+[LHVMZ ][^"]*")re");
  return static_cast<std::size_t>(std::distance(std::sregex_iterator(html.begin(), html.end(), re), std::sregex_iterator()));
}

// A synthetic run: train events every 5 steps (one with a null grad norm), an evaluation every 20,
// and a second run resumed at step 20 (elapsed time restarts at 0).
void write_synthetic_run(const fs::path& out) {
  std::ofstream m(out / "logs/metrics.jsonl");
  double elapsed = 0;
  for (int step = 5; step <= 40; step += 5) {
    elapsed = step == 25 ? 0.5 : elapsed + 0.5;
    json t = {{"event", "train"}, {"step", step}, {"epoch", step / 20}, {"loss", 6.0 - step * 0.1},
              {"lr", step <= 5 ? 0.003 * step / 5 : 0.003 * (40 - step) / 35}, {"grad_norm", 1.0 + 1.0 / step},
              {"tokens_per_sec", 50000 + 100 * step}, {"padding_fraction", 0.05}, {"elapsed_sec", elapsed}};
    if (step == 15) t["grad_norm"] = nullptr;
    m << t.dump() << "\n";
    if (step % 20 == 0) {
      m << json{{"event", "eval"}, {"step", step}, {"epoch", step / 20}, {"loss", 6.0 - step * 0.1}, {"lr", 0.001},
                {"eval_loss", 5.0 - step * 0.05}, {"exact_match", step * 0.5}, {"f1", step * 0.8},
                {"eval_examples", 16}, {"eval_seconds", 0.1}, {"elapsed_sec", elapsed + 0.1}}
               .dump()
        << "\n";
    }
  }
  m << "{\"event\": \"train\", \"st";  // torn last line of a killed run: skipped
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Report, RendersEveryPlotFromASyntheticRun) {
  const auto out = fresh_dir("full");
  write_synthetic_run(out);
  std::ofstream(out / "logs/config.json") << json{{"train", {{"batch_size", 8}, {"learning_rate", 0.003}}},
                                                  {"data", {{"train", "train.jsonl"}}}}.dump(2);
  std::ofstream(out / "logs/data_stats.json")
      << json{{"train", {{"examples", 240}, {"truncated_sources", 3}, {"truncated_targets", 1},
                         {"answer_lengths", {0, 0, 40, 120, 50, 30}}}},
              {"validation", {{"examples", 40}, {"truncated_sources", 0}, {"truncated_targets", 0},
                              {"answer_lengths", {0, 0, 10, 20, 10}}}}}.dump();
  std::ofstream(out / "logs/predictions.jsonl")
      << json{{"step", 40}, {"question", "Is 1 < 2 & \"x\" > 'y'?"}, {"prediction", "<script>alert(1)</script>"},
              {"answers", {"yes", "<b>true</b>"}}}.dump() << "\n"
      << json{{"step", 40}, {"question", "Capital of France?"}, {"prediction", "Paris"}, {"answers", {"paris"}}}.dump()
      << "\n";

  const std::string path = write_report(out.string());
  EXPECT_EQ(path, (out / "logs/report.html").string());
  const std::string html = slurp(path);
  ASSERT_FALSE(html.empty());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);

  // 6 training charts + 2 answer-length histograms; every series drawn except the missing peak RSS.
  EXPECT_EQ(count(html, "<svg"), 8u);
  EXPECT_EQ(count(html, "</svg>"), 8u);
  // loss (train, eval), EM and F1, lr, throughput, grad norm, 2 histograms.
  EXPECT_EQ(count(html, "<path class=\"series\""), 9u);
  EXPECT_EQ(drawn_series(html), 9u) << html;
  EXPECT_EQ(count(html, "not recorded"), 1u);  // the memory chart
  for (const char* title : {"Loss", "Exact match and F1", "Learning rate", "Throughput", "Gradient norm",
                            "Answer lengths: train", "Answer lengths: validation"}) {
    EXPECT_NE(html.find(std::string("class=\"title\" x=\"70\" y=\"22\">") + title + "<"), std::string::npos) << title;
  }
  // Axis labels and ticks.
  EXPECT_NE(html.find(">step</text>"), std::string::npos);
  EXPECT_NE(html.find("class=\"tick x\""), std::string::npos);
  EXPECT_NE(html.find("class=\"tick y\""), std::string::npos);

  // Self-contained: nothing to fetch, no script.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);

  // Predictions escaped.
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("Is 1 &lt; 2 &amp; &quot;x&quot; &gt; &#39;y&#39;?"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;true&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"hit\">Paris</td>"), std::string::npos);
  EXPECT_NE(html.find("From the evaluation at step 40."), std::string::npos);

  // Summary, data statistics, config.
  EXPECT_NE(html.find("best exact match</td><td class=\"num\">20.00 (step 40)"), std::string::npos);
  EXPECT_NE(html.find("(2 runs)"), std::string::npos);  // the resumed run was noticed
  EXPECT_NE(html.find("<th>truncated sources</th>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">240</td>"), std::string::npos);
  EXPECT_NE(html.find("mean 5.0 %"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"k\">train.batch_size</span><span class=\"v\">8</span>"), std::string::npos);
  qa::remove_tree(out);
}

TEST(Report, MissingOptionalFilesSayNotRecorded) {
  const auto out = fresh_dir("minimal");
  std::ofstream(out / "logs/metrics.jsonl") << json{{"event", "train"}, {"step", 1}, {"loss", 2.0}, {"lr", 0.1}}.dump()
                                            << "\n";
  const std::string html = render_report(read_report_inputs(out.string()));
  EXPECT_EQ(count(html, "<svg"), 6u);
  // One point each for loss and lr: drawn as a path and a dot.
  EXPECT_EQ(count(html, "<path class=\"series\" d=\"M"), 2u);
  EXPECT_EQ(count(html, "<circle class=\"point\""), 2u);
  EXPECT_NE(html.find("Data statistics: not recorded"), std::string::npos);
  EXPECT_NE(html.find("<h2>Validation predictions</h2>\n<p class=\"na\">not recorded</p>"), std::string::npos);
  EXPECT_NE(html.find("<h2>Effective config</h2>\n<p class=\"na\">not recorded</p>"), std::string::npos);
  qa::remove_tree(out);
}

TEST(Report, ErrorsNameTheFileAndLine) {
  const auto out = fresh_dir("errors");
  try {
    read_report_inputs(out.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((out / "logs/metrics.jsonl").string() + ": not found"), std::string::npos)
        << e.what();
  }
  std::ofstream(out / "logs/metrics.jsonl") << "{\"event\": \"train\", \"step\": 1}\n{oops\n{\"step\": 2}\n";
  try {
    read_report_inputs(out.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((out / "logs/metrics.jsonl").string() + ":2: not valid JSON"), std::string::npos)
        << e.what();
  }
  std::ofstream(out / "logs/metrics.jsonl") << "{\"event\": \"train\", \"step\": 1}\n";
  std::ofstream(out / "logs/data_stats.json") << "[1, 2]";
  try {
    read_report_inputs(out.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((out / "logs/data_stats.json").string() + ": expected a JSON object"),
              std::string::npos)
        << e.what();
  }
  qa::remove_tree(out);
}

TEST(Report, LineChartHandlesGapsFlatAndTinyValues) {
  // A NaN splits the line into two subpaths; a flat series still gets a y range; tiny values get readable ticks.
  const std::string chart = svg_line_chart({{"a", {{0, 1e-5}, {1, NAN}, {2, 3e-5}, {3, 4e-5}}, false},
                                            {"flat", {{0, 2e-5}, {3, 2e-5}}, false}},
                                           "T <1>", "x", "y");
  EXPECT_EQ(count(chart, "<path class=\"series\" d=\"M"), 2u);
  EXPECT_EQ(count(chart, " M"), 1u);  // the gap
  EXPECT_NE(chart.find("T &lt;1&gt;"), std::string::npos);
  EXPECT_NE(chart.find(">4e-05</text>"), std::string::npos) << chart;
  EXPECT_EQ(chart.find("nan"), std::string::npos);
  EXPECT_EQ(chart.find("inf"), std::string::npos);
  const std::string empty = svg_line_chart({{"a", {{0, NAN}}, false}}, "E", "x", "y");
  EXPECT_NE(empty.find("not recorded"), std::string::npos);
  EXPECT_EQ(count(empty, "class=\"series\""), 0u);
  EXPECT_NE(svg_histogram({0, 0}, "H", "x", "y").find("not recorded"), std::string::npos);
  EXPECT_EQ(html_escape("a&b<c>\"'"), "a&amp;b&lt;c&gt;&quot;&#39;");
}

// The page really renders: scripts/render-report.sh screenshots it in headless Chromium and checks that the
// PNG holds pixels in the series' colours. Skipped where Debian's chromium is not installed.
TEST(Report, RendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium is not installed (apt-get install -y chromium): render check skipped";
  }
  const auto out = fresh_dir("chromium");
  write_synthetic_run(out);
  write_report(out.string());
  const auto script = fs::path(QA_FIXTURES).parent_path().parent_path() / "scripts" / "render-report.sh";
  const auto png = out / "report.png";
  const std::string cmd = "WINDOW_SIZE=1000,1600 '" + script.string() + "' '" + out.string() + "' '" + png.string() +
                          "' >'" + (out / "render.log").string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(out / "render.log");
  EXPECT_GT(fs::exists(png) ? fs::file_size(png) : 0, 20000u) << slurp(out / "render.log");
  qa::remove_tree(out);
}

}  // namespace qa
