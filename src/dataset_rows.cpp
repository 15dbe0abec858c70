// read_dataset (see dataset_rows.h).
#include "src/dataset_rows.h"

#include "src/jsonl.h"
#include "src/parquet_rows.h"

namespace r1kit {

namespace {

bool is_parquet_path(const std::string& path) {
  const std::string ext = ".parquet";
  return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

}  // namespace

std::string missing_field_message(const DatasetRow& row, const std::string& field, const std::string& what) {
  const size_t colon = row.where.find(": row ");
  if (colon != std::string::npos && !row.fields.contains(field)) {
    std::string columns;
    for (auto it = row.fields.begin(); it != row.fields.end(); ++it)
      columns += (columns.empty() ? "" : ", ") + it.key();
    return row.where.substr(0, colon) + ": no column '" + field + "'" + what + " (its columns: " + columns + ")";
  }
  return row.where + ": no field '" + field + "'" + what;
}

std::string field_text(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::vector<DatasetRow> read_dataset(const std::string& path) {
  std::vector<DatasetRow> rows;
  if (is_parquet_path(path)) {
    auto table = read_parquet_rows(path);
    rows.reserve(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
      rows.push_back({std::move(table[i]), path + ": row " + std::to_string(i + 1)});
    }
    return rows;
  }
  JsonlReader reader(path);
  nlohmann::ordered_json row;
  while (reader.next(row)) rows.push_back({std::move(row), path + ":" + std::to_string(reader.line())});
  return rows;
}

}  // namespace r1kit
