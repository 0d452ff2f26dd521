// Reading matrices and vectors from JSON (nested lists of numbers), with errors that name the
// file, the key and the expected shape. Used for user-supplied targets and initial factors.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

#include "util/json_file.h"  // matrices are read from files: read_json_file

namespace lorascope {

// Throws std::runtime_error("FILE: KEY: expected ...") on any mismatch. rows/cols < 0 = any.
at::Tensor json_to_matrix(const nlohmann::json& j, const std::string& where, int64_t rows = -1,
                          int64_t cols = -1);
at::Tensor json_to_vector(const nlohmann::json& j, const std::string& where, int64_t len = -1);
nlohmann::json matrix_to_json(const at::Tensor& M);

}  // namespace lorascope
