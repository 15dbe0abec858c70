// Architecture registry (see architecture.h).
#include "policy/architecture.h"

#include <map>

#include "src/error.h"

namespace r1kit::policy {
namespace {
std::map<std::string, std::unique_ptr<Architecture>>& registry() {
  static std::map<std::string, std::unique_ptr<Architecture>> r;  // built before main()
  return r;
}
}  // namespace

void register_architecture(const std::string& model_type, std::unique_ptr<Architecture> arch) {
  auto [it, inserted] = registry().emplace(model_type, std::move(arch));
  if (!inserted) throw std::logic_error("architecture '" + model_type + "' registered twice");
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& [name, arch] : registry()) names.push_back(name);
  return names;
}

const Architecture& find_architecture(const std::string& model_type) {
  auto it = registry().find(model_type);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown model_type '" + model_type + "' (known: " + known + ")");
  }
  return *it->second;
}

}  // namespace r1kit::policy
