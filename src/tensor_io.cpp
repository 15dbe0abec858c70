// tensor_io (see tensor_io.h).
#include "src/tensor_io.h"

#include <ATen/ATen.h>

#include <cstring>

#include "src/error.h"

namespace r1kit {

at::ScalarType to_scalar_type(Dtype d) {
  switch (d) {
    case Dtype::F64:
      return at::kDouble;
    case Dtype::F32:
      return at::kFloat;
    case Dtype::F16:
      return at::kHalf;
    case Dtype::BF16:
      return at::kBFloat16;
    case Dtype::I64:
      return at::kLong;
    case Dtype::I32:
      return at::kInt;
    case Dtype::I16:
      return at::kShort;
    case Dtype::I8:
      return at::kChar;
    case Dtype::U8:
      return at::kByte;
    case Dtype::BOOL:
      return at::kBool;
    case Dtype::F8_E4M3:
      return at::kFloat8_e4m3fn;
    case Dtype::F8_E5M2:
      return at::kFloat8_e5m2;
  }
  throw Error("unhandled safetensors dtype");
}

Dtype to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return Dtype::F64;
    case at::kFloat:
      return Dtype::F32;
    case at::kHalf:
      return Dtype::F16;
    case at::kBFloat16:
      return Dtype::BF16;
    case at::kLong:
      return Dtype::I64;
    case at::kInt:
      return Dtype::I32;
    case at::kShort:
      return Dtype::I16;
    case at::kChar:
      return Dtype::I8;
    case at::kByte:
      return Dtype::U8;
    case at::kBool:
      return Dtype::BOOL;
    case at::kFloat8_e4m3fn:
      return Dtype::F8_E4M3;
    case at::kFloat8_e5m2:
      return Dtype::F8_E5M2;
    default:
      throw Error(std::string("tensor dtype ") + c10::toString(t) + " has no safetensors name");
  }
}

at::Tensor to_tensor(const TensorView& view) {
  at::Tensor t = at::empty(view.shape, at::TensorOptions().dtype(to_scalar_type(view.dtype)));
  if (view.nbytes > 0) std::memcpy(t.data_ptr(), view.data, view.nbytes);
  return t;
}

TensorToWrite to_write(const std::string& name, const at::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "to_write: ", name, " must be contiguous on the CPU");
  TensorToWrite w;
  w.name = name;
  w.dtype = to_dtype(t.scalar_type());
  w.shape = t.sizes().vec();
  w.data = t.data_ptr();
  w.nbytes = t.nbytes();
  return w;
}

}  // namespace r1kit
