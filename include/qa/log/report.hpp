// logs/report.html: one self-contained page (inline SVG and CSS, no script, nothing fetched) with the
// training curves, the effective config, data statistics and a few validation predictions of a run.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace qa {

// One line (or bar) series of a chart. Points with a non-finite x or y break the line there.
struct ChartSeries {
  std::string name;                               // legend text
  std::vector<std::pair<double, double>> points;  // (x, y)
  bool markers = false;                           // a dot on every point (sparse series such as evaluations)
};

// An SVG line chart (about 560 x 300) with axes, ticks, grid, axis labels and a legend. Every series
// with a point is one `<path class="series" d="M...">`; a chart with no points at all says "not recorded".
// `y_from_zero` keeps 0 on the y axis.
std::string svg_line_chart(const std::vector<ChartSeries>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label, bool y_from_zero = false);

// An SVG bar chart of counts[i] at x = i (a histogram), drawn as one `<path class="series">`; all-zero or
// empty counts say "not recorded".
std::string svg_histogram(const std::vector<double>& counts, const std::string& title, const std::string& x_label,
                          const std::string& y_label);

// &, <, >, " and ' as character references.
std::string html_escape(std::string_view s);

struct ReportInputs {
  std::string output_dir;                   // named in the page
  std::vector<nlohmann::json> metrics;      // logs/metrics.jsonl events, in file order
  nlohmann::json config;                    // logs/config.json; null: "not recorded"
  nlohmann::json data_stats;                // logs/data_stats.json; null: "not recorded"
  std::vector<nlohmann::json> predictions;  // logs/predictions.jsonl lines
  bool predictions_recorded = false;
  std::string generated_at;                 // shown when not empty
};

// Reads <output_dir>/logs/metrics.jsonl (required) and, when present, config.json, data_stats.json and
// predictions.jsonl. A torn last line (a killed run) is skipped; any other bad line or file is a
// qa::Error naming FILE:LINE or FILE.
ReportInputs read_report_inputs(const std::string& output_dir);

// The whole page.
std::string render_report(const ReportInputs& in);

// read_report_inputs + render_report, written atomically to <output_dir>/logs/report.html; returns that path.
std::string write_report(const std::string& output_dir);

}  // namespace qa
