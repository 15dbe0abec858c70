// Parquet files as rows of JSON objects, through Apache Arrow's C++ library (the one inside
// the pyarrow wheel of .venv, found at configure time the way LibTorch comes from the torch
// wheel). Each column is a field; nested lists and structs become JSON lists and objects in
// the column / field order of the schema, as pyarrow's Table.to_pylist() gives them.
// r1kit built without Arrow (no pyarrow at configure time) still reads JSONL; a Parquet file
// is then an error that says how to get Arrow.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace r1kit {

// True when this build can read Parquet.
bool parquet_available();

// Every row of the file. Throws r1kit::Error naming the file (unreadable, not Parquet, a
// column type JSON cannot hold) or, without Arrow, saying so.
std::vector<nlohmann::ordered_json> read_parquet_rows(const std::string& path);

}  // namespace r1kit
