// safetensors files: read (mmap, zero-copy views), write (atomic), HF model directories.
// Layout (huggingface/safetensors, the reference): u64 little-endian N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
// buffer the offsets index. Reading validates all a truncated or hostile file can get wrong
// and throws r1kit::Error naming file and tensor; it never reads outside the mapping (but a
// file truncated by someone else WHILE mapped faults, as any mmap reader does).
// Deviations: gaps between tensors are accepted (harmless; the reference rejects them), and
// dtypes outside Dtype (U16, F8_E8M0, F4...) are refused. Not done: big-endian, conversion.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit {

enum class Dtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

// "F32", "BF16", "F8_E4M3", ...: the names the safetensors header uses.
const char* dtype_name(Dtype dtype);
// Inverse of dtype_name; throws r1kit::Error listing the known names for anything else.
Dtype dtype_from_name(std::string_view name);
// Bytes per element: 8, 4, 2 or 1 (BOOL is one byte).
size_t dtype_size(Dtype dtype);

// One tensor of a mapped file; `data` points into the mapping and lives as long as the
// SafetensorsFile. It is NOT necessarily aligned to the element size: copy, don't cast,
// unless you checked.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;  // [] for a scalar
  const uint8_t* data = nullptr;
  size_t nbytes = 0;  // product(shape) * dtype_size(dtype)
};

// Elements in `shape` (1 for a scalar).
int64_t shape_numel(const std::vector<int64_t>& shape);

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates the header. Throws r1kit::Error.
  static SafetensorsFile open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  // Sorted by name.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The header's "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  void unmap() noexcept;

  std::string path_;
  void* map_ = nullptr;  // the whole file, PROT_READ
  size_t map_bytes_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face model directory: `model.safetensors`, or `model.safetensors.index.json`
// ({"weight_map": {name: shard}}) and its shards. When both exist the single file wins,
// as in transformers. Tensors of a shard that the weight map does not list are not visible.
class ModelWeights {
 public:
  static ModelWeights open(const std::string& dir);

  const TensorView* find(std::string_view name) const;  // nullptr when absent
  // Throws r1kit::Error "DIR: no tensor 'NAME'" when absent: for model loaders.
  const TensorView& at(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;  // sorted
  const std::string& dir() const { return dir_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  // Points into files_[i].tensors(): stable because neither vector changes after open().
  std::map<std::string, const TensorView*, std::less<>> by_name_;
};

struct TensorToWrite {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // nbytes of little-endian, row-major elements
  size_t nbytes = 0;
};

// Writes atomically (AtomicFile). Tensors are laid out in name order; the header is padded
// with spaces to a multiple of 8 bytes, as the reference writer does, so every tensor starts
// 8-byte aligned in the file. Throws r1kit::Error on a duplicate name or nbytes that does
// not match the shape.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// transformers' default max_shard_size ("5GB").
constexpr size_t kDefaultMaxShardBytes = 5'000'000'000;

// `dir`/model.safetensors when the tensors total at most max_shard_bytes, otherwise
// `dir`/model-0000i-of-0000N.safetensors + model.safetensors.index.json (metadata.total_size,
// weight_map), filled in name order, a new shard when the next tensor would not fit (a tensor
// bigger than the limit gets a shard of its own), as transformers' save_pretrained does.
// Files of the other layout left from an earlier save are removed afterwards, so
// ModelWeights::open never sees stale weights. Each file is atomic; the set is not.
// metadata {"format": "pt"}: transformers refuses safetensors files without it.
void write_model_weights(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                         size_t max_shard_bytes = kDefaultMaxShardBytes,
                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace r1kit
