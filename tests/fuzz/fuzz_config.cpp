// libFuzzer target: the config loader (trainer/config.h) with the LibTorch-free schemas of
// rank-accuracy and pretrained-mf and their cross-key checks. Input: a JSON document, then
// optionally a NUL byte and --set overrides, one per line. Bad input must end in ConfigError
// (exit code 2 in the CLI); any other exception or a crash is a bug.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/pretrained_mf_schema.h"
#include "trainer/rank_accuracy_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorascope;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  std::vector<std::string> sets;
  if (nul != std::string::npos) {
    std::stringstream lines(input.substr(nul + 1));
    for (std::string line; std::getline(lines, line);) sets.push_back(line);
  }
  const auto doc = nlohmann::json::parse(input.substr(0, nul), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;  // resolve_runs reports it as "not valid JSON"
  try {
    for (const auto& run : resolve_runs_json(doc, "fuzz", sets, rank_accuracy_schema(),
                                             check_rank_accuracy_config)) {
      (void)RankAccuracyConfig::from_json(run.config);
    }
  } catch (const ConfigError&) {
  }
  try {
    for (const auto& run : resolve_runs_json(doc, "fuzz", sets, pretrained_mf_schema(),
                                             check_pretrained_mf_config)) {
      (void)PretrainedMFConfig::from_json(run.config);
    }
  } catch (const ConfigError&) {
  }
  return 0;
}
