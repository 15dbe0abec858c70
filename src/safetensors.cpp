// safetensors read/write and HF model directories: see safetensors.h.
#include "src/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "src/atomic_file.h"
#include "src/config.h"
#include "src/error.h"
#include "src/files.h"

namespace r1kit {

// The header stores raw little-endian bytes and we hand them out unconverted.
static_assert(std::endian::native == std::endian::little, "r1kit: little-endian hosts only");

namespace {

namespace fs = std::filesystem;

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {Dtype::F64, "F64", 8}, {Dtype::F32, "F32", 4},   {Dtype::F16, "F16", 2},         {Dtype::BF16, "BF16", 2},
    {Dtype::I64, "I64", 8}, {Dtype::I32, "I32", 4},   {Dtype::I16, "I16", 2},         {Dtype::I8, "I8", 1},
    {Dtype::U8, "U8", 1},   {Dtype::BOOL, "BOOL", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
};

// The reference implementation refuses headers over 100 MB; so do we, before parsing.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const DtypeInfo* lookup_dtype(std::string_view name) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const DtypeInfo& d : kDtypes) out += std::string(out.empty() ? "" : ", ") + d.name;
  return out;
}

// A JSON value for an error message, cut short so a hostile header cannot flood stderr.
std::string brief(const Json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON integer >= 0 that fits in uint64 (floats like 2.0 are not offsets or dims).
bool as_size(const Json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// product(shape) * elem_size, or false on overflow.
bool byte_count(const std::vector<int64_t>& shape, size_t elem_size, size_t& out) {
  size_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<size_t>(d), &n)) return false;
  }
  out = n;
  return true;
}

// One header entry -> TensorView; `buffer` is the data after the header.
TensorView parse_entry(const std::string& path, const std::string& name, const Json& entry, const uint8_t* buffer,
                       size_t buffer_bytes) {
  const std::string where = path + ": tensor '" + name + "'";
  if (!entry.is_object()) {
    throw Error(where + ": expected {dtype, shape, data_offsets}, got " + brief(entry));
  }
  TensorView t;
  t.name = name;

  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) throw Error(where + ": dtype missing or not a string");
  const DtypeInfo* info = lookup_dtype(dt->get_ref<const std::string&>());
  if (info == nullptr) {
    throw Error(where + ": unknown dtype " + brief(*dt) + " (known: " + known_dtypes() + ")");
  }
  t.dtype = info->dtype;

  auto sh = entry.find("shape");
  if (sh == entry.end() || !sh->is_array()) throw Error(where + ": shape missing or not an array");
  for (const Json& d : *sh) {
    uint64_t dim = 0;
    if (!as_size(d, dim) || dim > static_cast<uint64_t>(INT64_MAX)) {
      throw Error(where + ": shape must hold non-negative integers, got " + brief(*sh));
    }
    t.shape.push_back(static_cast<int64_t>(dim));
  }

  auto off = entry.find("data_offsets");
  uint64_t begin = 0, end = 0;
  if (off == entry.end() || !off->is_array() || off->size() != 2 || !as_size((*off)[0], begin) ||
      !as_size((*off)[1], end) || begin > end) {
    throw Error(where + ": data_offsets must be [begin, end] with 0 <= begin <= end, got " +
                (off == entry.end() ? std::string("nothing") : brief(*off)));
  }
  if (end > buffer_bytes) {
    throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] run past the end of the data buffer (" + std::to_string(buffer_bytes) + " bytes)");
  }
  size_t expected = 0;
  if (!byte_count(t.shape, info->size, expected)) {
    throw Error(where + ": shape " + shape_text(t.shape) + " is too large");
  }
  if (end - begin != expected) {
    throw Error(where + ": data_offsets span " + std::to_string(end - begin) + " bytes but shape " +
                shape_text(t.shape) + " of " + info->name + " needs " + std::to_string(expected));
  }
  t.data = buffer + begin;
  t.nbytes = expected;
  return t;
}

// Two tensors sharing bytes would alias silently; zero-size tensors own no bytes.
void check_no_overlap(const std::string& path, const std::vector<TensorView>& tensors) {
  std::vector<const TensorView*> by_offset;
  for (const TensorView& t : tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorView& a = *by_offset[i - 1];
    const TensorView& b = *by_offset[i];
    if (b.data < a.data + a.nbytes) {
      throw Error(path + ": tensors '" + a.name + "' and '" + b.name + "' overlap in the data buffer");
    }
  }
}

}  // namespace

const char* dtype_name(Dtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

Dtype dtype_from_name(std::string_view name) {
  const DtypeInfo* info = lookup_dtype(name);
  if (info == nullptr) {
    throw Error("unknown safetensors dtype '" + std::string(name) + "' (known: " + known_dtypes() + ")");
  }
  return info->dtype;
}

size_t dtype_size(Dtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- SafetensorsFile ------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(path + ": " + std::to_string(size) +
                " bytes is too short for a safetensors file (it starts with an 8-byte header length)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(err));
  f.map_ = map;  // from here on f's destructor unmaps, whatever throws below
  f.map_bytes_ = size;

  const auto* base = static_cast<const uint8_t*>(map);
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= static_cast<uint64_t>(base[i]) << (8 * i);
  if (header_bytes > size - 8) {
    throw Error(path + ": header length " + std::to_string(header_bytes) + " runs past the end of the file (" +
                std::to_string(size) + " bytes)");
  }
  if (header_bytes > kMaxHeaderBytes) {
    throw Error(path + ": header length " + std::to_string(header_bytes) + " is over the " +
                std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  const char* text = reinterpret_cast<const char*>(base + 8);
  Json header;
  try {
    header = Json::parse(text, text + header_bytes);
  } catch (const Json::exception& e) {
    std::string msg = e.what();
    const auto pos = msg.find("] ");
    throw Error(path + ": header is not valid JSON: " + (pos == std::string::npos ? msg : msg.substr(pos + 2)));
  }
  if (!header.is_object()) {
    throw Error(path + ": header is not a JSON object but " + std::string(header.type_name()));
  }

  const uint8_t* buffer = base + 8 + header_bytes;
  const size_t buffer_bytes = size - 8 - header_bytes;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw Error(path + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          throw Error(path + ": __metadata__." + m.key() + " is not a string but " + std::string(m->type_name()));
        }
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    f.tensors_.push_back(parse_entry(path, it.key(), it.value(), buffer, buffer_bytes));
  }
  check_no_overlap(path, f.tensors_);
  std::sort(f.tensors_.begin(), f.tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  return f;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

// TensorView::data points into the mapping, whose address does not change on a move.
SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

// ---- ModelWeights ---------------------------------------------------------------------

ModelWeights ModelWeights::open(const std::string& dir) {
  ModelWeights w;
  w.dir_ = dir;
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  if (fs::exists(single)) {
    w.files_.push_back(SafetensorsFile::open(single));
    for (const TensorView& t : w.files_[0].tensors()) w.by_name_[t.name] = &t;
    return w;
  }
  if (!fs::exists(index)) {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  const Json j = read_json_file(index);
  const Json* map = j.is_object() && j.contains("weight_map") ? &j["weight_map"] : nullptr;
  if (map == nullptr || !map->is_object()) {
    throw Error(index + ": weight_map missing or not an object");
  }
  std::set<std::string> shards;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it->is_string()) throw Error(index + ": weight_map." + it.key() + " is not a file name");
    shards.insert(it->get<std::string>());
  }
  std::map<std::string, size_t> shard_pos;
  for (const std::string& shard : shards) {
    const std::string shard_path = (fs::path(dir) / shard).string();
    if (!fs::exists(shard_path)) {
      throw Error(index + ": shard '" + shard + "' in weight_map is missing (" + shard_path + ")");
    }
    shard_pos[shard] = w.files_.size();
    w.files_.push_back(SafetensorsFile::open(shard_path));
  }
  // files_ is complete: pointers into it are stable from here on.
  for (auto it = map->begin(); it != map->end(); ++it) {
    const std::string& shard = it->get_ref<const std::string&>();
    const TensorView* t = w.files_[shard_pos.at(shard)].find(it.key());
    if (t == nullptr) {
      throw Error(index + ": weight_map puts '" + it.key() + "' in '" + shard + "', which has no such tensor");
    }
    w.by_name_[it.key()] = t;
  }
  return w;
}

const TensorView* ModelWeights::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& ModelWeights::at(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) throw Error(dir_ + ": no tensor '" + std::string(name) + "'");
  return *t;
}

std::vector<std::string> ModelWeights::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& kv : by_name_) out.push_back(kv.first);
  return out;
}

// ---- writing --------------------------------------------------------------------------

namespace {

// Sorted by name; rejects duplicates, the reserved name and nbytes that disagree with shape.
std::vector<const TensorToWrite*> checked_order(const std::string& where, const std::vector<TensorToWrite>& tensors) {
  std::vector<const TensorToWrite*> order;
  for (const TensorToWrite& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });
  for (size_t i = 0; i < order.size(); ++i) {
    const TensorToWrite& t = *order[i];
    const std::string what = where + ": tensor '" + t.name + "'";
    if (i > 0 && order[i - 1]->name == t.name) throw Error(what + " is given twice");
    if (t.name == "__metadata__") throw Error(what + ": the name is reserved by the format");
    size_t expected = 0;
    if (!byte_count(t.shape, dtype_size(t.dtype), expected)) {
      throw Error(what + ": bad shape " + shape_text(t.shape));
    }
    if (t.nbytes != expected) {
      throw Error(what + ": nbytes " + std::to_string(t.nbytes) + " but shape " + shape_text(t.shape) + " of " +
                  dtype_name(t.dtype) + " needs " + std::to_string(expected));
    }
    if (t.data == nullptr && t.nbytes > 0) throw Error(what + ": data is null");
  }
  return order;
}

void write_ordered(const std::string& path, const std::vector<const TensorToWrite*>& order,
                   const std::map<std::string, std::string>& metadata) {
  // ordered_json: "__metadata__" first, then tensors in layout order, for a readable header.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = std::move(meta);
  }
  size_t offset = 0;
  for (const TensorToWrite* t : order) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t->dtype);
    entry["shape"] = t->shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + t->nbytes});
    header[t->name] = std::move(entry);
    offset += t->nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {  // invalid UTF-8 in a name
    throw Error(path + ": cannot write header: " + std::string(e.what()));
  }
  // Spaces up to a multiple of 8 so the buffer, and every tensor in it, starts 8-aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  AtomicFile file(path);
  file.write(len, sizeof(len));
  file.write(text);
  for (const TensorToWrite* t : order) file.write(t->data, t->nbytes);
  file.commit();
}

bool is_shard_name(const std::string& name) {
  return name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos && name.size() > 12 &&
         name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

void remove_file(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec) throw Error(p.string() + ": cannot remove stale file: " + ec.message());
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_ordered(path, checked_order(path, tensors), metadata);
}

void write_model_weights(const std::string& dir, const std::vector<TensorToWrite>& tensors, size_t max_shard_bytes,
                         const std::map<std::string, std::string>& metadata) {
  const std::vector<const TensorToWrite*> order = checked_order(dir, tensors);
  make_dirs(dir);
  const fs::path d(dir);
  size_t total = 0;
  for (const TensorToWrite* t : order) total += t->nbytes;

  std::set<std::string> written;
  if (total <= max_shard_bytes) {
    write_ordered((d / "model.safetensors").string(), order, metadata);
    written.insert("model.safetensors");
  } else {
    // Greedy in name order: a new shard when the next tensor would overflow this one.
    std::vector<std::vector<const TensorToWrite*>> shards(1);
    size_t shard_bytes = 0;
    for (const TensorToWrite* t : order) {
      if (!shards.back().empty() && shard_bytes + t->nbytes > max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().push_back(t);
      shard_bytes += t->nbytes;
    }
    Json weight_map = Json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      write_ordered((d / name).string(), shards[i], metadata);
      written.insert(name);
      for (const TensorToWrite* t : shards[i]) weight_map[t->name] = name;
    }
    // Keys sorted and indent 2, as transformers writes it (json.dumps(sort_keys=True, indent=2)).
    const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic((d / "model.safetensors.index.json").string(), index.dump(2) + "\n");
    written.insert("model.safetensors.index.json");
  }
  // Stale files of the other layout (or an earlier shard count) would be loaded instead.
  // list_dir, not fs::directory_iterator: this runs in LibTorch-linked binaries (src/files.h).
  for (const std::string& name : list_dir(dir)) {
    const bool ours = name == "model.safetensors" || name == "model.safetensors.index.json" || is_shard_name(name);
    if (ours && !written.count(name)) remove_file(d / name);
  }
}

}  // namespace r1kit
