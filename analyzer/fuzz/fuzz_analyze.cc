// libFuzzer target: one input is one dump file's bytes. It goes through everything the analyzer does
// with a file it did not write: the header and framing checks, the model's reads (counters,
// fingerprints, copied entries), the analysis (alone, and beside a healthy peer so alignment,
// chains and p2p matching see it) and both renderings. Any crash, hang or sanitizer report is a
// bug; a refused input is fine.
//
// Built with clang as ncclfr_fuzz_analyze (-fsanitize=fuzzer); built with any compiler as
// ncclfr_fuzz_replay, which runs the same function over the files named on its command line (the
// corpus regression test). analyzer/fuzz/run_fuzz.sh builds and runs a fuzzing session.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ncclfr/analysis/analyze.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ncclfr::analysis;
  ProcessDump d;
  Problem problem;
  if (!loadDumpBytes(data, size, "fuzz.ncclfr", &d, &problem)) return 0;
  ProcessDump peer = d;
  peer.pid += 1;
  peer.globalRank = d.globalRank >= 0 ? d.globalRank + 1 : -1;
  for (auto& c : peer.comms) {
    c.rank = c.size > 1 ? (c.rank + 1) % c.size : c.rank;
  }
  LoadedDumps loaded;
  loaded.dumps.push_back(std::move(d));
  loaded.dumps.push_back(std::move(peer));
  Job job;
  std::string error;
  if (!selectJob(std::move(loaded), {}, &job, &error)) return 0;
  Verdict v = analyze(job);
  (void)verdictJsonText(v);
  (void)renderText(v, true);
  return 0;
}
