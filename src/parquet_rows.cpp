// Parquet rows as JSON objects: parquet::arrow::FileReader reads the whole table, then each
// cell becomes JSON the way pyarrow's Table.to_pylist() + json.dumps would write it (the
// reference tests/parity/parquet_rows.py checks): structs are objects in field order, lists
// are arrays, maps are arrays of [key, value], dictionary columns their decoded values.
// Not handled, each an r1kit::Error naming file and column: binary, decimal, temporal types
// (date, time, timestamp, duration, interval: json.dumps cannot write their Python values
// either), unions, run-end encoded and extension types; a NaN or infinite float names its row
// too (JSON has no such number). Rows are numbered from 1 in errors, as everywhere in r1kit (src/dataset_rows).
// Without R1KIT_WITH_ARROW (no pyarrow at configure time) every read is an Error saying so.
#include "src/parquet_rows.h"

#include "src/error.h"

#ifdef R1KIT_WITH_ARROW
#include <arrow/array.h>
#include <arrow/chunked_array.h>
#include <arrow/io/file.h>
#include <arrow/memory_pool.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/util/float16.h>
#include <parquet/arrow/reader.h>

#include <cmath>
#include <memory>
#endif

namespace r1kit {

#ifndef R1KIT_WITH_ARROW

bool parquet_available() { return false; }

std::vector<nlohmann::ordered_json> read_parquet_rows(const std::string& path) {
  throw Error(path +
              ": reading Parquet needs Apache Arrow, and r1kit was built without it (pyarrow was not in "
              ".venv at configure time): run scripts/setup, then rebuild; or convert the file to JSONL");
}

#else

namespace {

using Json = nlohmann::ordered_json;

// Arrow's message on one line (a Status may carry context lines).
std::string one_line(const arrow::Status& st) {
  std::string s = st.ToStringWithoutContextLines();
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Whether every value of `type` has a JSON form; `bad` gets the first type that has none.
bool json_type(const arrow::DataType& type, std::string& bad) {
  using T = arrow::Type;
  switch (type.id()) {
    case T::NA:
    case T::BOOL:
    case T::INT8:
    case T::INT16:
    case T::INT32:
    case T::INT64:
    case T::UINT8:
    case T::UINT16:
    case T::UINT32:
    case T::UINT64:
    case T::HALF_FLOAT:
    case T::FLOAT:
    case T::DOUBLE:
    case T::STRING:
    case T::LARGE_STRING:
    case T::STRING_VIEW:
      return true;
    case T::LIST:
    case T::LARGE_LIST:
    case T::LIST_VIEW:
    case T::LARGE_LIST_VIEW:
    case T::FIXED_SIZE_LIST:
    case T::MAP:  // a list of struct<key, value>
    case T::STRUCT:
      for (const auto& field : type.fields())
        if (!json_type(*field->type(), bad)) return false;
      return true;
    case T::DICTIONARY:
      return json_type(*static_cast<const arrow::DictionaryType&>(type).value_type(), bad);
    default:
      bad = type.ToString();
      return false;
  }
}

// Where a value sits, for error messages.
struct Where {
  const std::string& path;
  const std::string& column;
  int64_t row;
};

template <typename ListLike>
Json list_at(const ListLike& a, int64_t i, const Where& w);
Json map_at(const arrow::MapArray& a, int64_t i, const Where& w);

double finite(double v, const Where& w) {
  if (!std::isfinite(v))
    throw Error(w.path + ": row " + std::to_string(w.row + 1) + ", column '" + w.column + "': the float " +
                std::to_string(v) + " has no JSON form");
  return v;
}

// Value `i` of `a` (types already checked by json_type).
Json value_at(const arrow::Array& a, int64_t i, const Where& w) {
  using T = arrow::Type;
  if (a.IsNull(i)) return nullptr;
  switch (a.type_id()) {
    case T::NA:
      return nullptr;
    case T::BOOL:
      return static_cast<const arrow::BooleanArray&>(a).Value(i);
    case T::INT8:
      return int64_t{static_cast<const arrow::Int8Array&>(a).Value(i)};
    case T::INT16:
      return int64_t{static_cast<const arrow::Int16Array&>(a).Value(i)};
    case T::INT32:
      return int64_t{static_cast<const arrow::Int32Array&>(a).Value(i)};
    case T::INT64:
      return int64_t{static_cast<const arrow::Int64Array&>(a).Value(i)};
    case T::UINT8:
      return uint64_t{static_cast<const arrow::UInt8Array&>(a).Value(i)};
    case T::UINT16:
      return uint64_t{static_cast<const arrow::UInt16Array&>(a).Value(i)};
    case T::UINT32:
      return uint64_t{static_cast<const arrow::UInt32Array&>(a).Value(i)};
    case T::UINT64:  // stays unsigned above INT64_MAX (nlohmann's number_unsigned)
      return uint64_t{static_cast<const arrow::UInt64Array&>(a).Value(i)};
    case T::HALF_FLOAT: {
      const uint16_t bits = static_cast<const arrow::HalfFloatArray&>(a).Value(i);
      return finite(arrow::util::Float16::FromBits(bits).ToDouble(), w);
    }
    case T::FLOAT:  // widened exactly, as Python's float(np.float32) is
      return finite(static_cast<const arrow::FloatArray&>(a).Value(i), w);
    case T::DOUBLE:
      return finite(static_cast<const arrow::DoubleArray&>(a).Value(i), w);
    case T::STRING:
      return std::string(static_cast<const arrow::StringArray&>(a).GetView(i));
    case T::LARGE_STRING:
      return std::string(static_cast<const arrow::LargeStringArray&>(a).GetView(i));
    case T::STRING_VIEW:
      return std::string(static_cast<const arrow::StringViewArray&>(a).GetView(i));
    case T::LIST:
      return list_at(static_cast<const arrow::ListArray&>(a), i, w);
    case T::LARGE_LIST:
      return list_at(static_cast<const arrow::LargeListArray&>(a), i, w);
    case T::LIST_VIEW:
      return list_at(static_cast<const arrow::ListViewArray&>(a), i, w);
    case T::LARGE_LIST_VIEW:
      return list_at(static_cast<const arrow::LargeListViewArray&>(a), i, w);
    case T::FIXED_SIZE_LIST:
      return list_at(static_cast<const arrow::FixedSizeListArray&>(a), i, w);
    case T::MAP:
      return map_at(static_cast<const arrow::MapArray&>(a), i, w);
    case T::STRUCT: {
      const auto& s = static_cast<const arrow::StructArray&>(a);
      const auto& fields = s.struct_type()->fields();
      Json out = Json::object();
      // field(k) is the child adjusted for the struct's own offset, so it takes the same i.
      for (int k = 0; k < s.num_fields(); ++k) out[fields[k]->name()] = value_at(*s.field(k), i, w);
      return out;
    }
    case T::DICTIONARY: {
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      return value_at(*d.dictionary(), d.GetValueIndex(i), w);
    }
    default:  // unreachable: json_type rejected the column before any row was read
      throw Error(w.path + ": column '" + w.column + "': unexpected type " + a.type()->ToString());
  }
}

// value_offset(i) indexes values() directly: offsets are absolute in the child array.
template <typename ListLike>
Json list_at(const ListLike& a, int64_t i, const Where& w) {
  const arrow::Array& values = *a.values();
  const int64_t begin = a.value_offset(i);
  const int64_t end = begin + a.value_length(i);
  Json out = Json::array();
  for (int64_t j = begin; j < end; ++j) out.push_back(value_at(values, j, w));
  return out;
}

// A map entry list as [[key, value], ...]: pyarrow gives (key, value) tuples, json.dumps arrays.
Json map_at(const arrow::MapArray& a, int64_t i, const Where& w) {
  const auto& entries = static_cast<const arrow::StructArray&>(*a.values());
  const auto keys = entries.field(0);
  const auto items = entries.field(1);
  const int64_t begin = a.value_offset(i);
  const int64_t end = begin + a.value_length(i);
  Json out = Json::array();
  for (int64_t j = begin; j < end; ++j) {
    if (entries.IsNull(j)) {
      out.push_back(nullptr);
      continue;
    }
    out.push_back(Json::array({value_at(*keys, j, w), value_at(*items, j, w)}));
  }
  return out;
}

std::shared_ptr<arrow::Table> read_table(const std::string& path) {
  // The system allocator, not the wheel's jemalloc: the table lives only for this call, and
  // its memory should go back to where the rest of the process (LibTorch) gets its own.
  arrow::MemoryPool* pool = arrow::system_memory_pool();
  auto file = arrow::io::ReadableFile::Open(path, pool);
  if (!file.ok()) throw Error(path + ": cannot open (" + one_line(file.status()) + ")");
  // Parquet's reader reports through Status, but its internals throw ParquetException;
  // keep either from leaving as anything but an r1kit::Error.
  std::unique_ptr<parquet::arrow::FileReader> reader;
  try {
    auto opened = parquet::arrow::OpenFile(*file, pool);
    if (!opened.ok()) throw Error(path + ": not a Parquet file (" + one_line(opened.status()) + ")");
    reader = std::move(*opened);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path + ": not a Parquet file (" + e.what() + ")");
  }
  try {
    auto table = reader->ReadTable();
    if (!table.ok()) throw Error(path + ": cannot read Parquet (" + one_line(table.status()) + ")");
    return *std::move(table);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(path + ": cannot read Parquet (" + e.what() + ")");
  }
}

}  // namespace

bool parquet_available() { return true; }

std::vector<nlohmann::ordered_json> read_parquet_rows(const std::string& path) {
  const std::shared_ptr<arrow::Table> table = read_table(path);
  const arrow::Schema& schema = *table->schema();
  for (const auto& field : schema.fields()) {
    std::string bad;
    if (!json_type(*field->type(), bad))
      throw Error(path + ": column '" + field->name() + "' holds " + bad +
                  " values, which r1kit cannot turn into JSON (cast the column, or convert the file to JSONL)");
  }

  // Column by column, so each row object gets its keys in schema order.
  std::vector<Json> rows(static_cast<size_t>(table->num_rows()), Json::object());
  for (int c = 0; c < table->num_columns(); ++c) {
    const std::string& name = schema.field(c)->name();
    int64_t row0 = 0;  // row of the chunk's first value
    for (const auto& chunk : table->column(c)->chunks()) {
      for (int64_t i = 0; i < chunk->length(); ++i) {
        const Where w{path, name, row0 + i};
        rows[static_cast<size_t>(row0 + i)][name] = value_at(*chunk, i, w);
      }
      row0 += chunk->length();
    }
  }
  return rows;
}

#endif

}  // namespace r1kit
