// NorMuon (Li, Liu, Liang, Chen, Zhao 2025, "NorMuon: Making Muon more efficient and scalable",
// arXiv 2510.05491, Algorithm 1): Muon followed by a row-wise (per output neuron) second-moment
// normalization of the orthogonalized update, for a rows x cols parameter (rows = m, cols = n):
//
//   O_t     = T(momentum direction)                       Muon's direction (muon.h)
//   v_t     = beta2 v_{t-1} + (1 - beta2) mean_cols(O_t * O_t)     v in R^m, v_0 = 0
//   Ohat_t  = O_t / (sqrt(v_t) + eps)                      (v_t broadcast along each row)
//   paper:          D_t = 0.2 sqrt(m n) / ||Ohat_t||_F * Ohat_t         (update RMS 0.2, as AdamW's)
//   preserve_norm:  D_t = ||O_t||_F / ||Ohat_t||_F * Ohat_t             (the authors' normuon.py)
//   W_{t+1} = (1 - lr wd) W_t - lr scale(W) D_t
//
// The paper states the rescaling as a learning rate eta_hat = 0.2 eta sqrt(mn) / ||Ohat||_F; the
// reference code (ShizukaKuze/NorMuon normuon.py) instead keeps ||O||_F and multiplies by
// sqrt(max(1, m/n)) (Muon's "original" lr scaling, lr_scaling here). scale(W) is Muon's
// lr_scaling and applies in both modes; with the paper's rescaling it should be "none".
// There is no bias correction of v (as in both). Momentum follows muon_direction() (sum form;
// the row normalisation is invariant to the scale of O, so the paper's EMA gives the same update).
//
// For LoRA factors: A (r, in) after exact orthogonalization has orthonormal rows, so every row
// mean is 1/in and the normalisation only rescales; on B (out, r) the rows differ and it acts.
#pragma once

#include "optim/muon.h"

namespace lorascope {

enum class NorMuonRescale { Paper, PreserveNorm };
NorMuonRescale parse_normuon_rescale(const std::string& name);  // "paper" | "preserve_norm"

struct NorMuonOptions {
  double beta2 = 0.95;  // the paper's and the reference code's default
  double eps = 1e-8;    // paper; the reference code uses 1e-10
  NorMuonRescale rescale = NorMuonRescale::Paper;
};

// D_t from O_t, advancing the row second moment v (m, 1) in place (undefined = first step).
at::Tensor normuon_normalize(const at::Tensor& O, at::Tensor& v, const NorMuonOptions& options);

class NorMuon : public Optimizer {
 public:
  NorMuon(std::vector<at::Tensor> params, MuonOptions muon, NorMuonOptions normuon);
  void step() override;
  std::string name() const override { return "normuon"; }
  // Adds "param.<i>.row_second_moment" (rows, 1) to the momentum buffers of the base class.
  TensorDict state_dict() const override;
  void load_state_dict(const TensorDict& state) override;

 private:
  MuonOptions muon_;
  NorMuonOptions normuon_;
  std::vector<at::Tensor> momentum_, row_second_moment_;
};

}  // namespace lorascope
