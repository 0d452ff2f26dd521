// Loaders of record files whose errors name FILE:LINE (GLUE TSV, Alpaca JSON / JSONL), and the
// file helpers every dataset loader shares. Internal to data/: callers use text_datasets.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "data/text_datasets.h"

namespace lorascope {

// skipped counts the malformed records left out when options.skip_malformed.
TextDataset load_glue_tsv(const std::filesystem::path& path, const LoadOptions& options,
                          int64_t& skipped);
TextDataset load_alpaca(const std::filesystem::path& path, const LoadOptions& options,
                        int64_t& skipped);

// Throw std::runtime_error naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace lorascope
