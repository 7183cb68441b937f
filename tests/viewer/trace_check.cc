// viewer_trace_check TRACE.json [--ranks N]: checks a file written by `ncclfr export --format
// chrome-trace` with the rules of viewer/trace_validate.h (and, with --ranks, that every one of N
// ranks has its process). Exit 0 valid, 1 invalid, 2 usage.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "trace_validate.h"

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 4 && std::string(argv[2]) == "--ranks")) {
    std::fprintf(stderr, "usage: viewer_trace_check TRACE.json [--ranks N]\n");
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "viewer_trace_check: cannot read %s\n", argv[1]);
    return 2;
  }
  std::string text((std::istreambuf_iterator<char>(f)), {});
  ncclfr::viewer::TraceSummary sum;
  std::string error;
  if (!ncclfr::viewer::validateChromeTrace(text, &sum, &error)) {
    std::fprintf(stderr, "viewer_trace_check: %s: %s\n", argv[1], error.c_str());
    return 1;
  }
  if (argc == 4) {
    long n = std::strtol(argv[3], nullptr, 10);
    for (long r = 0; r < n; ++r) {
      if (!sum.pids.count(r)) {
        std::fprintf(stderr, "viewer_trace_check: %s: rank %ld has no process\n", argv[1], r);
        return 1;
      }
    }
  }
  std::printf("%s: valid: %zu processes, %zu complete events, %zu pending at the dump\n", argv[1], sum.pids.size(),
              sum.complete, sum.pending);
  return 0;
}
