// LibTorch starts with one intra-op thread on Debian; lorascope uses every core unless told.
#pragma once

namespace lorascope {

// requested <= 0 means the machine's core count. Returns the number set.
int configure_threads(int requested);

}  // namespace lorascope
