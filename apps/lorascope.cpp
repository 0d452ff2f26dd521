// lorascope: how optimizers shape LoRA fine-tuning, from matrix-factorization theory to
// transformer adapters. One subcommand per workflow; see `lorascope COMMAND --help`.
#include <c10/util/Exception.h>

#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "apps/commands.h"
#include "trainer/config.h"
#include "trainer/malloc_tuning.h"
#include "trainer/threads.h"
#include "util/json_file.h"

int main(int argc, char** argv) {
  lorascope::tune_malloc_for_tensors();  // before the first tensor: see trainer/malloc_tuning.h
  CLI::App app{"lorascope: spectral dynamics of LoRA adapters under Muon, SpecGD, GD and AdamW"};
  app.require_subcommand(1);
  // One line per error, like every other lorascope message.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "lorascope: " + std::string(e.what()) + " (see --help)\n";
  });
  int threads = 0;
  app.add_option("--threads", threads,
                 "intra-op threads (default: all cores, shared among the ranks of `launch`)")
      ->check(CLI::NonNegativeNumber);
  std::map<std::string, lorascope::cli::Command> commands;
  commands["mf"] = lorascope::cli::add_mf_command(app);
  commands["rank-accuracy"] = lorascope::cli::add_rank_accuracy_command(app);
  commands["eos"] = lorascope::cli::add_eos_command(app);
  commands["plot"] = lorascope::cli::add_plot_command(app);
  commands["pretrain"] = lorascope::cli::add_pretrain_command(app);
  commands["finetune"] = lorascope::cli::add_finetune_command(app);
  commands["compare"] = lorascope::cli::add_compare_command(app);
  commands["pretrained-mf"] = lorascope::cli::add_pretrained_mf_command(app);
  commands["launch"] = lorascope::cli::add_launch_command(app);
  commands["hf"] = lorascope::cli::add_hf_command(app);
  commands["analyze"] = lorascope::cli::add_analyze_command(app);
  commands["tensorboard"] = lorascope::cli::add_tensorboard_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  // Training with more than one thread: OpenMP threads whose waiting suits the machine's load
  // (trainer/threads.h; the process is started again once, before any work).
  const std::string command = app.get_subcommands().front()->get_name();
  if (threads != 1 && (command == "pretrain" || command == "finetune" || command == "compare")) {
    lorascope::reexec_with_bounded_openmp_wait("/proc/self/exe", argv);
  }
  try {
    lorascope::configure_threads(threads);
    for (auto* sub : app.get_subcommands()) return commands.at(sub->get_name())();
  } catch (const lorascope::ConfigError& e) {
    std::fprintf(stderr, "lorascope: %s\n", e.what());
    return 2;
  } catch (const lorascope::JsonFileError& e) {  // a JSON file we were given is bad input too
    std::fprintf(stderr, "lorascope: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {  // LibTorch's what() carries a C++ backtrace: not for users
    std::fprintf(stderr, "lorascope: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lorascope: %s\n", e.what());
    return 1;
  }
  return 1;
}
