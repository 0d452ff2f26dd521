// TensorDict files (optimizer state, factor snapshots) in LibTorch's archive format.
// Writes go to a temporary file that is renamed into place, so an interrupted save never
// replaces a good file with a torn one.
#pragma once

#include <string>

#include "optim/optimizer.h"

namespace lorascope {

void save_tensor_dict(const TensorDict& dict, const std::string& path);
// Throws std::runtime_error naming the path if it is missing or not a tensor archive.
TensorDict load_tensor_dict(const std::string& path);

}  // namespace lorascope
