// glibc malloc settings for a process that allocates and frees tensors of many megabytes every
// step (activations, gradients, attention scores), as a fine-tuning loop does.
#pragma once

namespace lorascope {

// Raises glibc's mmap threshold to 32 MiB (its maximum) and its trim threshold to 512 MiB, so
// freed tensor buffers stay in the heap for the next step instead of being unmapped and
// page-faulted back in. Leaves malloc alone when the user set it up (GLIBC_TUNABLES naming
// glibc.malloc, or any MALLOC_*_ variable) and on other C libraries. Returns whether it changed
// anything.
bool tune_malloc_for_tensors();

}  // namespace lorascope
