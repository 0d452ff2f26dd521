// liblorascope_spm.so: the only code that links libsentencepiece (see data/spm_backend.h).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "data/spm_backend.h"

namespace lorascope {

namespace {

// Feeds the trainer one non-empty line at a time, straight from memory.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& texts) : texts_(texts) { advance(); }
  bool done() const override { return text_ >= texts_.size(); }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void advance() {
    while (text_ < texts_.size()) {
      const std::string& t = texts_[text_];
      if (pos_ > t.size()) {
        ++text_, pos_ = 0;
        continue;
      }
      size_t end = t.find('\n', pos_);
      if (end == std::string::npos) end = t.size();
      line_.assign(t, pos_, end - pos_);
      pos_ = end + 1;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.find_first_not_of(" \t") != std::string::npos) return;
    }
  }
  const std::vector<std::string>& texts_;
  size_t text_ = 0, pos_ = 0;
  std::string line_;
};

std::string message(const sentencepiece::util::Status& s) { return s.ok() ? "" : s.ToString(); }

class Backend final : public SpmBackend {
 public:
  std::string train(const std::vector<std::string>& texts,
                    const std::unordered_map<std::string, std::string>& args, uint32_t seed,
                    std::string* model_proto) const override {
    try {
      sentencepiece::SetRandomGeneratorSeed(seed);
      LineIterator lines(texts);
      return message(sentencepiece::SentencePieceTrainer::Train(args, &lines, model_proto));
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  std::string load(const std::string& path, std::shared_ptr<Processor>* out) const override {
    try {
      auto sp = std::make_shared<Processor>();
      const auto status = sp->Load(path);
      if (status.ok()) *out = std::move(sp);
      return message(status);
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  std::string encode(const Processor& sp, const std::string& text,
                     std::vector<int>* ids) const override {
    return message(sp.Encode(text, ids));
  }
  std::string decode(const Processor& sp, const std::vector<int>& ids,
                     std::string* text) const override {
    return message(sp.Decode(ids, text));
  }
  int id(const Processor& sp, char which) const override {
    switch (which) {
      case 'n': return sp.GetPieceSize();
      case 'p': return sp.pad_id();
      case 'u': return sp.unk_id();
      case 'b': return sp.bos_id();
      case 'e': return sp.eos_id();
    }
    return -1;
  }
};

}  // namespace

}  // namespace lorascope

extern "C" const lorascope::SpmBackend* lorascope_spm_backend() {
  static lorascope::Backend backend;
  return &backend;
}
