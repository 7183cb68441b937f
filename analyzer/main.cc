// ncclfr: the offline side of the flight recorder (analyze, salvage, trigger, show, db, synth,
// report, export). Each subcommand lives in analyzer/commands/<name>.cc.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/version.h"

namespace ncclfr::cli {
namespace {

std::vector<std::pair<int, AddCommand>>& registry() {
  static std::vector<std::pair<int, AddCommand>> commands;
  return commands;
}

}  // namespace

CommandRegistration::CommandRegistration(int order, AddCommand add) { registry().emplace_back(order, add); }

void addRegisteredCommands(CLI::App& app, int* exitCode) {
  auto commands = registry();
  std::stable_sort(commands.begin(), commands.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, add] : commands) add(app, exitCode);
}

}  // namespace ncclfr::cli

int main(int argc, char** argv) {
  using namespace ncclfr::cli;
  CLI::App app{"ncclfr: find the rank that hung an NCCL job, from the flight recorder's dumps"};
  app.name("ncclfr");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(NCCLFR_VERSION_STRING) + " (dump format " +
                                        std::to_string(ncclfr::kDumpMajor) + "." +
                                        std::to_string(ncclfr::kDumpMinor) + ")");
  int exitCode = kExitOk;
  addRegisteredCommands(app, &exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; real usage errors exit 2.
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ncclfr: internal error: %s\n", e.what());
    return kExitInternal;
  } catch (...) {
    std::fprintf(stderr, "ncclfr: internal error\n");
    return kExitInternal;
  }
  return exitCode;
}
