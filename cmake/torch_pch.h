// The one precompiled header of the LibTorch targets (cmake/r1kit.cmake, r1kit_torch_pch).
// Only here may the heavy LibTorch headers be included wholesale: the PCH is parsed once.
#pragma once
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
