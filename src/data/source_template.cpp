#include "qa/data/source_template.hpp"

namespace qa {

std::string render_source(const std::string& tmpl, const std::string& question, const std::string& context) {
  std::string out;
  out.reserve(tmpl.size() + question.size() + context.size());
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 10, "{question}") == 0) {
      out += question;
      i += 10;
    } else if (tmpl.compare(i, 9, "{context}") == 0) {
      out += context;
      i += 9;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

}  // namespace qa
