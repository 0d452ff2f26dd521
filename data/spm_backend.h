// The sentencepiece library behind a plugin boundary. Debian's libsentencepiece bundles its own
// protobuf-lite (3.14) and exports every symbol of it; in one symbol scope with the
// libprotobuf.so.32 that libtorch loads, one copy interposes the other and the process dies
// before main (or sentencepiece aborts on the version check). So only the plugin
// liblorascope_spm.so (data/spm/spm_module.cpp) links sentencepiece, and it is dlopen'ed with
// RTLD_LOCAL | RTLD_DEEPBIND: each library then binds to its own protobuf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lorascope {

// Every call returns "" on success, else the library's message; nothing throws across.
class SpmBackend {
 public:
  using Processor = sentencepiece::SentencePieceProcessor;
  // args: trainer flags (model_type, vocab_size, ...); every non-empty line of texts is one
  // sentence; *model_proto receives the serialized model.
  virtual std::string train(const std::vector<std::string>& texts,
                            const std::unordered_map<std::string, std::string>& args, uint32_t seed,
                            std::string* model_proto) const = 0;
  virtual std::string load(const std::string& path, std::shared_ptr<Processor>* out) const = 0;
  virtual std::string encode(const Processor& sp, const std::string& text,
                             std::vector<int>* ids) const = 0;
  virtual std::string decode(const Processor& sp, const std::vector<int>& ids,
                             std::string* text) const = 0;
  // which: 'n' piece count, 'p' pad, 'u' unk, 'b' bos, 'e' eos (-1 when the model has none).
  virtual int id(const Processor& sp, char which) const = 0;

 protected:
  ~SpmBackend() = default;
};

// Loads the plugin on first use (thread-safe): $LORASCOPE_SPM_MODULE, the build's path, then
// next to the executable or one folder up. Throws std::runtime_error naming the places tried.
const SpmBackend& spm_backend();

}  // namespace lorascope

// The plugin's one exported symbol.
extern "C" const lorascope::SpmBackend* lorascope_spm_backend();
