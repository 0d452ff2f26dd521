// The gradient-based LoRA inits (lora.init = lora_ga, lora_ga_peft, lora_one): the gradient of the
// mean training loss with respect to each adapted base weight W, over the first
// lora.init_batches micro-batches of the first epoch (in training order, eval mode: no dropout,
// so it is a function of the base, the data and the seed only), handed to
// apply_gradient_lora_init (models/lora.h). LoRA-GA's and LoRA-One's authors average it over 8
// and 64 batches; lora.init_batches sets how many here.
//
// Because it is deterministic, a resumed run recomputes it in setup, and the base fingerprint
// (checkpoint.h) then confirms that the corrected base is the one the checkpoint trained on.
// Every data-parallel rank computes it on the same batches: the same result without a reduction.
#pragma once

#include "trainer/train_session.h"

namespace lorascope {

// Runs between attaching the adapters (placeholders, B = 0) and assigning the parameter roles;
// leaves requires_grad and every .grad as they were.
void initialize_adapters_from_gradient(Session& s);

}  // namespace lorascope
