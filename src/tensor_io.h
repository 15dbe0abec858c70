// safetensors <-> at::Tensor. Views in a mapped file are copied (they need not be aligned);
// tensors to write are made contiguous on the CPU first and must outlive the write call.
// FP8 (F8_E4M3 / F8_E5M2) maps to torch's float8 types; nothing is converted here
// (dequantisation with block scales is the model loader's job).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "src/safetensors.h"

namespace r1kit {

at::ScalarType to_scalar_type(Dtype dtype);
Dtype to_dtype(at::ScalarType type);  // throws r1kit::Error for types safetensors lacks
// A new CPU tensor holding the view's data.
at::Tensor to_tensor(const TensorView& view);
// `cpu_contiguous` must be a contiguous CPU tensor that outlives the returned record.
TensorToWrite to_write(const std::string& name, const at::Tensor& cpu_contiguous);

}  // namespace r1kit
