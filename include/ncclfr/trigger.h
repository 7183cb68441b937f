// The trigger file protocol: how one rank (or a person, with `ncclfr trigger`) asks every rank of a
// job to dump, without signals and across nodes. Written by libncclfr.so's watchdog and by the CLI;
// implemented in recorder/trigger_file.cc. docs/recorder.md describes it for people.
//
// A job's dump folder (NCCLFR_DUMP_DIR/<job>/, on storage every node sees) holds numbered trigger
// files "ncclfr-trigger.<generation>", generation 1, 2, 3, ... Each holds one line:
//
//   ncclfr-trigger 1 incident=<id> reason=<reason> rank=<r> wall_ns=<n> host=<h> pid=<p> propagate=<0|1> detail=<text>
//
// (fields separated by one space; detail runs to the end of the line and is last).
//   * Creating generation g is exclusive: the file is written under a temporary name and link(2)ed
//     to its final name, which fails with EEXIST when another rank got there first. The loser reads
//     the winner's file and joins that incident instead of starting its own, so ranks that detect
//     the same hang at the same moment still produce one incident with one id.
//   * Every rank remembers the highest generation it has handled (at start: the highest present, so
//     a restarted job ignores its predecessor's triggers) and polls for the next one with a single
//     stat(2) every NCCLFR_TRIGGER_POLL. On seeing new generations it reads the newest; if that one
//     has propagate=1 and names an incident the rank has not dumped for, the rank dumps with that
//     incident id (reason peerRequest, or onDemand for a person's trigger).
//   * Triggers of incidents that concern one process only (a signal, exit) are written with
//     propagate=0: ranks that detect something themselves soon after join them, nobody else dumps.
//   * Files are never rewritten or removed by ncclfr; they are the job's incident history.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ncclfr::trigger {

inline constexpr std::string_view kFilePrefix = "ncclfr-trigger.";
inline constexpr int kFormatVersion = 1;

struct Request {
  std::string incidentId;   // sortable, starts with the UTC time of the first detection
  std::string reason;       // a DumpReason enumerant name: stall, ncclError, abort, signal, onDemand, exit
  int32_t triggerRank = -1; // global rank that asked, -1 = a person or unknown
  int64_t wallNs = 0;       // when it was asked (CLOCK_REALTIME)
  std::string host;
  uint32_t pid = 0;
  bool propagate = true;
  std::string detail;       // one line for people
};

// "ncclfr-trigger.<generation>"
std::string fileName(uint64_t generation);
// The generation a directory entry names, or false when it is not a trigger file.
bool parseFileName(std::string_view name, uint64_t* generation);

// The file's single line (with its newline) and its parser. parse() accepts unknown trailing
// fields before detail (a later version may add some) and refuses another format version.
std::string format(const Request& request);
bool parse(std::string_view text, Request* request, std::string* error);

// An incident id: "<UTC yyyymmddTHHMMSS.mmmZ>-<who>", e.g. "20261121T203400.123Z-r17". `who` is
// "r<rank>", "p<pid>" when the rank is unknown, or a word such as "manual".
std::string makeIncidentId(int64_t wallNs, std::string_view who);

// The highest generation present in `dir`, 0 when there is none or `dir` does not exist.
uint64_t latestGeneration(const std::string& dir);
// True when generation `generation` exists (one stat(2): the poll).
bool exists(const std::string& dir, uint64_t generation);
bool read(const std::string& dir, uint64_t generation, Request* request, std::string* error);

enum class PublishResult {
  kCreated,  // `request` is now generation *generation
  kJoined,   // another writer created *generation first; *winner holds its request
  kFailed,   // *error says why (folder not writable, ...)
};
// Creates generation `after + 1` holding `request`, making `dir` (mode 0700) if needed; when that
// generation exists already, joins it instead. Callers pass the newest generation they have seen
// (and judged too old to join), so ranks racing to report one hang all aim at the same generation.
// Never throws.
PublishResult publish(const std::string& dir, const Request& request, uint64_t after, uint64_t* generation,
                      Request* winner, std::string* error) noexcept;

}  // namespace ncclfr::trigger
