// SPDX-License-Identifier: Apache-2.0
#include "control/config/toml_parse.hpp"

#include <memory>
#include <string>

namespace sluice {
namespace {

bool is_bare_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Walks the text as TOML's lexer would see keys: runs of bare words and
// quoted strings joined by dots (blanks allowed around a dot), outside
// comments. Values are walked too (a float has one dot, a string is one
// part), which can only count a run short of a key's, never past it.
class KeyDepth {
 public:
  explicit KeyDepth(std::string_view text) : text_(text) {}

  // The position of the first part of the first key that is too deep, or
  // line 0 if none is.
  toml::source_position deepest() {
    while (i_ < text_.size()) {
      const char c = text_[i_];
      if (c == '#') {
        while (i_ < text_.size() && text_[i_] != '\n') advance();
        continue;
      }
      if (c == ' ' || c == '\t') {
        advance();
        continue;
      }
      if (c == '.' && after_part_) {
        after_part_ = false;
        if (++dots_ >= kMaxKeyParts) {
          why_ = "key nested too deep: more than " + std::to_string(kMaxKeyParts) + " dotted parts";
          return start_;
        }
        advance();
        continue;
      }
      if (c == '"' || c == '\'' || is_bare_char(c)) {
        if (!after_part_ && dots_ == 0) start_ = here();
        if (after_part_) dots_ = 0, start_ = here();  // two parts without a dot
        if (c == '"' || c == '\'') {
          skip_string(c);
        } else {
          while (i_ < text_.size() && is_bare_char(text_[i_])) advance();
        }
        after_part_ = true;
        continue;
      }
      dots_ = 0;  // anything else ends the run
      after_part_ = false;
      if (c == '{' || c == '[') {  // an inline table, an array, a table header
        if (++nesting_ > kMaxNesting) {
          why_ = "nested too deep: more than " + std::to_string(kMaxNesting) +
                 " levels of arrays and inline tables";
          return here();
        }
      } else if ((c == '}' || c == ']') && nesting_ > 0) {
        nesting_--;
      }
      advance();
    }
    return {};
  }

  // What deepest() found too deep.
  const std::string& why() const { return why_; }

 private:
  toml::source_position here() const { return {line_, col_}; }

  void advance() {
    if (text_[i_] == '\n') {
      line_++;
      col_ = 1;
    } else {
      col_++;
    }
    i_++;
  }

  // A basic or literal string, one-line or multi-line; an unterminated one
  // runs to the end (toml++ then says what is wrong with it).
  void skip_string(char quote) {
    const bool multi = text_.substr(i_, 3) == std::string(3, quote);
    for (int k = 0; k < (multi ? 3 : 1); k++) advance();
    while (i_ < text_.size()) {
      const char c = text_[i_];
      if (c == '\\' && quote == '"' && i_ + 1 < text_.size()) {
        advance();
        advance();
        continue;
      }
      if (c == '\n' && !multi) return;
      if (c == quote && (!multi || text_.substr(i_, 3) == std::string(3, quote))) {
        for (int k = 0; k < (multi ? 3 : 1); k++) advance();
        // A multi-line string may end in one or two quotes of its own
        // before the delimiter ('''a'''' is "a'").
        for (int k = 0; multi && k < 2 && i_ < text_.size() && text_[i_] == quote; k++) advance();
        return;
      }
      advance();
    }
  }

  std::string_view text_;
  std::size_t i_ = 0;
  toml::source_index line_ = 1, col_ = 1;
  toml::source_position start_{};
  std::size_t dots_ = 0;
  bool after_part_ = false;
  std::size_t nesting_ = 0;
  std::string why_;
};

}  // namespace

toml::table parse_toml(std::string_view text, std::string_view source) {
  KeyDepth depth(text);
  if (const toml::source_position deep = depth.deepest(); deep.line != 0) {
    throw toml::parse_error(
        depth.why().c_str(), deep,
        source.empty() ? toml::source_path_ptr{} : std::make_shared<const std::string>(source));
  }
  return toml::parse(text, source);
}

}  // namespace sluice
