#include "ncclfr/analysis/load.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "ncclfr/dump_file.h"
#include "wording.h"

namespace ncclfr::analysis {
namespace fs = std::filesystem;

namespace {

// How much of a ring the model copies, beyond counters and fingerprints (see model.h).
constexpr size_t kPendingPerComm = 32;  // oldest pending calls of each communicator
constexpr size_t kNewestEntries = 16;   // newest calls of the process
constexpr size_t kErrorEntries = 8;     // calls that ended in an error
constexpr size_t kMaxKeptEntries = 4096;  // in all, whatever the number of communicators
// Bounds that keep a hostile dump from making the model large.
constexpr size_t kMaxSignaturesPerComm = 256;
constexpr size_t kMaxStreams = 1024;  // (thread, stream) pairs tracked per process
constexpr int64_t kMaxSeqGap = 1 << 16;

bool collective(schema::Op op) { return op != schema::Op::SEND && op != schema::Op::RECV; }

// Text from a dump ends up on a terminal: control characters (escape sequences from a hostile or
// damaged file) become '?', and length is bounded.
std::string cleanText(capnp::Text::Reader t, size_t max = 4096) {
  std::string s(t.cStr(), std::min<size_t>(t.size(), max));
  for (auto& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s;
}

EntryView copyEntry(schema::Entry::Reader e, uint32_t index) {
  EntryView v;
  v.index = index;
  v.comm = e.getComm();
  v.op = e.getOp();
  v.state = e.getState();
  v.dtype = e.getDtype();
  v.redOp = e.getRedOp();
  v.root = e.getRoot();
  v.seq = e.getSeq();
  v.p2pSeq = e.getP2pSeq();
  v.opSeq = e.getOpSeq();
  v.groupId = e.getGroupId();
  v.count = e.getCount();
  v.stream = e.getStream();
  v.enqueueMonoNs = e.getEnqueueMonoNs();
  v.startMonoNs = e.getStartMonoNs();
  v.endMonoNs = e.getEndMonoNs();
  v.threadId = e.getThreadId();
  v.result = e.getResult();
  return v;
}

// Appends one collective's fingerprint to its communicator's run of held sequence numbers. Rings
// hold each communicator's calls in order, so this is an append; gaps (torn entries) become 0s and
// anything stranger (a hostile file) restarts the run rather than growing it without bound.
void addFingerprint(CommView& c, int64_t seq, uint32_t fp) {
  if (seq < 0) return;
  if (c.fingerprints.empty()) {
    c.firstHeldSeq = seq;
    c.fingerprints.push_back(fp);
    return;
  }
  int64_t next = c.lastHeldSeq() + 1;
  if (seq == next) {
    c.fingerprints.push_back(fp);
  } else if (seq > next) {
    if (seq - next > kMaxSeqGap) {
      c.fingerprints.clear();
      c.firstHeldSeq = seq;
    } else {
      c.fingerprints.resize(c.fingerprints.size() + static_cast<size_t>(seq - next), 0);
    }
    c.fingerprints.push_back(fp);
  } else if (seq >= c.firstHeldSeq) {
    auto& slot = c.fingerprints[static_cast<size_t>(seq - c.firstHeldSeq)];
    if (slot == 0) slot = fp;
  }
}

void readDump(const DumpFile& file, ProcessDump* out) {
  auto d = file.dump();
  out->paths = {file.name()};
  out->formatMajor = file.major();
  out->formatMinor = file.minor();

  auto p = d.getProcess();
  out->host = cleanText(p.getHost());
  out->pid = p.getPid();
  out->globalRank = p.getGlobalRank();
  out->worldSize = p.getWorldSize();
  out->localRank = p.getLocalRank();
  out->jobId = cleanText(p.getJobId());
  out->timing = p.getTiming();
  out->simulated = p.getSimulated();
  out->clockWallNs = p.getClock().getWallNs();
  out->clockMonoNs = p.getClock().getMonoNs();
  out->ringCapacity = p.getRingCapacity();
  out->cmdline = cleanText(p.getCmdline());

  auto i = d.getInfo();
  out->reason = i.getReason();
  out->detail = cleanText(i.getDetail());
  out->dumpWallNs = i.getWallNs();
  out->dumpMonoNs = i.getMonoNs();
  out->incidentId = cleanText(i.getIncidentId());
  out->incidentWallNs = i.getIncidentWallNs();
  out->triggerRank = i.getTriggerRank();
  out->processDied = i.getProcessDied();
  out->totalEntries = i.getTotalEntries();
  out->evictedEntries = i.getEvictedEntries();
  out->tornEntries = i.getTornEntries();
  out->timeoutNs = std::max<int64_t>(0, i.getTimeoutNs());

  auto comms = d.getComms();
  out->comms.resize(comms.size());
  for (uint32_t k = 0; k < comms.size(); ++k) {
    auto c = comms[k];
    CommView& v = out->comms[k];
    v.id = c.getId();
    v.parentId = c.getParentId();
    v.splitColor = c.getSplitColor();
    v.rank = c.getRank();
    v.size = c.getSize();
    v.cudaDevice = c.getCudaDevice();
    v.state = c.getState();
    v.createdBy = c.getCreatedBy();
    v.lastAsyncError = c.getLastAsyncError();
    v.lastAsyncErrorMonoNs = c.getLastAsyncErrorMonoNs();
    v.lastEnqueuedSeq = c.getLastEnqueuedSeq();
    v.lastStartedSeq = c.getLastStartedSeq();
    v.lastCompletedSeq = c.getLastCompletedSeq();
    v.evictedEntries = c.getEvictedEntries();
    v.totalEntries = c.getTotalEntries();
    v.blocking = c.getBlocking();
    v.name = cleanText(c.getName());
    auto p2p = c.getP2p();
    v.p2p.reserve(p2p.size());
    for (auto q : p2p) {
      v.p2p.push_back({q.getPeer(), q.getSend(), q.getLastEnqueuedSeq(), q.getLastStartedSeq(),
                       q.getLastCompletedSeq()});
    }
    // Sorted, so CommView::p2pCounter can search: an all-to-all built from send/recv has two
    // counters per peer.
    std::sort(v.p2p.begin(), v.p2p.end(), [](const P2PCounterView& a, const P2PCounterView& b) {
      return a.peer != b.peer ? a.peer < b.peer : a.send < b.send;
    });
  }

  // One forward pass over the ring: fingerprints of every collective, and the indices of the
  // entries worth copying. The accessors read the mapped words in place.
  auto entries = d.getEntries();
  const uint32_t n = entries.size();
  out->heldEntries = n;
  const bool completionKnown = out->completionKnown();
  std::vector<size_t> pendingKept(out->comms.size(), 0);
  std::vector<uint32_t> keep;
  size_t errorsKept = 0;
  struct Last {
    uint32_t fp = 0;
    CallSignature sig;
  };
  std::vector<Last> last(out->comms.size());
  size_t streamAt = SIZE_MAX;  // the (thread, stream) of the previous progressed entry: usually this one's
  for (uint32_t k = 0; k < n; ++k) {
    auto e = entries[k];
    uint32_t ci = e.getComm();
    if (ci >= out->comms.size()) continue;  // a damaged entry names no communicator we know
    CommView& c = out->comms[ci];
    auto op = e.getOp();
    auto state = e.getState();
    if (state == schema::EntryState::STARTED || state == schema::EntryState::COMPLETED) {
      // Stream order evidence (model.h, StreamProgress). A refused call never reached the stream.
      int32_t result = e.getResult();
      if (result == 0 || result == 7) {
        uint64_t stream = e.getStream();
        uint32_t thread = e.getThreadId();
        auto& ss = out->streams;
        if (streamAt >= ss.size() || ss[streamAt].stream != stream || ss[streamAt].thread != thread) {
          streamAt = SIZE_MAX;
          for (size_t j = 0; j < ss.size(); ++j) {
            if (ss[j].stream == stream && ss[j].thread == thread) {
              streamAt = j;
              break;
            }
          }
          if (streamAt == SIZE_MAX && ss.size() < kMaxStreams) {
            ss.push_back({stream, thread, 0, -1, -1, 0});
            streamAt = ss.size() - 1;
          }
        }
        if (streamAt != SIZE_MAX) {
          StreamProgress& sp = ss[streamAt];
          uint32_t group = e.getGroupId();
          sp.lastStartedIndex = k;
          sp.lastStartedGroup = group;
          if (state == schema::EntryState::COMPLETED) {
            sp.lastCompletedIndex = k;
            sp.lastCompletedGroup = group;
          }
        }
      }
    } else if (state == schema::EntryState::UNTRACKED) {
      ++out->untrackedEntries;
    }
    bool pending = false;
    if (collective(op)) {
      int64_t seq = e.getSeq();
      CallSignature sig = normalizedSignature(op, e.getDtype(), e.getRedOp(), e.getRoot(), e.getCount());
      Last& l = last[ci];
      uint32_t fp;
      if (l.fp != 0 && sig == l.sig) {
        fp = l.fp;
      } else {
        fp = sig.fingerprint();
        l.fp = fp;
        l.sig = sig;
        if (c.signatures.size() < kMaxSignaturesPerComm &&
            std::find(c.signatures.begin(), c.signatures.end(), sig) == c.signatures.end()) {
          c.signatures.push_back(sig);
        }
      }
      // A call NCCL refused (invalid argument, ...) never reached the communicator: it is no
      // evidence of what this rank ran at that seq, so it takes no part in the mismatch check.
      int32_t result = e.getResult();
      bool refused = result != 0 && result != 7;
      addFingerprint(c, seq, refused ? 0 : fp);
      if (refused && errorsKept < kErrorEntries && keep.size() < kMaxKeptEntries) {
        ++errorsKept;
        keep.push_back(k);
      }
      pending = completionKnown && seq > c.lastCompletedSeq && state != schema::EntryState::COMPLETED;
    } else if (completionKnown && state != schema::EntryState::COMPLETED) {
      const P2PCounterView* counter = c.p2pCounter(e.getRoot(), op == schema::Op::SEND);
      pending = counter == nullptr || e.getP2pSeq() > counter->lastCompletedSeq;
    }
    if (keep.size() >= kMaxKeptEntries) {
      pending = false;
    }
    if (pending && pendingKept[ci] < kPendingPerComm) {
      ++pendingKept[ci];
      keep.push_back(k);
    } else if (state == schema::EntryState::ERROR && errorsKept < kErrorEntries && keep.size() < kMaxKeptEntries) {
      ++errorsKept;
      keep.push_back(k);
    }
  }
  for (uint32_t k = n > kNewestEntries ? n - static_cast<uint32_t>(kNewestEntries) : 0; k < n; ++k) {
    keep.push_back(k);
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  out->entries.reserve(keep.size());
  for (uint32_t k : keep) {
    EntryView v = copyEntry(entries[k], k);
    if (v.comm < out->comms.size()) out->entries.push_back(v);
  }
}

bool readOne(const std::string& path, ProcessDump* out, std::string* error) {
  auto file = DumpFile::open(path, error);
  if (!file) return false;
  try {
    readDump(*file, out);
    return true;
  } catch (...) {
    *error = path + ": " + describeException(std::current_exception());
    return false;
  }
}

}  // namespace

std::vector<std::string> findDumpFiles(const std::vector<std::string>& paths, std::vector<Problem>* problems) {
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
      problems->push_back({path, path + ": no such file or folder"});
      continue;
    }
    if (!fs::is_directory(st)) {
      files.push_back(path);
      continue;
    }
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) {
      problems->push_back({path, path + ": " + ec.message()});
      continue;
    }
    for (; it != end; it.increment(ec)) {
      if (ec) {
        problems->push_back({path, path + ": " + ec.message()});
        break;
      }
      const auto& p = it->path();
      std::string name = p.filename().string();
      if (name.size() > kDumpSuffix.size() &&
          name.compare(name.size() - kDumpSuffix.size(), kDumpSuffix.size(), kDumpSuffix) == 0) {
        std::error_code fec;
        if (it->is_regular_file(fec)) files.push_back(p.string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

LoadedDumps loadDumps(const std::vector<std::string>& files, const LoadOptions& options) {
  std::vector<ProcessDump> dumps(files.size());
  std::vector<std::string> errors(files.size());
  std::vector<char> ok(files.size(), 0);
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  unsigned threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(files.size(), 1)));

  auto work = [&](bool reporter) {
    auto lastReport = std::chrono::steady_clock::now();
    for (;;) {
      // Small batches: one atomic per batch, neighbouring files on one thread.
      size_t begin = next.fetch_add(16);
      if (begin >= files.size()) break;
      size_t end = std::min(files.size(), begin + 16);
      for (size_t k = begin; k < end; ++k) {
        ok[k] = readOne(files[k], &dumps[k], &errors[k]) ? 1 : 0;
        if (!ok[k]) dumps[k] = ProcessDump{};
      }
      size_t d = done.fetch_add(end - begin) + (end - begin);
      if (reporter && options.progress) {
        auto now = std::chrono::steady_clock::now();
        if (now - lastReport > std::chrono::milliseconds(200)) {
          lastReport = now;
          options.progress(d, files.size());
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, false);
  work(true);
  for (auto& t : pool) t.join();
  if (options.progress) options.progress(files.size(), files.size());

  LoadedDumps out;
  out.dumps.reserve(files.size());
  for (size_t k = 0; k < files.size(); ++k) {
    if (ok[k]) {
      out.dumps.push_back(std::move(dumps[k]));
    } else {
      out.problems.push_back({files[k], std::move(errors[k])});
    }
  }
  return out;
}

bool loadDumpBytes(const void* data, size_t size, const std::string& name, ProcessDump* out, Problem* problem) {
  std::string error;
  auto file = DumpFile::fromBytes(data, size, name, &error);
  if (file) {
    try {
      readDump(*file, out);
      return true;
    } catch (...) {
      error = name + ": " + describeException(std::current_exception());
    }
  }
  *problem = {name, error};
  return false;
}

namespace {

// How complete a copy of one process's ring is: more calls recorded wins, then more progress on its
// communicators, then the later dump.
std::tuple<uint64_t, int64_t, int64_t> completeness(const ProcessDump& d) {
  int64_t progress = 0;
  for (const auto& c : d.comms) progress += c.lastEnqueuedSeq + c.lastCompletedSeq;
  return {d.totalEntries, progress, d.dumpWallNs};
}

// A salvaged ring replaces the process's own dump of the analyzed incident only when it holds no
// call issued more than this after that dump was written (the same process: one monotonic clock).
constexpr int64_t kSalvageLaterNs = 1'000'000'000;

// The newest enqueue time among the calls kept of a dump (monotonic ns), 0 if none.
int64_t newestEnqueueMono(const ProcessDump& d) {
  int64_t newest = 0;
  for (const auto& e : d.entries) newest = std::max(newest, e.enqueueMonoNs);
  return newest;
}

std::string fmtSecondsAfter(int64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", static_cast<double>(ns) / 1e9);
  return b;
}

// The time an incident id starts with ("20261121T203400.123Z-r17", UTC), in ns; 0 if it has none.
int64_t incidentIdTime(const std::string& id) {
  int Y, M, D, h, m, sec, ms;
  char z;
  if (id.size() < 20 || std::sscanf(id.c_str(), "%4d%2d%2dT%2d%2d%2d.%3d%c", &Y, &M, &D, &h, &m, &sec, &ms, &z) != 8 ||
      z != 'Z' || Y < 1970 || Y > 2200 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 ||
      h < 0 || m < 0 || sec < 0 || ms < 0) {
    return 0;  // not a time (a hostile id must not overflow the arithmetic below)
  }
  struct tm tm {};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t < 0) return 0;
  return static_cast<int64_t>(t) * 1'000'000'000 + int64_t{ms} * 1'000'000;
}

}  // namespace

bool selectJob(LoadedDumps&& loaded, const SelectOptions& options, Job* job, std::string* error) {
  *job = Job{};
  job->unreadable = std::move(loaded.problems);
  if (loaded.dumps.empty()) {
    *error = "no readable dumps";
    return false;
  }
  std::map<std::string, size_t> jobs;
  for (const auto& d : loaded.dumps) ++jobs[d.jobId];
  auto jobName = [](const std::string& j) { return j.empty() ? std::string("(no job id)") : j; };
  auto listJobs = [&] {
    std::string s;
    for (const auto& [j, n] : jobs) {
      if (!s.empty()) s += ", ";
      s += jobName(j) + " (" + std::to_string(n) + (n == 1 ? " dump)" : " dumps)");
    }
    return s;
  };
  std::string chosenJob;
  if (!options.job.empty()) {
    if (!jobs.count(options.job)) {
      *error = "no dumps of job '" + options.job + "'; the dumps hold: " + listJobs();
      return false;
    }
    chosenJob = options.job;
  } else if (jobs.size() > 1) {
    *error = "dumps of " + std::to_string(jobs.size()) + " jobs: " + listJobs() + "; pick one with --job";
    return false;
  } else {
    chosenJob = jobs.begin()->first;
  }
  job->jobId = chosenJob;

  // Incidents of this job, in time order (ids start with the UTC time of the first detection).
  // Salvaged rings are no incident of their own: a dead process's ring is its last word, whatever
  // happened next, so it joins the incident analyzed.
  bool onlySalvaged = true;
  for (const auto& d : loaded.dumps) {
    if (d.jobId == chosenJob && d.reason != schema::DumpReason::SALVAGED) onlySalvaged = false;
  }
  auto isSalvage = [&](const ProcessDump& d) { return !onlySalvaged && d.reason == schema::DumpReason::SALVAGED; };
  struct Incident {
    size_t dumps = 0;
    int64_t when = 0;  // detection wall time, 0 unknown
    bool onDemand = false;  // a person asked for it (`ncclfr trigger`): a deliberate snapshot
  };
  std::map<std::string, Incident> incidents;
  for (const auto& d : loaded.dumps) {
    if (d.jobId != chosenJob || isSalvage(d)) continue;
    Incident& x = incidents[d.incidentId];
    ++x.dumps;
    int64_t w = incidentIdTime(d.incidentId);
    if (w == 0) w = d.incidentWallNs > 0 ? d.incidentWallNs : d.dumpWallNs;
    if (w > 0 && (x.when == 0 || w < x.when)) x.when = w;
    if (d.reason == schema::DumpReason::ON_DEMAND) x.onDemand = true;
  }
  // A cascade (one rank's error makes its peers fail and detect incidents of their own, or a job
  // killed after a hang makes ranks dump again on SIGTERM) gives several incident ids within
  // seconds: one burst, analyzed as one, each process by its dump from the burst's earliest
  // incident. Incidents further apart are separate hangs and never mixed. An incident a person
  // asked for (onDemand: `ncclfr trigger`) is a deliberate snapshot of that moment, no cascade: it
  // is a burst of its own, and an incident after it starts a new one (a healthy snapshot followed
  // by a crash must not stand for the crash).
  constexpr int64_t kBurstNs = 30'000'000'000;
  std::vector<std::vector<std::string>> bursts;
  int64_t burstStart = 0;
  bool burstOnDemand = false;
  for (const auto& [id, x] : incidents) {
    if (bursts.empty() || x.when == 0 || burstStart == 0 || x.when - burstStart > kBurstNs || x.onDemand ||
        burstOnDemand) {
      bursts.push_back({id});
      burstStart = x.when;
      burstOnDemand = x.onDemand;
    } else {
      bursts.back().push_back(id);
    }
  }
  auto burstDumps = [&](const std::vector<std::string>& b) {
    size_t n = 0;
    for (const auto& id : b) n += incidents[id].dumps;
    return n;
  };
  std::vector<std::string> chosen;
  if (!options.incident.empty()) {
    if (!incidents.count(options.incident)) {
      std::string list;
      for (const auto& [i, x] : incidents) list += (list.empty() ? "" : ", ") + (i.empty() ? "(none)" : i);
      *error = "job " + jobName(chosenJob) + " has no incident '" + options.incident + "'; it has: " + list;
      return false;
    }
    chosen = {options.incident};
  } else if (!bursts.empty()) {
    // The latest burst that most of the job took part in (a handful of dumps after the big one
    // says less than it).
    size_t largest = 0;
    for (const auto& b : bursts) largest = std::max(largest, burstDumps(b));
    for (auto it = bursts.rbegin(); it != bursts.rend(); ++it) {
      if (2 * burstDumps(*it) >= largest) {
        chosen = *it;
        break;
      }
    }
  }
  std::set<std::string> chosenSet(chosen.begin(), chosen.end());
  job->incidentId = chosen.empty() ? std::string() : chosen.front();
  for (const auto& [i, x] : incidents) {
    if (!chosenSet.count(i)) job->otherIncidents.push_back(i);
  }
  if (chosen.size() > 1) {
    std::string list;
    for (const auto& i : chosen) list += (list.empty() ? "" : ", ") + i;
    job->notes.push_back("incidents " + list + " were detected within seconds of each other (one cascade); each "
                         "process is analyzed by its dump from the earliest of them");
  }
  if (!job->otherIncidents.empty()) {
    std::string others;
    for (const auto& i : job->otherIncidents) {
      others += (others.empty() ? "" : ", ") + (i.empty() ? std::string("(none)") : i) + " (" +
                std::to_string(incidents[i].dumps) + (incidents[i].dumps == 1 ? " dump)" : " dumps)");
    }
    job->notes.push_back("analyzing incident " + (job->incidentId.empty() ? "(none)" : job->incidentId) +
                         "; set aside: " + others + "; pick one with --incident");
  }
  auto incidentOrder = [&](const std::string& id) {
    return static_cast<size_t>(std::find(chosen.begin(), chosen.end(), id) - chosen.begin());
  };

  // A process is its host and pid (its own dump and a salvaged copy of its ring agree on both); the
  // rank goes into the key too, for launchers that run ranks in pid namespaces.
  std::map<std::tuple<std::string, uint32_t, int32_t>, size_t> byProcess;
  size_t setAside = 0;
  size_t otherJobs = 0;
  for (auto& d : loaded.dumps) {
    if (d.jobId != chosenJob) {
      ++otherJobs;
      continue;
    }
    bool salvage = isSalvage(d);
    if (!salvage && !chosenSet.count(d.incidentId)) {
      ++setAside;
      continue;
    }
    auto key = std::make_tuple(d.host, d.pid, d.globalRank);
    auto it = byProcess.find(key);
    if (it == byProcess.end()) {
      byProcess.emplace(key, job->processes.size());
      job->processes.push_back(std::move(d));
      continue;
    }
    ProcessDump& kept = job->processes[it->second];
    bool died = kept.processDied || d.processDied;
    bool keptSalvage = isSalvage(kept);
    // A salvaged ring that went on well past the process's own dump of this incident shows a later
    // time (the process ran on, then died): the dump stands for the incident, and the death, which
    // came after it, is not carried into it.
    if (salvage != keptSalvage) {
      const ProcessDump& own = salvage ? kept : d;
      const ProcessDump& ring = salvage ? d : kept;
      int64_t newest = newestEnqueueMono(ring);
      if (own.dumpMonoNs > 0 && newest > 0 && newest - own.dumpMonoNs > kSalvageLaterNs) {
        job->notes.push_back(own.label() + ": its salvaged ring " + ring.paths[0] + " holds calls issued " +
                             fmtSecondsAfter(newest - own.dumpMonoNs) + " after its dump of incident " +
                             (own.incidentId.empty() ? "(none)" : own.incidentId) +
                             ": a later time, not used for this incident" +
                             (ring.processDied ? " (the process died after it)" : ""));
        if (salvage) {
          kept.paths.push_back(d.paths[0]);
        } else {
          std::vector<std::string> paths = d.paths;
          paths.insert(paths.end(), kept.paths.begin(), kept.paths.end());
          kept = std::move(d);
          kept.paths = std::move(paths);
        }
        continue;
      }
    }
    // Which copy to keep: between two incidents of a burst, the earlier one's; otherwise (the
    // same incident twice, or a salvaged ring beside a dump) the more complete.
    bool replace;
    if (!salvage && !keptSalvage && d.incidentId != kept.incidentId) {
      replace = incidentOrder(d.incidentId) < incidentOrder(kept.incidentId);
    } else {
      replace = completeness(d) > completeness(kept);
    }
    std::vector<std::string> paths = replace ? d.paths : kept.paths;
    const auto& more = replace ? kept.paths : d.paths;
    paths.insert(paths.end(), more.begin(), more.end());
    // The stall timeout is the process's, whichever copy says it (a salvaged ring does not).
    int64_t timeoutNs = kept.timeoutNs > 0 ? kept.timeoutNs : d.timeoutNs;
    if (replace) kept = std::move(d);
    kept.paths = std::move(paths);
    kept.processDied = died;
    kept.timeoutNs = timeoutNs;
    job->notes.push_back(kept.label() + " (" + kept.host + ":" + std::to_string(kept.pid) + ") has " +
                         std::to_string(kept.paths.size()) + " dumps; kept " + kept.paths[0]);
  }
  // A salvaged ring that stands alone for its process but holds calls issued well after the
  // incident was detected ran on past it: it says nothing about the incident's moment.
  int64_t incidentWhen = incidents.count(job->incidentId) ? incidents[job->incidentId].when : 0;
  if (incidentWhen > 0) {
    std::erase_if(job->processes, [&](const ProcessDump& p) {
      if (!isSalvage(p) || p.paths.size() != 1) return false;
      int64_t newest = p.wallNs(newestEnqueueMono(p));
      if (newest <= 0 || newest - incidentWhen <= kBurstNs) return false;
      job->notes.push_back(p.label() + ": its salvaged ring " + p.paths[0] + " holds calls issued " +
                           fmtSecondsAfter(newest - incidentWhen) + " after incident " + job->incidentId +
                           " was detected: a later time, set aside (the rank counts as without a dump)");
      return true;
    });
  }
  if (setAside > 0) {
    job->notes.push_back(plural(static_cast<int64_t>(setAside), "dump") + " of other incidents set aside");
  }
  if (otherJobs > 0) {
    job->notes.push_back(plural(static_cast<int64_t>(otherJobs), "dump") + " of other jobs set aside");
  }
  std::sort(job->processes.begin(), job->processes.end(), [](const ProcessDump& a, const ProcessDump& b) {
    bool ar = a.globalRank >= 0, br = b.globalRank >= 0;
    if (ar != br) return ar;
    if (a.globalRank != b.globalRank) return a.globalRank < b.globalRank;
    if (a.host != b.host) return a.host < b.host;
    return a.pid < b.pid;
  });
  for (size_t k = 1; k < job->processes.size(); ++k) {
    const auto& a = job->processes[k - 1];
    const auto& b = job->processes[k];
    if (a.globalRank >= 0 && a.globalRank == b.globalRank) {
      job->notes.push_back("rank " + std::to_string(a.globalRank) + " is claimed by two processes (" + a.host +
                           ":" + std::to_string(a.pid) + " and " + b.host + ":" + std::to_string(b.pid) + ")");
    }
  }
  for (const auto& p : job->processes) job->worldSize = std::max(job->worldSize, p.worldSize);
  return true;
}

}  // namespace ncclfr::analysis
