// jinja::Template: the Jinja subset that Hugging Face chat templates use, parsed once and
// rendered many times, with transformers' environment: trim_blocks and lstrip_blocks on, a
// single trailing newline of the source dropped, no autoescape, loop controls (break,
// continue), and the `{% generation %}` block of transformers' AssistantTracker (its output
// spans are returned, for assistant-only loss masks).
// Supported: text, {{ }}, {# #}, whitespace control (-, +); if/elif/else, for (tuple targets,
// `if` filter, else, loop.*), set (name, ns.attr, block set), macro, break/continue; the
// expressions, filters, tests, methods and globals listed in src/jinja_builtins.h.
// Not supported (an error naming the template's line and column): include/extends/import,
// call blocks, filter blocks, raw blocks, `%` string formatting.
// Reference: https://jinja.palletsprojects.com/en/stable/templates/ and transformers'
// utils/chat_template_utils.py (_compile_jinja_template).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/jinja_value.h"

namespace r1kit::jinja {

struct Program;

class Template {
 public:
  // Throws r1kit::Error "NAME:LINE:COLUMN: ..." for a syntax error or unsupported construct.
  static Template parse(const std::string& source, const std::string& name);

  struct Output {
    std::string text;
    // Byte ranges [begin, end) of `text` written inside {% generation %} blocks.
    std::vector<std::pair<size_t, size_t>> generation_spans;
  };
  // Renders with `variables` as the global scope (plus the builtin globals). A runtime error
  // (raise_exception, an undefined attribute, a type error) throws r1kit::Error
  // "NAME:LINE:COLUMN: ...".
  Output render(const Dict& variables) const;

  bool has_generation_blocks() const;
  const std::string& name() const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace r1kit::jinja
