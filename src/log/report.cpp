#include "qa/log/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <optional>
#include <sstream>

#include "qa/eval/squad_metrics.hpp"
#include "qa/util/error.hpp"
#include "qa/util/fs.hpp"

namespace qa {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- formatting ------------------------------------------------------------------------------------

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A JSON value as text: strings as they are, everything else as JSON (invalid UTF-8 replaced).
std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<double> number(const json& e, const char* key) {
  const auto it = e.find(key);
  if (it == e.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string fmt_duration(double sec) {
  if (sec < 60) return fmt("%.1f s", sec);
  const long s = std::lround(sec);
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return std::to_string(s / 3600) + " h " + std::to_string((s % 3600) / 60) + " min";
}

std::string fmt_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt("%.0f", v);
  if (std::fabs(v) >= 1e-3 && std::fabs(v) < 1e6) return fmt("%.4g", v);
  return fmt("%.3e", v);
}

// ---- charts --------------------------------------------------------------------------------------

constexpr double kWidth = 560, kHeight = 300;
constexpr double kLeft = 70, kRight = 18, kTop = 42, kBottom = 50;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

struct Axis {
  double lo = 0, hi = 1, step = 1;
};

// 1, 2, 2.5 or 5 times a power of ten, near `raw`.
double nice_step(double raw) {
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

Axis nice_axis(double mn, double mx, bool from_zero, bool integer) {
  if (from_zero) {
    mn = std::min(mn, 0.0);
    mx = std::max(mx, 0.0);
  }
  if (!(mx > mn)) {
    if (mn == 0) {
      mx = 1;
    } else {
      const double d = std::fabs(mn) * 0.1;
      mn -= d;
      mx += d;
      if (from_zero) mn = std::min(mn, 0.0), mx = std::max(mx, 0.0);
    }
  }
  Axis a;
  a.step = nice_step((mx - mn) / 5);
  if (integer) a.step = std::max(a.step, 1.0);
  a.lo = std::floor(mn / a.step + 1e-9) * a.step;
  a.hi = std::ceil(mx / a.step - 1e-9) * a.step;
  if (a.hi <= a.lo) a.hi = a.lo + a.step;
  return a;
}

std::string fmt_tick(double v, const Axis& a) {
  if (std::fabs(v) < a.step * 1e-6) return "0";
  const double mag = std::max(std::fabs(a.lo), std::fabs(a.hi));
  int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(a.step) + 1e-9)));
  if (std::fabs(a.step / std::pow(10.0, std::floor(std::log10(a.step) + 1e-9)) - 2.5) < 1e-6) ++decimals;
  if (decimals > 4 || mag >= 1e7) return fmt("%.3g", v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string coord(double v) { return fmt("%.1f", v); }

struct Frame {
  Axis x, y;
  double px(double v) const { return kLeft + (v - x.lo) / (x.hi - x.lo) * kPlotW; }
  double py(double v) const { return kTop + kPlotH - (v - y.lo) / (y.hi - y.lo) * kPlotH; }
};

std::string svg_open(const std::string& title) {
  std::ostringstream o;
  o << "<svg class=\"chart\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" width=\"" << kWidth
    << "\" height=\"" << kHeight << "\" role=\"img\" aria-label=\"" << html_escape(title) << "\">\n"
    << "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"" << kWidth << "\" height=\"" << kHeight << "\"/>\n"
    << "<text class=\"title\" x=\"" << kLeft << "\" y=\"22\">" << html_escape(title) << "</text>\n";
  return o.str();
}

std::string not_recorded_svg(const std::string& title) {
  std::ostringstream o;
  o << svg_open(title) << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kPlotW
    << "\" height=\"" << kPlotH << "\"/>\n<text class=\"empty\" x=\"" << coord(kLeft + kPlotW / 2) << "\" y=\""
    << coord(kTop + kPlotH / 2) << "\">not recorded</text>\n</svg>\n";
  return o.str();
}

// Grid, tick labels, frame and axis labels.
std::string axes(const Frame& f, const std::string& x_label, const std::string& y_label, double x_tick_from) {
  std::ostringstream o;
  std::string grid;
  for (double k = std::ceil(x_tick_from / f.x.step - 1e-9); k * f.x.step <= f.x.hi + f.x.step * 1e-9; ++k) {
    const double v = k * f.x.step, x = f.px(v);
    grid += "M" + coord(x) + " " + coord(kTop) + "V" + coord(kTop + kPlotH);
    o << "<text class=\"tick x\" x=\"" << coord(x) << "\" y=\"" << coord(kTop + kPlotH + 16) << "\">"
      << fmt_tick(v, f.x) << "</text>\n";
  }
  for (double k = std::ceil(f.y.lo / f.y.step - 1e-9); k * f.y.step <= f.y.hi + f.y.step * 1e-9; ++k) {
    const double v = k * f.y.step, y = f.py(v);
    grid += "M" + coord(kLeft) + " " + coord(y) + "H" + coord(kLeft + kPlotW);
    o << "<text class=\"tick y\" x=\"" << coord(kLeft - 6) << "\" y=\"" << coord(y + 4) << "\">" << fmt_tick(v, f.y)
      << "</text>\n";
  }
  std::ostringstream out;
  out << "<path class=\"grid\" d=\"" << grid << "\"/>\n"
      << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kPlotW << "\" height=\""
      << kPlotH << "\"/>\n"
      << o.str() << "<text class=\"label x\" x=\"" << coord(kLeft + kPlotW / 2) << "\" y=\"" << coord(kHeight - 10)
      << "\">" << html_escape(x_label) << "</text>\n"
      << "<text class=\"label y\" transform=\"translate(16 " << coord(kTop + kPlotH / 2) << ") rotate(-90)\">"
      << html_escape(y_label) << "</text>\n";
  return out.str();
}

bool finite_point(const std::pair<double, double>& p) { return std::isfinite(p.first) && std::isfinite(p.second); }

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::vector<ChartSeries>& series, const std::string& title, const std::string& x_label,
                           const std::string& y_label, bool y_from_zero) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  bool integer_x = true;
  for (const auto& s : series) {
    for (const auto& p : s.points) {
      if (!finite_point(p)) continue;
      xmin = std::min(xmin, p.first), xmax = std::max(xmax, p.first);
      ymin = std::min(ymin, p.second), ymax = std::max(ymax, p.second);
      integer_x = integer_x && p.first == std::floor(p.first);
    }
  }
  if (!std::isfinite(xmin)) return not_recorded_svg(title);

  Frame f;
  f.x = nice_axis(xmin, xmax, false, integer_x);
  f.y = nice_axis(ymin, ymax, y_from_zero, false);
  std::ostringstream o;
  o << svg_open(title) << axes(f, x_label, y_label, f.x.lo);

  // Legend, right-aligned on the title line.
  double lx = kWidth - kRight;
  std::string legend;
  for (std::size_t i = series.size(); i-- > 0;) {
    const auto& s = series[i];
    const char* color = kColors[i % std::size(kColors)];
    lx -= 7.2 * static_cast<double>(s.name.size()) + 34;
    legend = "<path class=\"key\" d=\"M" + coord(lx) + " 18H" + coord(lx + 18) + "\" stroke=\"" + color + "\"/>" +
             "<text class=\"legend\" x=\"" + coord(lx + 23) + "\" y=\"22\">" + html_escape(s.name) + "</text>\n" +
             legend;
  }
  o << legend;

  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* color = kColors[i % std::size(kColors)];
    std::string d, dots;
    bool pen_down = false;
    std::size_t drawn = 0;
    for (const auto& p : s.points) {
      if (!finite_point(p)) {
        pen_down = false;
        continue;
      }
      const std::string x = coord(f.px(p.first)), y = coord(f.py(p.second));
      d += (pen_down ? "L" : d.empty() ? "M" : " M") + x + " " + y;
      pen_down = true;
      ++drawn;
      dots += "<circle class=\"point\" cx=\"" + x + "\" cy=\"" + y + "\" r=\"3\" fill=\"" + color + "\"/>";
    }
    if (drawn == 0) continue;
    o << "<path class=\"series\" d=\"" << d << "\" fill=\"none\" stroke=\"" << color << "\"><title>" << html_escape(s.name)
      << "</title></path>\n";
    if (s.markers || drawn == 1) o << dots << "\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string svg_histogram(const std::vector<double>& counts, const std::string& title, const std::string& x_label,
                          const std::string& y_label) {
  double ymax = 0;
  for (double c : counts) {
    if (std::isfinite(c)) ymax = std::max(ymax, c);
  }
  if (counts.empty() || ymax <= 0) return not_recorded_svg(title);
  Frame f;
  f.x = nice_axis(0, static_cast<double>(counts.size() - 1), false, true);
  f.x.lo = -0.5;  // bars are centred on their value
  f.x.hi = std::max(f.x.hi, static_cast<double>(counts.size() - 1)) + 0.5;
  f.y = nice_axis(0, ymax, true, true);
  std::ostringstream o;
  o << svg_open(title) << axes(f, x_label, y_label, 0);
  std::string d;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (!(counts[i] > 0) || !std::isfinite(counts[i])) continue;
    const double x = static_cast<double>(i);
    d += (d.empty() ? "M" : " M") + coord(f.px(x - 0.4)) + " " + coord(f.py(0)) + "H" + coord(f.px(x + 0.4)) + "V" +
         coord(f.py(counts[i])) + "H" + coord(f.px(x - 0.4)) + "Z";
  }
  o << "<path class=\"series\" d=\"" << d << "\" fill=\"" << kColors[0] << "\" fill-opacity=\"0.75\" stroke=\""
    << kColors[0] << "\"><title>" << html_escape(title) << "</title></path>\n</svg>\n";
  return o.str();
}

// ---- reading ---------------------------------------------------------------------------------------

namespace {

// JSON objects, one a line; a torn last line (no newline: the writer was killed) is skipped.
std::vector<json> read_jsonl_objects(const std::string& path, const std::string& what) {
  const std::string text = read_file(path, what);
  std::vector<json> out;
  std::size_t pos = 0;
  long line_no = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const bool last_unterminated = nl == std::string::npos;
    const std::string line = text.substr(pos, last_unterminated ? std::string::npos : nl - pos);
    pos = last_unterminated ? text.size() : nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json v = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) {
      if (last_unterminated) break;  // torn write
      throw_at_line(path, line_no, "not valid JSON");
    }
    if (!v.is_object()) throw_at_line(path, line_no, "expected a JSON object, got " + std::string(v.type_name()));
    out.push_back(std::move(v));
  }
  return out;
}

json read_json_file(const std::string& path, const std::string& what) {
  json v = json::parse(read_file(path, what), nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) throw_bad_file(path, "not valid JSON");
  if (!v.is_object()) throw_bad_file(path, "expected a JSON object, got " + std::string(v.type_name()));
  return v;
}

}  // namespace

ReportInputs read_report_inputs(const std::string& output_dir) {
  ReportInputs in;
  in.output_dir = output_dir;
  const fs::path logs = fs::path(output_dir) / "logs";
  const std::string metrics = (logs / "metrics.jsonl").string();
  if (!file_exists(metrics)) throw_bad_file(metrics, "not found (is " + output_dir + " a qa-train output folder?)");
  in.metrics = read_jsonl_objects(metrics, "metrics log");
  if (const auto p = (logs / "config.json").string(); file_exists(p)) in.config = read_json_file(p, "effective config");
  if (const auto p = (logs / "data_stats.json").string(); file_exists(p)) {
    in.data_stats = read_json_file(p, "data statistics");
  }
  if (const auto p = (logs / "predictions.jsonl").string(); file_exists(p)) {
    in.predictions = read_jsonl_objects(p, "predictions");
    in.predictions_recorded = true;
  }
  return in;
}

// ---- the page --------------------------------------------------------------------------------------

namespace {

const char* const kStyle = R"(
body { font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #222; margin: 24px auto;
       max-width: 1160px; padding: 0 16px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: #666; margin: 0 0 12px; }
.na { color: #888; font-style: italic; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td:first-child { color: #555; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; }
svg.chart { width: 100%; height: auto; border: 1px solid #e4e4e4; border-radius: 4px; }
svg .bg { fill: #fff; }
svg .frame { fill: none; stroke: #999; stroke-width: 1; }
svg .grid { fill: none; stroke: #ececec; stroke-width: 1; }
svg .series { stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg .key { stroke-width: 3; }
svg text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; fill: #333; }
svg .title { font-size: 15px; font-weight: 600; }
svg .legend { font-size: 12px; }
svg .tick { font-size: 11px; fill: #555; }
svg .tick.x, svg .label.x, svg .empty { text-anchor: middle; }
svg .tick.y { text-anchor: end; }
svg .label { font-size: 12px; fill: #444; }
svg .label.y { text-anchor: middle; }
svg .empty { font-size: 14px; fill: #999; font-style: italic; }
table.predictions { width: 100%; table-layout: fixed; }
table.predictions td { word-wrap: break-word; }
td.hit { background: #e9f6ec; }
td.miss { background: #fbeaea; }
.config { column-count: 3; column-gap: 24px; font-size: 12.5px; }
.config div { break-inside: avoid; border-bottom: 1px dotted #e2e2e2; padding: 1px 0; display: flex;
              justify-content: space-between; gap: 8px; }
.config .k { color: #555; }
.config .v { font-family: "DejaVu Sans Mono", monospace; text-align: right; word-break: break-all; }
)";

void flatten(const json& v, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out.emplace_back(prefix, v.is_string() ? "\"" + v.get<std::string>() + "\"" : text_of(v));
  }
}

std::string na(const std::string& what = "not recorded") { return "<p class=\"na\">" + html_escape(what) + "</p>\n"; }

}  // namespace

std::string render_report(const ReportInputs& in) {
  // Series from metrics.jsonl. Time runs on across resumed runs (their elapsed_sec restarts at 0).
  ChartSeries train_loss{"train loss", {}, false}, eval_loss{"eval loss", {}, true};
  ChartSeries em{"exact match", {}, true}, f1{"F1", {}, true};
  ChartSeries lr{"learning rate", {}, false}, tps{"tokens/s", {}, false}, grad{"gradient norm", {}, false};
  ChartSeries rss{"peak RSS", {}, false};
  std::vector<double> padding;
  double offset = 0, prev_elapsed = -1, wall = 0;
  int restarts = 0;
  std::optional<double> last_step, last_epoch, final_loss, last_eval_loss;
  std::optional<std::pair<double, double>> best_em, best_f1;  // (value, step)
  std::optional<double> peak_rss, peak_cuda;
  std::size_t train_events = 0, eval_events = 0;
  std::vector<std::pair<double, double>> throughput_time;  // (seconds, tokens/s)
  for (const auto& e : in.metrics) {
    const auto kind = e.find("event");
    if (kind == e.end() || !kind->is_string()) continue;
    const auto step = number(e, "step");
    if (!step) continue;
    if (const auto el = number(e, "elapsed_sec")) {
      if (prev_elapsed >= 0 && *el + 1e-9 < prev_elapsed) {
        offset += prev_elapsed;
        ++restarts;
      }
      prev_elapsed = *el;
      wall = std::max(wall, offset + *el);
    }
    last_step = step;
    if (const auto ep = number(e, "epoch")) last_epoch = ep;
    if (const auto r = number(e, "peak_rss_mb")) peak_rss = std::max(peak_rss.value_or(0), *r);
    if (const auto c = number(e, "cuda_peak_allocated_mb")) peak_cuda = std::max(peak_cuda.value_or(0), *c);
    const double s = *step, nan = NAN;
    if (*kind == "train") {
      ++train_events;
      const auto loss = number(e, "loss");
      train_loss.points.emplace_back(s, loss.value_or(nan));
      if (loss) final_loss = loss;
      lr.points.emplace_back(s, number(e, "lr").value_or(nan));
      grad.points.emplace_back(s, number(e, "grad_norm").value_or(nan));
      if (const auto r = number(e, "peak_rss_mb")) rss.points.emplace_back(s, *r);
      if (const auto p = number(e, "padding_fraction")) padding.push_back(*p);
      const auto t = number(e, "tokens_per_sec");
      const auto el = number(e, "elapsed_sec");
      if (t && el) throughput_time.emplace_back(offset + *el, *t);
    } else if (*kind == "eval") {
      ++eval_events;
      const auto l = number(e, "eval_loss");
      const auto m = number(e, "exact_match");
      const auto f = number(e, "f1");
      if (l) eval_loss.points.emplace_back(s, *l), last_eval_loss = l;
      if (m) {
        em.points.emplace_back(s, *m);
        if (!best_em || *m > best_em->first) best_em = {{*m, s}};
      }
      if (f) {
        f1.points.emplace_back(s, *f);
        if (!best_f1 || *f > best_f1->first) best_f1 = {{*f, s}};
      }
    }
  }
  // Throughput against time, in a unit that keeps the numbers readable.
  double time_scale = 1;
  std::string time_unit = "s";
  if (!throughput_time.empty()) {
    const double tmax = throughput_time.back().first;
    if (tmax > 3 * 3600) time_scale = 3600, time_unit = "h";
    else if (tmax > 600) time_scale = 60, time_unit = "min";
  }
  for (const auto& [t, v] : throughput_time) tps.points.emplace_back(t / time_scale, v);

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>qa-train report: " << html_escape(in.output_dir) << "</title>\n<style>" << kStyle
    << "</style>\n</head>\n<body>\n<h1>qa-train report</h1>\n<p class=\"meta\">Output folder <code>"
    << html_escape(in.output_dir) << "</code>";
  if (!in.generated_at.empty()) h << " &middot; generated " << html_escape(in.generated_at);
  h << "</p>\n";

  // Summary.
  h << "<h2>Summary</h2>\n";
  if (!last_step) {
    h << na("no training events in metrics.jsonl");
  } else {
    auto row = [&](const std::string& k, const std::string& v) {
      h << "<tr><td>" << html_escape(k) << "</td><td class=\"num\">" << html_escape(v) << "</td></tr>\n";
    };
    h << "<table class=\"summary\">\n";
    row("steps", fmt("%.0f", *last_step));
    if (last_epoch) row("epochs started", fmt("%.0f", *last_epoch + 1));
    if (final_loss) row("final train loss", fmt("%.4f", *final_loss));
    if (last_eval_loss) row("last eval loss", fmt("%.4f", *last_eval_loss));
    if (best_em) row("best exact match", fmt("%.2f", best_em->first) + " (step " + fmt("%.0f", best_em->second) + ")");
    if (best_f1) row("best F1", fmt("%.2f", best_f1->first) + " (step " + fmt("%.0f", best_f1->second) + ")");
    if (!tps.points.empty()) {
      double sum = 0;
      for (const auto& p : tps.points) sum += p.second;
      row("mean throughput", fmt("%.0f", sum / static_cast<double>(tps.points.size())) + " tokens/s");
    }
    if (wall > 0) row("wall time", fmt_duration(wall) + (restarts ? " (" + std::to_string(restarts + 1) + " runs)" : ""));
    if (peak_rss) row("peak RSS", fmt("%.0f", *peak_rss) + " MiB");
    if (peak_cuda) row("peak CUDA memory (allocator)", fmt("%.0f", *peak_cuda) + " MiB");
    row("events logged", std::to_string(train_events) + " train, " + std::to_string(eval_events) + " eval");
    h << "</table>\n";
  }

  // Curves.
  h << "<h2>Training curves</h2>\n<div class=\"charts\">\n"
    << svg_line_chart({train_loss, eval_loss}, "Loss", "step", "mean token loss")
    << svg_line_chart({em, f1}, "Exact match and F1", "step", "% of validation examples", true)
    << svg_line_chart({lr}, "Learning rate", "step", "learning rate", true)
    << svg_line_chart({tps}, "Throughput", "elapsed time (" + time_unit + ")", "tokens/s (source + target)", true)
    << svg_line_chart({grad}, "Gradient norm", "step", "global L2 norm", true)
    << svg_line_chart({rss}, "Memory", "step", "peak RSS (MiB)", true) << "</div>\n";

  // Data.
  h << "<h2>Data</h2>\n";
  if (!padding.empty()) {
    double sum = 0, mn = padding[0], mx = padding[0];
    for (double p : padding) sum += p, mn = std::min(mn, p), mx = std::max(mx, p);
    h << "<p>Padding in training batches: mean " << fmt("%.1f", 100 * sum / static_cast<double>(padding.size()))
      << " % of the batch tokens (logged windows: " << fmt("%.1f", 100 * mn) << " % to " << fmt("%.1f", 100 * mx)
      << " %).</p>\n";
  }
  if (!in.data_stats.is_object() || in.data_stats.empty()) {
    h << na("Data statistics: not recorded");
  } else {
    static const std::vector<std::pair<std::string, std::string>> kColumns = {
        {"examples", "examples"},
        {"truncated_sources", "truncated sources"},
        {"truncated_targets", "truncated targets"},
        {"mean_source_tokens", "mean source tokens"},
        {"mean_target_tokens", "mean target tokens"},
        {"max_source_tokens", "max source tokens"},
        {"max_target_tokens", "max target tokens"},
        {"padding_fraction", "padding fraction"},
    };
    std::vector<std::pair<std::string, std::string>> columns;  // those present, then other scalars
    for (const auto& c : kColumns) {
      for (const auto& [split, s] : in.data_stats.items()) {
        if (s.is_object() && s.contains(c.first)) {
          columns.push_back(c);
          break;
        }
      }
    }
    for (const auto& [split, s] : in.data_stats.items()) {
      if (!s.is_object()) continue;
      for (const auto& [k, v] : s.items()) {
        if (v.is_structured()) continue;
        if (std::none_of(columns.begin(), columns.end(), [&](const auto& c) { return c.first == k; })) {
          columns.emplace_back(k, k);
        }
      }
    }
    h << "<table>\n<tr><th>split</th>";
    for (const auto& c : columns) h << "<th>" << html_escape(c.second) << "</th>";
    h << "</tr>\n";
    for (const auto& [split, s] : in.data_stats.items()) {
      h << "<tr><td>" << html_escape(split) << "</td>";
      for (const auto& c : columns) {
        const bool has = s.is_object() && s.contains(c.first);
        const json& v = has ? s.at(c.first) : json();
        h << "<td class=\"num\">"
          << (!has ? "&ndash;" : v.is_number() ? html_escape(fmt_number(v.get<double>())) : html_escape(text_of(v)))
          << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</table>\n<div class=\"charts\">\n";
    for (const auto& [split, s] : in.data_stats.items()) {
      if (!s.is_object() || !s.contains("answer_lengths")) continue;
      std::vector<double> counts;
      if (s.at("answer_lengths").is_array()) {
        for (const auto& c : s.at("answer_lengths")) counts.push_back(c.is_number() ? c.get<double>() : 0.0);
      }
      h << svg_histogram(counts, "Answer lengths: " + split, "answer length (tokens, EOS included)", "examples");
    }
    h << "</div>\n";
  }

  // Predictions.
  h << "<h2>Validation predictions</h2>\n";
  if (!in.predictions_recorded) {
    h << na();
  } else if (in.predictions.empty()) {
    h << na("none");
  } else {
    std::optional<double> pstep;
    bool one_step = true;
    for (const auto& p : in.predictions) {
      const auto s = number(p, "step");
      if (s && pstep && *s != *pstep) one_step = false;
      if (s) pstep = s;
    }
    h << "<p>" << (pstep && one_step ? "From the evaluation at step " + fmt("%.0f", *pstep) + ". " : std::string())
      << "A green prediction matches a gold answer exactly (SQuAD normalisation); F1 is its best token F1, in %.</p>\n";
    h << "<table class=\"predictions\">\n<colgroup><col style=\"width:3em\"><col style=\"width:44%\"><col>"
      << "<col><col style=\"width:4.5em\"></colgroup>\n"
      << "<tr><th>#</th><th>question</th><th>prediction</th><th>gold answers</th><th>F1</th></tr>\n";
    std::size_t n = 0;
    for (const auto& p : in.predictions) {
      if (++n > 50) break;
      const std::string question = p.contains("question") ? text_of(p.at("question")) : "";
      const std::string prediction = p.contains("prediction") ? text_of(p.at("prediction")) : "";
      std::vector<std::string> golds;
      if (p.contains("answers") && p.at("answers").is_array()) {
        for (const auto& a : p.at("answers")) golds.push_back(text_of(a));
      } else if (p.contains("answer")) {
        golds.push_back(text_of(p.at("answer")));
      }
      std::string gold_html;
      for (const auto& g : golds) gold_html += (gold_html.empty() ? "" : "<br>") + html_escape(g);
      const bool hit = !golds.empty() && exact_match_score(prediction, golds) > 0;
      h << "<tr><td class=\"num\">" << n << "</td><td>" << html_escape(question) << "</td><td class=\""
        << (hit ? "hit" : "miss") << "\">" << html_escape(prediction) << "</td><td>" << gold_html
        << "</td><td class=\"num\">" << (golds.empty() ? "&ndash;" : fmt("%.0f", 100 * f1_score(prediction, golds)))
        << "</td></tr>\n";
    }
    h << "</table>\n";
  }

  // Config.
  h << "<h2>Effective config</h2>\n";
  if (!in.config.is_object() || in.config.empty()) {
    h << na();
  } else {
    std::vector<std::pair<std::string, std::string>> kv;
    flatten(in.config, "", kv);
    h << "<div class=\"config\">\n";
    for (const auto& [k, v] : kv) {
      h << "<div><span class=\"k\">" << html_escape(k) << "</span><span class=\"v\">" << html_escape(v)
        << "</span></div>\n";
    }
    h << "</div>\n";
  }
  h << "</body>\n</html>\n";
  return h.str();
}

std::string write_report(const std::string& output_dir) {
  ReportInputs in = read_report_inputs(output_dir);
  char stamp[32] = {};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
  in.generated_at = stamp;
  const std::string path = (fs::path(output_dir) / "logs" / "report.html").string();
  write_file_atomic(path, render_report(in));
  return path;
}

}  // namespace qa
