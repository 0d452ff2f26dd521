#include "trainer/adapter_monitor.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

namespace lorascope {

SpectralStats adapter_stats(const AdapterRef& adapter) {
  auto sv = to_vector(chain_singular_values({adapter.B.detach().to(at::kCPU, at::kDouble).contiguous(),
                                             adapter.A.detach().to(at::kCPU, at::kDouble).contiguous()}));
  for (auto& s : sv) s *= std::abs(adapter.scaling);
  return stats_from_sv(std::move(sv));
}

std::vector<std::vector<double>> adapter_singular_values(const std::vector<AdapterRef>& adapters,
                                                         bool batched) {
  std::vector<std::vector<double>> out(adapters.size());
  if (!batched) {
    for (size_t i = 0; i < adapters.size(); ++i) out[i] = adapter_stats(adapters[i]).sv;
    return out;
  }
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const auto& a = adapters[i];
    groups[c10::str(a.B.sizes(), a.A.sizes(), a.A.device())].push_back(i);
  }
  std::vector<at::Tensor> parts;
  std::vector<size_t> order;
  for (const auto& [key, members] : groups) {
    std::vector<at::Tensor> Bs, As;
    for (size_t i : members) {
      Bs.push_back(adapters[i].B.detach());
      As.push_back(adapters[i].A.detach());
    }
    parts.push_back(chain_singular_values_on_device({at::stack(Bs), at::stack(As)}).reshape({-1}));
    order.insert(order.end(), members.begin(), members.end());
  }
  const auto host = at::cat(parts).cpu();  // the one device-to-host transfer
  const double* v = host.data_ptr<double>();
  for (size_t i : order) {
    const int64_t r = std::min(adapters[i].B.size(1), std::min(adapters[i].B.size(0), adapters[i].A.size(1)));
    out[i].assign(v, v + r);
    for (auto& s : out[i]) s *= std::abs(adapters[i].scaling);
    v += r;
  }
  return out;
}

nlohmann::json adapter_spectra(const std::vector<AdapterRef>& adapters) {
  nlohmann::json out = nlohmann::json::object();
  const bool on_device = !adapters.empty() && !adapters.front().A.device().is_cpu();
  const auto svs = adapter_singular_values(adapters, on_device);
  for (size_t i = 0; i < adapters.size(); ++i) {
    const auto& a = adapters[i];
    const auto st = stats_from_sv(svs[i]);
    out[a.name] = {{"sv", st.sv}, {"erank", st.erank}, {"stable_rank", st.stable_rank}, {"fro", st.fro}};
  }
  return out;
}

}  // namespace lorascope
