// SPDX-License-Identifier: Apache-2.0
// sluice-config-doc: keeps the key tables of docs/config.md generated from
// the config schema (control/config/schema.cpp). Each table sits between
// "<!-- schema: TABLE -->" and "<!-- end schema -->".
//
//   sluice-config-doc --check docs/config.md   exit 1 naming every stale table
//   sluice-config-doc --write docs/config.md   regenerate them in place
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "control/config/schema.hpp"

namespace {

constexpr std::string_view kBegin = "<!-- schema: ";
constexpr std::string_view kEnd = "<!-- end schema -->";

// The document with every generated block replaced; *problems names stale,
// unknown and missing blocks.
std::string regenerate(const std::string& doc, std::string* problems) {
  std::string out;
  std::set<std::string, std::less<>> seen;
  std::size_t at = 0;
  for (;;) {
    const std::size_t begin = doc.find(kBegin, at);
    if (begin == std::string::npos) break;
    const std::size_t name_end = doc.find(" -->\n", begin);
    const std::size_t end = doc.find(kEnd, begin);
    if (name_end == std::string::npos || end == std::string::npos || end < name_end) {
      *problems += "unterminated block at offset " + std::to_string(begin) + "\n";
      break;
    }
    const std::string table = doc.substr(begin + kBegin.size(), name_end - begin - kBegin.size());
    const std::size_t body = name_end + 5;
    out += doc.substr(at, body - at);
    std::string fresh = sluice::schema_markdown(table);
    if (sluice::keys_of(table).empty()) {
      *problems += "block for \"" + table + "\": no such table in the schema\n";
      fresh = doc.substr(body, end - body);
    } else if (doc.compare(body, end - body, fresh) != 0) {
      *problems += "stale: the [" + table + "] key table\n";
    }
    seen.insert(table);
    out += fresh;
    at = end;
  }
  out += doc.substr(at);
  for (std::string_view t : sluice::schema_tables())
    if (seen.find(t) == seen.end())
      *problems += "missing: no block for the [" + std::string(t) + "] keys\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode != "--check" && mode != "--write") {
    std::cerr << "usage: sluice-config-doc --check|--write docs/config.md\n";
    return 2;
  }
  std::ifstream in(argv[2]);
  if (!in) {
    std::cerr << "sluice-config-doc: cannot read " << argv[2] << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string problems;
  const std::string fresh = regenerate(text.str(), &problems);
  if (mode == "--write") {
    std::ofstream(argv[2]) << fresh;
    std::cout << argv[2] << ": key tables regenerated from the schema\n";
    return problems.find("missing") != std::string::npos ||
                   problems.find("no such table") != std::string::npos
               ? 1
               : 0;
  }
  if (problems.empty()) {
    std::cout << argv[2] << ": every key table matches the schema\n";
    return 0;
  }
  std::cerr << problems << "regenerate with: build/control/sluice-config-doc --write " << argv[2]
            << "\n";
  return 1;
}
