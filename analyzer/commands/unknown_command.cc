// Not a subcommand: names a mistyped one. CLI11 checks "a subcommand is required" before it looks
// at leftover words, so `ncclfr anlyze` would only say "A subcommand is required". Registered
// first, so every subcommand added after it inherits the message function.
#include <string>
#include <vector>

#include "commands/command.h"

namespace ncclfr::cli {
namespace {

std::string failureMessage(const CLI::App* app, const CLI::Error& e) {
  if (app->get_parent() == nullptr && app->get_subcommands().empty()) {
    std::vector<std::string> words = app->remaining();
    if (!words.empty() && !words.front().empty() && words.front()[0] != '-') {
      return "ncclfr: unknown subcommand '" + words.front() + "' (ncclfr --help lists them)\n";
    }
  }
  return CLI::FailureMessage::simple(app, e);
}

void addUnknownCommandMessage(CLI::App& app, int* /*exitCode*/) { app.failure_message(failureMessage); }

NCCLFR_COMMAND(-1, addUnknownCommandMessage);

}  // namespace
}  // namespace ncclfr::cli
