// The encoder input text of an example, from a template such as "question: {question} context: {context}".
#pragma once

#include <string>

namespace qa {

std::string render_source(const std::string& tmpl, const std::string& question, const std::string& context);

}  // namespace qa
