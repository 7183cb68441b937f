// The `ncclfr` CLI: one subcommand per file in analyzer/commands/, each registering itself with
// NCCLFR_COMMAND so adding a command touches nothing else.
#pragma once

#include <CLI/CLI.hpp>

namespace ncclfr::cli {

// Exit codes, documented in the README: scripts rely on them.
inline constexpr int kExitOk = 0;        // healthy / done
inline constexpr int kExitProblem = 1;   // analysis found a problem (hang, desync, incomplete)
inline constexpr int kExitBadInput = 2;  // bad usage, or input that cannot be used at all
inline constexpr int kExitInternal = 3;  // a bug in ncclfr: please report it with the message

// Adds one subcommand to `app`. The subcommand's callback stores its exit code in *exitCode.
using AddCommand = void (*)(CLI::App& app, int* exitCode);

// `order` places the subcommand in --help (lower first).
struct CommandRegistration {
  CommandRegistration(int order, AddCommand add);
};

void addRegisteredCommands(CLI::App& app, int* exitCode);

}  // namespace ncclfr::cli

#define NCCLFR_COMMAND_CONCAT2(a, b) a##b
#define NCCLFR_COMMAND_CONCAT(a, b) NCCLFR_COMMAND_CONCAT2(a, b)
#define NCCLFR_COMMAND(order, add) \
  static const ::ncclfr::cli::CommandRegistration NCCLFR_COMMAND_CONCAT(ncclfrCommand, __LINE__)(order, add)
