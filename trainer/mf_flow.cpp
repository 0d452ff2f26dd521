#include "trainer/mf_flow.h"

#include <stdexcept>

#include "models/factorization.h"
#include "optim/muon.h"
#include "optim/orthogonalize.h"

namespace lorascope {

VectorField mf_flow_field(const nlohmann::json& optim, const at::Tensor& Y) {
  const std::string name = optim.at("name");
  const bool spectral = name == "specgd" || name == "muon";
  if (!spectral && name != "gd" && name != "sgd") {
    throw std::invalid_argument("mf flow: no vector field for optim.name=" + name);
  }
  OrthoOptions ortho;
  ortho.kind = parse_ortho_kind(optim.at("orthogonalizer"));
  ortho.beta = optim.at("beta");
  ortho.ns_steps = optim.at("ns_steps");
  const LrScaling scaling = parse_lr_scaling(optim.at("lr_scaling"));
  return [=](double, const FlowState& S) {
    // Detached aliases: the analytic gradients land on them, not on the integrator's state.
    std::vector<at::Tensor> factors;
    for (const auto& s : S) factors.push_back(s.detach());
    Factorization F(std::move(factors));
    F.loss_and_grad(Y);
    FlowState dS;
    for (const auto& f : F.factors()) {
      const auto& g = f.grad();
      dS.push_back(spectral ? orthogonalize(g, ortho) * -muon_lr_scale(f.size(0), f.size(1), scaling)
                            : -g);
    }
    return dS;
  };
}

}  // namespace lorascope
