// Muon for the hidden 2-D matrices, AdamW for everything else (embeddings, norms, biases,
// heads), as practical Muon is used: one step(), one learning-rate factor, one state dict
// ("muon.*" and "adamw.*"). Which tensor goes where is the caller's choice; split_for_muon()
// gives the usual default.
#pragma once

#include <memory>

#include "optim/adamw.h"
#include "optim/muon.h"

namespace lorascope {

struct ParamSplit {
  std::vector<at::Tensor> muon;
  std::vector<at::Tensor> adamw;
};
// 2-D tensors to Muon, the rest to AdamW.
ParamSplit split_for_muon(const std::vector<at::Tensor>& params);

class Hybrid : public Optimizer {
 public:
  Hybrid(ParamSplit split, MuonOptions muon, AdamWOptions adamw);
  void step() override;
  std::string name() const override { return "hybrid"; }
  void set_lr_factor(double factor) override;
  TensorDict state_dict() const override;
  void load_state_dict(const TensorDict& state) override;

  Muon& muon() { return *muon_; }
  AdamW& adamw() { return *adamw_; }

 private:
  std::unique_ptr<Muon> muon_;
  std::unique_ptr<AdamW> adamw_;
};

}  // namespace lorascope
