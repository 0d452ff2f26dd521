// `lorascope analyze`: what the adapters of finished fine-tuning runs did to the weights they
// modify. A run directory holds config.json, whose "base" names the base model (a Hugging Face
// checkpoint directory or a `lorascope pretrain` run), and adapter/ (the PEFT export written at
// the end of finetune, models/peft_adapter.h). Per adapted layer: delta W's spectrum, its
// alignment with W and the intruder dimensions of W + delta W (models/adapter_geometry.h), and
// the ESD power-law alpha of W and of W + delta W (models/esd_alpha.h); across two runs of one
// base, the LoRA paper's subspace similarity phi(i, j) (models/principal_angles.h).
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "models/adapter_geometry.h"

namespace lorascope {

struct AdapterLayer {
  std::string module;  // Hugging Face module path, as in the adapter's tensor names
  at::Tensor W;        // base weight (out, in), as stored
  at::Tensor A, B;     // lora_A (r, in), lora_B (out, r)
  double scaling = 1;
};

struct RunAdapters {
  std::string dir, name;
  std::string base;          // as config.json names it
  std::string base_resolved; // canonical path, for comparing runs
  int64_t r = 0;
  std::vector<AdapterLayer> layers;  // sorted by module path
};

// Throws ConfigError naming the file and key for anything missing or malformed.
RunAdapters load_run_adapters(const std::string& run_dir);
// Throws ConfigError with one line naming the first mismatch (base, r, module set, shapes).
void check_comparable(const RunAdapters& a, const RunAdapters& b);

nlohmann::json analyze_layer(const AdapterLayer& layer, const GeometryOptions& options);
// {"run", "dir", "base", "r", "layers": [analyze_layer...], "history": geometry_history(dir)}
nlohmann::json analyze_run(const RunAdapters& run, const GeometryOptions& options);
// Per common layer: "phi_A" (r x r grid over lora_A's right singular vectors, the LoRA paper's
// Fig. 3) and "phi_B" (over lora_B's left singular vectors).
nlohmann::json compare_runs(const RunAdapters& a, const RunAdapters& b);
// The adapters' geometry fields over training from RUN/metrics.jsonl, when the monitor logged
// them: {"steps": [...], "adapters": {NAME: {FIELD: [... per step, null where absent]}}};
// an empty object when no record has them.
nlohmann::json geometry_history(const std::string& run_dir);
// ESD alpha of every 2-D floating-point tensor of a safetensors file.
nlohmann::json analyze_weights_file(const std::string& path);

}  // namespace lorascope
