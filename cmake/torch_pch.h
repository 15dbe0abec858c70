// The one precompiled header of the LibTorch targets (cmake/r1kit.cmake, r1kit_torch_pch).
// Only here may the heavy LibTorch headers be included wholesale: the PCH is parsed once.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/embedding.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
#include <nlohmann/json.hpp>
#include <fmt/format.h>
#include <string>
#include <vector>
#include <memory>
#include <optional>
