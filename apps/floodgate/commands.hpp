#pragma once
// One source file per subcommand. Each defines a register_* function that adds its
// subcommand to the app and, when the subcommand is chosen, runs it and stores the exit
// code in `exit_code`. main.cpp calls every register_* in the order --help lists them.

#include <CLI/CLI.hpp>

namespace floodgate::cli {

// (subcommands are added here, one line each)
void register_run(CLI::App& app, int& exit_code);
void register_tokens(CLI::App& app, int& exit_code);
void register_estimate(CLI::App& app, int& exit_code);

}  // namespace floodgate::cli
