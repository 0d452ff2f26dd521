#include "trainer/adapter_monitor.h"

namespace lorascope {

SpectralStats adapter_stats(const AdapterRef& adapter) {
  auto sv = to_vector(chain_singular_values({adapter.B.detach().to(at::kCPU, at::kDouble).contiguous(),
                                             adapter.A.detach().to(at::kCPU, at::kDouble).contiguous()}));
  for (auto& s : sv) s *= std::abs(adapter.scaling);
  return stats_from_sv(std::move(sv));
}

nlohmann::json adapter_spectra(const std::vector<AdapterRef>& adapters) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& a : adapters) {
    const auto st = adapter_stats(a);
    out[a.name] = {{"sv", st.sv}, {"erank", st.erank}, {"stable_rank", st.stable_rank}, {"fro", st.fro}};
  }
  return out;
}

}  // namespace lorascope
