#include "optim/state_io.h"

#include <torch/serialize.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace lorascope {

void save_tensor_dict(const TensorDict& dict, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& [key, tensor] : dict) archive.write(key, tensor.detach().cpu());
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  std::filesystem::rename(tmp, path);
}

TensorDict load_tensor_dict(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such file");
  TensorDict dict;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    for (const auto& key : archive.keys()) {
      at::Tensor t;
      archive.read(key, t);
      dict[key] = t;
    }
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable tensor archive (" +
                             std::string(e.what_without_backtrace()) + ")");
  }
  return dict;
}

}  // namespace lorascope
