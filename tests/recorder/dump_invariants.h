// What every dump the recorder writes must satisfy, whatever the job did, checked from the dump
// alone (through the format library):
//   * stream order: on one stream, a thread's calls run in the order it issued them (its ring
//     order), so no call is pending (scheduled, started, untracked) behind one that completed;
//   * states and times agree: a started call has a start and no end, a completed one an end no
//     earlier than its start (with NCCLFR_TIMING=full), a scheduled one neither;
//   * the exact counters agree with the entries: each communicator's last enqueued / started /
//     completed collective and each (peer, direction)'s last send or receive are the highest
//     sequence numbers among the entries in that state (when the ring evicted nothing).
// `clean` adds what a run that ended normally must show: every call completed, with GPU times.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ncclfr/dump_file.h"

namespace rectest {

struct InvariantReport {
  std::vector<std::string> problems;   // one line each, empty when the dump is sound
  int pendingBehindCompleted = 0;      // calls left pending behind a completed one on their stream
};

inline std::string describeEntry(ncclfr::schema::Dump::Reader d, unsigned i) {
  auto e = d.getEntries()[i];
  auto c = d.getComms()[e.getComm()];
  return "entry " + std::to_string(i) + " (" + ncclfr::enumName(e.getOp()) + " seq " + std::to_string(e.getSeq()) +
         " p2pSeq " + std::to_string(e.getP2pSeq()) + " on comm " + std::to_string(e.getComm()) + " '" +
         c.getName().cStr() + "', thread " + std::to_string(e.getThreadId()) + ", stream " +
         std::to_string(e.getStream()) + ", " + ncclfr::enumName(e.getState()) + ")";
}

inline InvariantReport checkDumpInvariants(ncclfr::schema::Dump::Reader d, bool clean) {
  using ncclfr::schema::EntryState;
  using ncclfr::schema::Op;
  using ncclfr::schema::TimingMode;
  InvariantReport r;
  std::string who = "rank " + std::to_string(d.getProcess().getGlobalRank()) + ": ";
  auto problem = [&](const std::string& what) { r.problems.push_back(who + what); };
  auto entries = d.getEntries();
  auto comms = d.getComms();
  TimingMode timing = d.getProcess().getTiming();
  auto pending = [](EntryState s) {
    return s == EntryState::SCHEDULED || s == EntryState::STARTED || s == EntryState::UNTRACKED;
  };
  auto isP2P = [](Op op) { return op == Op::SEND || op == Op::RECV; };

  // Stream order, per thread: walk each (thread, stream) backwards from its newest entry.
  std::map<std::pair<uint32_t, uint64_t>, unsigned> completedLater;  // -> the completed entry
  for (unsigned i = entries.size(); i-- > 0;) {
    auto e = entries[i];
    auto key = std::make_pair(e.getThreadId(), e.getStream());
    if (e.getState() == EntryState::COMPLETED) {
      completedLater.emplace(key, i);
    } else if (pending(e.getState())) {
      if (auto it = completedLater.find(key); it != completedLater.end()) {
        ++r.pendingBehindCompleted;
        problem(describeEntry(d, i) + " is pending behind completed " + describeEntry(d, it->second));
      }
    }
  }

  // States and times.
  for (unsigned i = 0; i < entries.size(); ++i) {
    auto e = entries[i];
    int64_t start = e.getStartMonoNs(), end = e.getEndMonoNs();
    switch (e.getState()) {
      case EntryState::SCHEDULED:
      case EntryState::UNTRACKED:
        if (start != 0 || end != 0) problem(describeEntry(d, i) + " has GPU times");
        break;
      case EntryState::STARTED:
        if (end != 0) problem(describeEntry(d, i) + " has an end");
        if (timing == TimingMode::FULL && start <= 0) problem(describeEntry(d, i) + " has no start");
        break;
      case EntryState::COMPLETED:
        if (clean && timing == TimingMode::FULL && (start <= 0 || end < start)) {
          problem(describeEntry(d, i) + " has start " + std::to_string(start) + ", end " + std::to_string(end));
        }
        if (start != 0 && end != 0 && end < start) problem(describeEntry(d, i) + " ends before it starts");
        break;
      default:
        break;
    }
    if (clean && e.getState() != EntryState::COMPLETED) problem(describeEntry(d, i) + " did not complete in a clean run");
    if (e.getResult() != 0 && e.getResult() != 7) problem(describeEntry(d, i) + " returned " + std::to_string(e.getResult()));
  }
  if (timing == TimingMode::FULL && clean && d.getInfo().getEvictedEntries() == 0) {
    // Nothing is missing: every call is in the ring.
    uint64_t total = 0;
    for (auto c : comms) total += c.getTotalEntries();
    if (total != entries.size()) problem("counters say " + std::to_string(total) + " calls, the ring holds " + std::to_string(entries.size()));
  }

  // Counters against entries.
  if (d.getInfo().getEvictedEntries() != 0) return r;
  struct Seen {
    int64_t enq = -1, started = -1, completed = -1;
    uint64_t calls = 0;
  };
  std::vector<Seen> coll(comms.size());
  std::map<std::tuple<uint32_t, int32_t, bool>, Seen> p2p;
  for (auto e : entries) {
    if (e.getComm() >= comms.size()) {
      problem("an entry names communicator " + std::to_string(e.getComm()));
      continue;
    }
    coll[e.getComm()].calls += 1;
    EntryState s = e.getState();
    bool started = s == EntryState::STARTED || s == EntryState::COMPLETED;
    Seen& v = isP2P(e.getOp()) ? p2p[{e.getComm(), e.getRoot(), e.getOp() == Op::SEND}] : coll[e.getComm()];
    int64_t seq = isP2P(e.getOp()) ? e.getP2pSeq() : e.getSeq();
    v.enq = std::max(v.enq, seq);
    if (started) v.started = std::max(v.started, seq);
    if (s == EntryState::COMPLETED) v.completed = std::max(v.completed, seq);
  }
  auto expectStarted = [&](int64_t fromEntries) { return timing == TimingMode::FULL ? fromEntries : int64_t{-1}; };
  auto expectCompleted = [&](int64_t fromEntries) { return timing == TimingMode::HOST_ONLY ? int64_t{-1} : fromEntries; };
  auto compare = [&](const std::string& what, int64_t counter, int64_t fromEntries) {
    if (counter != fromEntries) {
      problem(what + " is " + std::to_string(counter) + ", the entries say " + std::to_string(fromEntries));
    }
  };
  for (unsigned c = 0; c < comms.size(); ++c) {
    auto comm = comms[c];
    std::string name = "comm " + std::to_string(c) + " '" + comm.getName().cStr() + "' ";
    if (comm.getTotalEntries() != coll[c].calls) {
      problem(name + "totalEntries is " + std::to_string(comm.getTotalEntries()) + ", the ring holds " +
              std::to_string(coll[c].calls));
    }
    compare(name + "lastEnqueuedSeq", comm.getLastEnqueuedSeq(), coll[c].enq);
    compare(name + "lastStartedSeq", comm.getLastStartedSeq(), expectStarted(coll[c].started));
    compare(name + "lastCompletedSeq", comm.getLastCompletedSeq(), expectCompleted(coll[c].completed));
    for (auto p : comm.getP2p()) {
      std::string pn = name + (p.getSend() ? "send to " : "recv from ") + std::to_string(p.getPeer()) + " ";
      Seen v;
      if (auto it = p2p.find({c, p.getPeer(), p.getSend()}); it != p2p.end()) v = it->second;
      compare(pn + "lastEnqueuedSeq", p.getLastEnqueuedSeq(), v.enq);
      compare(pn + "lastStartedSeq", p.getLastStartedSeq(), expectStarted(v.started));
      compare(pn + "lastCompletedSeq", p.getLastCompletedSeq(), expectCompleted(v.completed));
    }
  }
  return r;
}

}  // namespace rectest
