#include "data/matrix_json.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace lorascope {

namespace {
[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}
}  // namespace

at::Tensor json_to_vector(const nlohmann::json& j, const std::string& where, int64_t len) {
  if (!j.is_array()) fail(where, "expected a list of numbers");
  if (len >= 0 && static_cast<int64_t>(j.size()) != len) {
    fail(where, "expected " + std::to_string(len) + " numbers, got " + std::to_string(j.size()));
  }
  auto out = at::empty({static_cast<int64_t>(j.size())}, at::kDouble);
  double* p = out.data_ptr<double>();
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number()) fail(where + "[" + std::to_string(i) + "]", "expected a number");
    p[i] = j[i].get<double>();
    if (!std::isfinite(p[i])) fail(where + "[" + std::to_string(i) + "]", "expected a finite number");
  }
  return out;
}

at::Tensor json_to_matrix(const nlohmann::json& j, const std::string& where, int64_t rows,
                          int64_t cols) {
  const std::string shape = (rows >= 0 ? std::to_string(rows) : std::string("?")) + " x " +
                            (cols >= 0 ? std::to_string(cols) : std::string("?"));
  if (!j.is_array() || j.empty()) fail(where, "expected a " + shape + " matrix (list of rows)");
  if (rows >= 0 && static_cast<int64_t>(j.size()) != rows) {
    fail(where, "expected a " + shape + " matrix, got " + std::to_string(j.size()) + " rows");
  }
  const int64_t n_cols = j[0].is_array() ? static_cast<int64_t>(j[0].size()) : -1;
  if (n_cols <= 0 || (cols >= 0 && n_cols != cols)) {
    fail(where, "expected a " + shape + " matrix, row 0 has " +
                    (n_cols < 0 ? std::string("no list") : std::to_string(n_cols) + " entries"));
  }
  auto out = at::empty({static_cast<int64_t>(j.size()), n_cols}, at::kDouble);
  for (size_t i = 0; i < j.size(); ++i) {
    out[i].copy_(json_to_vector(j[i], where + "[" + std::to_string(i) + "]", n_cols));
  }
  return out;
}

nlohmann::json matrix_to_json(const at::Tensor& M) {
  auto c = M.detach().to(at::kCPU, at::kDouble).contiguous();
  nlohmann::json j = nlohmann::json::array();
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.size(0); ++i) {
    j.push_back(std::vector<double>(p + i * c.size(1), p + (i + 1) * c.size(1)));
  }
  return j;
}

}  // namespace lorascope
