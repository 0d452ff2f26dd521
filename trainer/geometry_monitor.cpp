#include "trainer/geometry_monitor.h"

#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not in <ATen/ATen.h> from LibTorch 2 on)
#include <cmath>

#include "models/spectral_stats.h"

namespace lorascope {

using nlohmann::json;

namespace {
json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json largest(const at::Tensor& angles) {
  return angles.numel() ? json(angles.max().item<double>()) : json(nullptr);
}
}  // namespace

json GeometryMonitor::observe(const std::vector<GeometryInput>& adapters) {
  at::NoGradGuard no_grad;
  json out = json::object();
  for (const auto& a : adapters) {
    auto it = bases_.find(a.name);
    if (it == bases_.end()) it = bases_.emplace(a.name, base_spectrum(a.W, base_dtype_)).first;
    const AdapterGeometry g = adapter_geometry(it->second, a.B, a.A, a.scaling, options_);
    const double erank = effective_rank(to_vector(g.delta.S));
    json f = {{"align_left", number_or_null(g.align_left)},
              {"align_right", number_or_null(g.align_right)},
              {"angles_left", to_vector(g.angles_left)},
              {"angles_right", to_vector(g.angles_right)},
              {"intruders", g.intruders.count},
              {"intruder_sv", g.intruders.count ? json(g.intruders.max_sv) : json(nullptr)},
              {"sv_entropy", erank > 0 ? json(std::log(erank)) : json(nullptr)},
              {"drift_left", nullptr},
              {"drift_right", nullptr}};
    const auto prev = previous_.find(a.name);
    if (prev != previous_.end() && prev->second.rank > 0 && g.delta.rank > 0) {
      const auto d = subspace_drift(prev->second, g.delta);
      f["drift_left"] = largest(d.left);
      f["drift_right"] = largest(d.right);
    }
    previous_[a.name] = g.delta;
    out[a.name] = std::move(f);
  }
  return out;
}

size_t GeometryMonitor::cached_bytes() const {
  size_t bytes = 0;
  for (const auto& [name, b] : bases_) {
    for (const auto* t : {&b.U, &b.S, &b.V}) bytes += static_cast<size_t>(t->numel()) * t->element_size();
  }
  return bytes;
}

void merge_geometry(json& adapters, const json& geometry) {
  for (const auto& [name, fields] : geometry.items()) {
    for (const auto& [key, value] : fields.items()) adapters[name][key] = value;
  }
}

}  // namespace lorascope
