// Each lorascope command registers its options on the CLI11 app and returns the function that
// runs it. Exit codes: 0 success, 2 bad input (nothing written), 3 a run diverged, 1 internal.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lorascope::cli {

using Command = std::function<int()>;

Command add_mf_command(CLI::App& app);
Command add_rank_accuracy_command(CLI::App& app);
Command add_eos_command(CLI::App& app);
Command add_plot_command(CLI::App& app);
Command add_pretrain_command(CLI::App& app);
Command add_finetune_command(CLI::App& app);
Command add_compare_command(CLI::App& app);
Command add_pretrained_mf_command(CLI::App& app);
Command add_launch_command(CLI::App& app);
Command add_hf_command(CLI::App& app);
Command add_analyze_command(CLI::App& app);
Command add_tensorboard_command(CLI::App& app);

}  // namespace lorascope::cli
