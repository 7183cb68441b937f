// `ncclfr show DUMP`: one dump as tables (process, communicators, then entries), for reading by hand.
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "commands/command.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"

namespace ncclfr::cli {
namespace {

struct ShowArgs {
  std::string path;
  int64_t last = -1;
  int64_t comm = -1;
};

std::string seqText(int64_t s) { return s < 0 ? "-" : std::to_string(s); }

// Monotonic ns as seconds relative to the dump, so a person sees "-60.512" rather than 19 digits.
// "-" when not known.
std::string utcText(int64_t wallNs) {
  std::string t = analysis::utcTime(wallNs);
  return t.empty() ? "-" : t;
}

// The reduction operator means something only for the ops that reduce.
std::string redOpText(schema::Entry::Reader e) {
  auto op = e.getOp();
  if (op != schema::Op::ALL_REDUCE && op != schema::Op::REDUCE && op != schema::Op::REDUCE_SCATTER) return "-";
  return enumName(e.getRedOp());
}

std::string rel(int64_t mono, int64_t dumpMono) {
  if (mono == 0) return "-";
  char buf[32];
  // In double: a damaged dump's times must not overflow.
  std::snprintf(buf, sizeof buf, "%.6f", (static_cast<double>(mono) - static_cast<double>(dumpMono)) / 1e9);
  return buf;
}

int runShow(const ShowArgs& a) {
  std::string error;
  auto file = DumpFile::open(a.path, &error);
  if (!file) {
    std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
    return kExitBadInput;
  }
  try {
    auto d = file->dump();
    auto p = d.getProcess();
    auto i = d.getInfo();
    int64_t dumpMono = i.getMonoNs();
    if (a.comm >= 0 && static_cast<uint64_t>(a.comm) >= d.getComms().size()) {
      std::fprintf(stderr, "ncclfr: --comm %lld: %s has %u communicators (indexes 0 to %lld)\n",
                   static_cast<long long>(a.comm), a.path.c_str(), d.getComms().size(),
                   static_cast<long long>(d.getComms().size()) - 1);
      return kExitBadInput;
    }
    std::printf("%s: dump format %u.%u, %zu bytes\n", a.path.c_str(), file->major(), file->minor(), file->sizeBytes());
    std::printf("process   host %s pid %u rank %d of %d (local %d, from %s) job %s\n", p.getHost().cStr(), p.getPid(),
                p.getGlobalRank(), p.getWorldSize(), p.getLocalRank(), p.getRankSource().cStr(), p.getJobId().cStr());
    std::printf("          nccl %d cuda driver %d recorder %s timing %s ring %u%s\n", p.getNcclVersion(),
                p.getCudaDriverVersion(), p.getRecorderVersion().cStr(), enumName(p.getTiming()).c_str(),
                p.getRingCapacity(), p.getSimulated() ? " (simulated)" : "");
    std::printf("          cmdline %s\n", p.getCmdline().cStr());
    std::printf("dump      reason %s%s, incident %s, trigger rank %d, written %s (wall %" PRId64 " ns)\n",
                enumName(i.getReason()).c_str(), i.getProcessDied() ? " (process died)" : "", i.getIncidentId().cStr(),
                i.getTriggerRank(), utcText(i.getWallNs()).c_str(), i.getWallNs());
    std::printf("          detail %s\n", i.getDetail().cStr());
    if (i.getTimeoutNs() > 0) {
      std::printf("          recorder's NCCLFR_TIMEOUT %.3f s\n", static_cast<double>(i.getTimeoutNs()) / 1e9);
    }
    std::printf("          entries: %" PRIu64 " recorded, %" PRIu64 " evicted, %" PRIu64 " torn, %u held\n",
                i.getTotalEntries(), i.getEvictedEntries(), i.getTornEntries(), d.getEntries().size());
    std::printf("          times below are seconds relative to the dump (monotonic clock)\n\n");

    std::printf("%-4s %-18s %-6s %5s %5s %-12s %-9s %8s %8s %8s %8s %5s %s\n", "idx", "comm id", "name", "rank", "size",
                "state", "origin", "enq", "started", "done", "total", "err", "p2p (peer dir enq/start/done)");
    auto comms = d.getComms();
    for (uint32_t k = 0; k < comms.size(); ++k) {
      auto c = comms[k];
      std::string p2p;
      for (auto q : c.getP2p()) {
        p2p += std::to_string(q.getPeer()) + (q.getSend() ? " send " : " recv ") + seqText(q.getLastEnqueuedSeq()) +
               "/" + seqText(q.getLastStartedSeq()) + "/" + seqText(q.getLastCompletedSeq()) + "  ";
      }
      std::printf("%-4u %-18s %-6s %5d %5d %-12s %-9s %8s %8s %8s %8" PRIu64 " %5d %s\n", k,
                  analysis::hexId(c.getId()).c_str(), c.getName().cStr(), c.getRank(), c.getSize(),
                  enumName(c.getState()).c_str(), enumName(c.getCreatedBy()).c_str(),
                  seqText(c.getLastEnqueuedSeq()).c_str(), seqText(c.getLastStartedSeq()).c_str(),
                  seqText(c.getLastCompletedSeq()).c_str(), c.getTotalEntries(), c.getLastAsyncError(), p2p.c_str());
    }
    std::printf("\n%-7s %-4s %-13s %-10s %6s %6s %5s %5s %-9s %-5s %5s %10s %12s %12s %12s %6s\n", "entry", "comm",
                "op", "state", "seq", "p2pSeq", "opSeq", "group", "dtype", "redOp", "root", "count", "enqueue", "start",
                "end", "result");
    auto entries = d.getEntries();
    uint32_t begin = 0;
    if (a.last >= 0 && static_cast<uint64_t>(a.last) < entries.size()) {
      begin = entries.size() - static_cast<uint32_t>(a.last);
    }
    for (uint32_t k = begin; k < entries.size(); ++k) {
      auto e = entries[k];
      if (a.comm >= 0 && e.getComm() != static_cast<uint64_t>(a.comm)) continue;
      std::printf("%-7u %-4u %-13s %-10s %6s %6s %5u %5u %-9s %-5s %5d %10" PRIu64 " %12s %12s %12s %6d\n", k,
                  e.getComm(), enumName(e.getOp()).c_str(), enumName(e.getState()).c_str(), seqText(e.getSeq()).c_str(),
                  seqText(e.getP2pSeq()).c_str(), e.getOpSeq(), e.getGroupId(), enumName(e.getDtype()).c_str(),
                  redOpText(e).c_str(), e.getRoot(), e.getCount(),
                  rel(e.getEnqueueMonoNs(), dumpMono).c_str(), rel(e.getStartMonoNs(), dumpMono).c_str(),
                  rel(e.getEndMonoNs(), dumpMono).c_str(), e.getResult());
    }
    std::fflush(stdout);
  } catch (...) {
    std::fflush(stdout);
    std::fprintf(stderr, "ncclfr: %s: %s\n", a.path.c_str(), describeException(std::current_exception()).c_str());
    return kExitBadInput;
  }
  return kExitOk;
}

void addShow(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<ShowArgs>();
  auto* cmd = app.add_subcommand("show", "Print one dump as tables: process, communicators, then entries");
  cmd->add_option("dump", args->path, "A dump file (*.ncclfr)")->required();
  // CLI::NonNegativeNumber's message spells out DBL_MAX; this one says what is wrong.
  const CLI::Validator nonNegative(
      [](std::string& v) { return !v.empty() && v[0] == '-' ? "must be 0 or more, not " + v : std::string(); },
      "N>=0", "non-negative");
  cmd->add_option("--last", args->last, "Show only the newest N entries")->check(nonNegative);
  cmd->add_option("--comm", args->comm, "Show only the entries of the communicator with this index (see the table)")
      ->check(nonNegative);
  cmd->callback([args, exitCode] { *exitCode = runShow(*args); });
}

NCCLFR_COMMAND(40, addShow);

}  // namespace
}  // namespace ncclfr::cli
