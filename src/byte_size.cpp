// Byte sizes (see byte_size.h).
#include "src/byte_size.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "src/error.h"

namespace r1kit {

int64_t parse_byte_size(std::string_view text, const std::string& where) {
  const std::string s(text);
  char* end = nullptr;
  const double number = std::strtod(s.c_str(), &end);
  std::string unit(end);
  unit.erase(0, unit.find_first_not_of(' '));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();   // GB, GiB -> G, GI
  if (unit.size() == 2 && unit.back() == 'I') unit.pop_back();  // GI -> G
  static const std::string kUnits = "KMGT";
  double scale = 1;
  if (unit == "B") unit.clear();
  if (!unit.empty()) {
    const size_t at = kUnits.find(unit);
    if (unit.size() != 1 || at == std::string::npos)
      end = nullptr;
    else
      scale = std::pow(1024.0, static_cast<double>(at + 1));
  }
  const double bytes = number * scale;
  if (end == nullptr || end == s.c_str() || !std::isfinite(bytes) || bytes < 1 || bytes > 9.0e18) {
    throw Error(fmt::format("{}: '{}' is not a size (write e.g. 16GiB, 512M or a number of bytes)", where, s));
  }
  return static_cast<int64_t>(bytes);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  return fmt::format("{:.{}f} {}", bytes, u == 0 ? 0 : 1, units[u]);
}

}  // namespace r1kit
