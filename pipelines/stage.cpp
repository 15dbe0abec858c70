// The stage registry (see stage.h).
#include "pipelines/stage.h"

#include <filesystem>
#include <map>
#include <stdexcept>

namespace r1kit::pipelines {
namespace {

// Function-local: registrations run during static initialisation, in any order of files.
std::map<std::string, StageType>& registry() {
  static std::map<std::string, StageType> types;
  return types;
}

}  // namespace

std::string stage_model_dir(const std::string& run_dir, const std::string& stage) {
  return (std::filesystem::path(run_dir) / "models" / stage).string();
}

std::string stage_data_path(const std::string& run_dir, const std::string& stage) {
  return (std::filesystem::path(run_dir) / "data" / (stage + ".jsonl")).string();
}

void register_stage_type(StageType type) {
  const std::string name = type.name;
  if (!registry().emplace(name, std::move(type)).second) {
    throw std::logic_error("stage type '" + name + "' registered twice");
  }
}

const StageType* find_stage_type(const std::string& name) {
  const auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<const StageType*> stage_types() {
  std::vector<const StageType*> out;
  for (const auto& [name, type] : registry()) out.push_back(&type);
  return out;
}

std::string stage_type_names() {
  std::string out;
  for (const auto& [name, type] : registry()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace r1kit::pipelines
