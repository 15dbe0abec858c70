// Dataset files as rows, whatever their format: JSONL (one object per line) or Parquet (a
// `.parquet` file, columns as fields; src/parquet_rows.h). Rows keep their keys in the order
// written (a chat template's tojson of a tool schema prints it as the user wrote it); each
// row carries where it came from for errors ("train.jsonl:12", "train.parquet: row 12").
// Does not: stream (a Parquet file is read whole; so is a JSONL file here), read Hub dataset
// directories of several files, or decompress.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace r1kit {

struct DatasetRow {
  nlohmann::ordered_json fields;
  std::string where;
};

// Every row of `path`. Errors name the file and line / row.
std::vector<DatasetRow> read_dataset(const std::string& path);

// The error for a row without `field`: "train.parquet: no column 'prompt' (its columns: q, a)"
// for Parquet, where a missing field is a missing column; "train.jsonl:12: no field 'prompt'"
// for JSONL. `what` says what the field should hold (" holding text").
std::string missing_field_message(const DatasetRow& row, const std::string& field, const std::string& what = "");

// A field's value as text: a string as it is, anything else as its JSON ("3", "true", "[1,2]").
std::string field_text(const nlohmann::json& value);

}  // namespace r1kit
