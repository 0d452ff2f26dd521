// Online adapter geometry (models/adapter_geometry.h) for the trainer's monitor steps. It keeps,
// per adapter, the frozen base weight's SVD (computed at the first observation; W must not
// change afterwards) and the previous observation's delta W singular subspaces, and returns the
// fields that join each adapter's entry in metrics.jsonl's "adapters" record:
//   "align_left", "align_right"    mean cos^2 of the principal angles between delta W's left
//                                  (right) singular subspace and W's top-k one (null at B = 0)
//   "angles_left", "angles_right"  those principal angles, radians, ascending
//   "intruders", "intruder_sv"     intruder dimensions among W + delta W's top singular vectors,
//                                  and the largest one's singular value (null when none)
//   "drift_left", "drift_right"    largest principal angle between this observation's column
//                                  (row) space of delta W and the previous one's (null at the
//                                  first observation, and while delta W is zero)
//   "sv_entropy"                   entropy of sigma_i / sum(sigma): the log of "erank"
// Memory: the cached SVDs, (m + n + 1) p float64 values per adapter (cached_bytes()); with
// base_dtype = at::kFloat (monitor.base_svd_dtype=float32) U and V are kept in float32, (m + n) p
// float32 + p float64, and cast back to float64 one adapter at a time while it is observed.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "models/adapter_geometry.h"

namespace lorascope {

struct GeometryInput {
  std::string name;  // the adapter's module path, its key in "adapters"
  at::Tensor W;      // frozen base weight (out, in)
  at::Tensor A, B;   // lora_A (r, in), lora_B (out, r)
  double scaling = 1;
};

class GeometryMonitor {
 public:
  explicit GeometryMonitor(GeometryOptions options, at::ScalarType base_dtype = at::kDouble)
      : options_(options), base_dtype_(base_dtype) {}
  // {"<name>": {fields above}, ...}
  nlohmann::json observe(const std::vector<GeometryInput>& adapters);
  size_t cached_bytes() const;

 private:
  GeometryOptions options_;
  at::ScalarType base_dtype_;
  std::map<std::string, BaseSpectrum> bases_;
  std::map<std::string, LowRankSvd> previous_;
};

// Adds each adapter's geometry fields to its entry of a record's "adapters" object.
void merge_geometry(nlohmann::json& adapters, const nlohmann::json& geometry);

}  // namespace lorascope
