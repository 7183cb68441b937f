#include "ring_to_dump.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ncclfr/dump_file.h"
#include "ncclfr/version.h"
#include "process_identity.h"

namespace ncclfr::recorder {
namespace {

// The ring stores schema numbers without including the schema; keep them in step.
static_assert(static_cast<int>(shm::Op::kRecv) == static_cast<int>(schema::Op::RECV));
static_assert(static_cast<int>(shm::Op::kAllToAll) == static_cast<int>(schema::Op::ALL_TO_ALL));
static_assert(static_cast<int>(shm::EntryState::kCaptured) == static_cast<int>(schema::EntryState::CAPTURED));
static_assert(static_cast<int>(shm::EntryState::kUntracked) == static_cast<int>(schema::EntryState::UNTRACKED));
static_assert(static_cast<int>(shm::CommState::kInitFailed) == static_cast<int>(schema::CommState::INIT_FAILED));
static_assert(static_cast<int>(shm::CommState::kRevoked) == static_cast<int>(schema::CommState::REVOKED));
static_assert(static_cast<int>(shm::CommOrigin::kShrink) == static_cast<int>(schema::CommOrigin::SHRINK));
static_assert(static_cast<int>(shm::TimingMode::kHostOnly) == static_cast<int>(schema::TimingMode::HOST_ONLY));

// A fixed-size char field that may lack its NUL (a corrupt or torn file).
std::string fixedText(const char* field, size_t size) { return std::string(field, strnlen(field, size)); }

template <size_t N>
std::string fixedText(const char (&field)[N]) {
  return fixedText(field, N);
}

// Text fields of a dead process's file were written by someone we do not trust: keep them valid
// UTF-8 so Cap'n Proto text stays printable.
std::string printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return s;
}

struct LiveComm {
  shm::CommSlot copy{};
  uint64_t total = 0;
};

}  // namespace

bool ringToDump(const RingRegion& ring, const DumpRequest& request, capnp::MessageBuilder& message,
                DumpStats* stats, std::string* error) noexcept {
  try {
    const shm::ProcessHeader* h = ring.header;
    auto dump = message.initRoot<schema::Dump>();

    // --- Process -------------------------------------------------------------------------------
    auto proc = dump.initProcess();
    proc.setHost(printable(fixedText(h->host)));
    proc.setPid(h->pid);
    proc.setStartWallNs(h->startWallNs);
    proc.setGlobalRank(h->globalRank);
    proc.setWorldSize(h->worldSize);
    proc.setLocalRank(h->localRank);
    proc.setRankSource(printable(fixedText(h->rankSource)));
    proc.setJobId(printable(fixedText(h->jobId)));
    proc.setJobIdSource(printable(fixedText(h->jobIdSource)));
    proc.setNcclVersion(ld(h->ncclVersion));
    proc.setCudaDriverVersion(ld(h->cudaDriverVersion));
    proc.setRecorderVersion(printable(fixedText(h->recorderVersion)));
    auto clock = proc.initClock();
    if (request.salvage) {
      // The process cannot read its clocks any more; the pair read when its ring was made places
      // its monotonic times on the wall clock as well.
      clock.setWallNs(h->clockWallNs);
      clock.setMonoNs(h->clockMonoNs);
    } else {
      clock.setWallNs(wallNowNs());
      clock.setMonoNs(monoNowNs());
    }
    proc.setCmdline(printable(fixedText(h->cmdline)));
    uint32_t timing = h->timingMode <= 2 ? h->timingMode : 2;
    proc.setTiming(static_cast<schema::TimingMode>(timing));
    proc.setRingCapacity(h->ringCapacity);
    proc.setSimulated(h->simulated != 0);
    uint32_t moduleCount = std::min(ld(h->moduleCount), h->moduleCapacity);
    if (moduleCount > 0 && ring.modules != nullptr) {
      auto mods = proc.initModules(moduleCount);
      for (uint32_t i = 0; i < moduleCount; ++i) {
        mods[i].setPath(printable(fixedText(ring.modules[i].path)));
        mods[i].setBase(ring.modules[i].base);
        mods[i].setBuildId(printable(fixedText(ring.modules[i].buildId)));
      }
    }

    // --- Communicators ---------------------------------------------------------------------------
    uint32_t commCount = std::min(ld(h->commCount, std::memory_order_acquire), h->commCapacity);
    std::vector<LiveComm> comms;
    std::vector<uint32_t> commIndex(commCount, UINT32_MAX);  // slot -> index in the dump
    for (uint32_t i = 0; i < commCount; ++i) {
      const shm::CommSlot& s = ring.comms[i];
      if (ld(s.published, std::memory_order_acquire) != 1) continue;
      LiveComm c;
      std::memcpy(&c.copy, &s, offsetof(shm::CommSlot, state));
      c.copy.state = ld(s.state);
      c.copy.id = s.id;
      c.copy.parentId = s.parentId;
      c.copy.splitColor = s.splitColor;
      c.copy.splitKey = s.splitKey;
      c.copy.rank = ld(s.rank);
      c.copy.size = ld(s.size);
      c.copy.cudaDevice = ld(s.cudaDevice);
      c.copy.origin = s.origin;
      c.copy.blocking = ld(s.blocking);
      c.copy.lastAsyncError = ld(s.lastAsyncError);
      c.copy.createdMonoNs = s.createdMonoNs;
      c.copy.initDurationNs = ld(s.initDurationNs);
      c.copy.destroyedMonoNs = ld(s.destroyedMonoNs);
      c.copy.lastAsyncErrorMonoNs = ld(s.lastAsyncErrorMonoNs);
      c.copy.nextSeq = ld(s.nextSeq);
      c.copy.lastStartedSeq = ld(s.lastStartedSeq);
      c.copy.lastCompletedSeq = ld(s.lastCompletedSeq);
      c.copy.p2pEntries = ld(s.p2pEntries);
      std::memcpy(c.copy.name, s.name, sizeof c.copy.name);
      c.total = static_cast<uint64_t>(std::max<int64_t>(0, c.copy.nextSeq)) + c.copy.p2pEntries;
      commIndex[i] = static_cast<uint32_t>(comms.size());
      comms.push_back(c);
    }
    // Point-to-point counters, grouped by communicator.
    std::vector<std::vector<shm::P2PSlot>> p2pByComm(comms.size());
    for (uint32_t i = 0; i <= ring.p2pMask && ring.p2p != nullptr; ++i) {
      const shm::P2PSlot& p = ring.p2p[i];
      uint64_t key = ld(p.key, std::memory_order_acquire);
      if (key == 0) continue;
      uint32_t slot = shm::p2pKeyComm(key);
      if (slot >= commCount || commIndex[slot] == UINT32_MAX) continue;
      shm::P2PSlot copy{key, ld(p.nextSeq), ld(p.lastStartedSeq), ld(p.lastCompletedSeq)};
      p2pByComm[commIndex[slot]].push_back(copy);
    }
    auto commList = dump.initComms(static_cast<unsigned>(comms.size()));
    for (size_t i = 0; i < comms.size(); ++i) {
      const shm::CommSlot& s = comms[i].copy;
      auto c = commList[static_cast<unsigned>(i)];
      c.setId(s.id);
      c.setParentId(s.parentId);
      c.setSplitColor(s.splitColor);
      c.setSplitKey(s.splitKey);
      c.setRank(s.rank);
      c.setSize(s.size);
      c.setCudaDevice(s.cudaDevice);
      c.setCreatedMonoNs(s.createdMonoNs);
      c.setInitDurationNs(s.initDurationNs);
      c.setState(static_cast<schema::CommState>(s.state <= 6 ? s.state : 0));
      c.setLastAsyncError(s.lastAsyncError);
      c.setLastAsyncErrorMonoNs(s.lastAsyncErrorMonoNs);
      c.setLastEnqueuedSeq(s.nextSeq - 1);
      c.setLastStartedSeq(s.lastStartedSeq);
      c.setLastCompletedSeq(s.lastCompletedSeq);
      c.setTotalEntries(comms[i].total);
      c.setBlocking(s.blocking != 0);
      c.setName(printable(fixedText(s.name)));
      c.setCreatedBy(static_cast<schema::CommOrigin>(s.origin <= 6 ? s.origin : 0));
      c.setDestroyedMonoNs(s.destroyedMonoNs);
      auto& peers = p2pByComm[i];
      std::sort(peers.begin(), peers.end(), [](const shm::P2PSlot& a, const shm::P2PSlot& b) {
        int32_t pa = shm::p2pKeyPeer(a.key), pb = shm::p2pKeyPeer(b.key);
        return pa != pb ? pa < pb : shm::p2pKeySend(a.key) > shm::p2pKeySend(b.key);
      });
      auto list = c.initP2p(static_cast<unsigned>(peers.size()));
      for (size_t k = 0; k < peers.size(); ++k) {
        auto p = list[static_cast<unsigned>(k)];
        p.setPeer(shm::p2pKeyPeer(peers[k].key));
        p.setSend(shm::p2pKeySend(peers[k].key));
        p.setLastEnqueuedSeq(peers[k].nextSeq - 1);
        p.setLastStartedSeq(peers[k].lastStartedSeq);
        p.setLastCompletedSeq(peers[k].lastCompletedSeq);
      }
    }

    // --- Entries --------------------------------------------------------------------------------
    uint64_t head = ld(h->head, std::memory_order_acquire);
    uint64_t capacity = uint64_t{ring.ringMask} + 1;
    uint64_t first = head > capacity ? head - capacity : 0;
    std::vector<shm::RingEntry> kept;
    kept.reserve(static_cast<size_t>(head - first));
    DumpStats st;
    for (uint64_t i = first; i < head; ++i) {
      shm::RingEntry e{};
      switch (readSlot(ring, i, &e)) {
        case SlotRead::kOk:
          if (!entryReturned(ring, e, i)) e.returned = 0;  // a stale lap's word: not returned
          if (e.comm < commCount && commIndex[e.comm] != UINT32_MAX) {
            kept.push_back(e);
          } else {
            ++st.tornEntries;  // names a communicator the table does not hold: not trustworthy
          }
          break;
        case SlotRead::kWriting:
          ++st.tornEntries;
          break;
        case SlotRead::kEmpty:        // a reserved position never used
        case SlotRead::kOverwritten:  // a live writer lapped it while we read
          break;
      }
    }
    // Stacks referenced by the kept entries, renumbered densely.
    std::map<int32_t, int32_t> stackRemap;
    if (ring.stacks != nullptr) {
      for (const auto& e : kept) {
        if (e.stackIndex >= 0 && static_cast<uint32_t>(e.stackIndex) <= ring.stackMask) {
          stackRemap.emplace(e.stackIndex, 0);
        }
      }
      int32_t next = 0;
      for (auto& [from, to] : stackRemap) to = next++;
    }
    // A communicator's evictions: its calls (the counters read above) minus those the ring still
    // holds. Entries appended after the counters were read (a live process) are not counted.
    std::vector<uint64_t> held(comms.size(), 0);
    std::map<uint64_t, int64_t> p2pNext;  // p2p key -> nextSeq as read above
    for (size_t i = 0; i < p2pByComm.size(); ++i) {
      for (const auto& p : p2pByComm[i]) p2pNext[p.key] = p.nextSeq;
    }
    for (const auto& e : kept) {
      uint32_t ci = commIndex[e.comm];
      bool p2p = e.op == static_cast<uint8_t>(shm::Op::kSend) || e.op == static_cast<uint8_t>(shm::Op::kRecv);
      if (!p2p) {
        held[ci] += e.seq >= 0 && e.seq < comms[ci].copy.nextSeq;
      } else if (e.p2pSlot != 0) {
        auto it = p2pNext.find(shm::p2pKey(e.comm, e.root, e.op == static_cast<uint8_t>(shm::Op::kSend)));
        held[ci] += it != p2pNext.end() && e.p2pSeq >= 0 && e.p2pSeq < it->second;
      } else {
        held[ci] += 1;
      }
    }
    // The calls of one group on one stream share one event pair, recorded at ncclGroupEnd; when it
    // could not be had, the calling thread marks only the first of them (it knows no others) and
    // the watchdog the rest at its next look. A dead process's ring may lack that look: the others
    // of the group on that stream are untracked too.
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, bool> untrackedGroups;  // thread, group, stream
    for (const auto& e : kept) {
      if (e.groupId != 0 && e.state == static_cast<uint8_t>(shm::EntryState::kUntracked)) {
        untrackedGroups[{e.threadId, e.groupId, e.stream}] = true;
      }
    }
    if (!untrackedGroups.empty()) {
      for (auto& e : kept) {
        if (e.groupId != 0 && e.state == static_cast<uint8_t>(shm::EntryState::kScheduled) &&
            untrackedGroups.count({e.threadId, e.groupId, e.stream})) {
          e.state = static_cast<uint8_t>(shm::EntryState::kUntracked);
        }
      }
    }
    uint64_t heldAll = 0;
    for (size_t i = 0; i < comms.size(); ++i) {
      commList[static_cast<unsigned>(i)].setEvictedEntries(comms[i].total > held[i] ? comms[i].total - held[i] : 0);
      st.totalEntries += comms[i].total;
      heldAll += held[i];
    }
    // Calls the ring does not hold (torn ones aside) were evicted.
    st.evictedEntries = st.totalEntries > heldAll + st.tornEntries ? st.totalEntries - heldAll - st.tornEntries : 0;
    auto entries = dump.initEntries(static_cast<unsigned>(kept.size()));
    for (size_t k = 0; k < kept.size(); ++k) {
      const shm::RingEntry& e = kept[k];
      auto d = entries[static_cast<unsigned>(k)];
      d.setComm(commIndex[e.comm]);
      d.setOp(static_cast<schema::Op>(e.op < shm::kOpCount ? e.op : 0));
      d.setState(static_cast<schema::EntryState>(e.state <= 5 ? e.state : 0));
      d.setDtype(static_cast<schema::DataType>(e.dtype));
      d.setRedOp(static_cast<schema::RedOp>(e.redOp));
      d.setRoot(e.root);
      d.setSeq(e.seq);
      d.setP2pSeq(e.p2pSeq);
      d.setOpSeq(e.opSeq);
      d.setGroupId(e.groupId);
      d.setCount(e.count);
      d.setStream(e.stream);
      d.setEnqueueMonoNs(e.enqueueMonoNs);
      d.setStartMonoNs(e.startMonoNs);
      d.setEndMonoNs(e.endMonoNs);
      d.setThreadId(e.threadId);
      // The entries kept were read at their own index, which the dump no longer carries: the lap
      // check was made when reading (returnedOf).
      bool returned = shm::hasReturned(e.returned);
      d.setResult(returned ? shm::returnedResult(e.returned) : 0);
      d.setCallDurationNs(returned ? std::max<uint32_t>(shm::returnedDurationNs(e.returned), 1) : 0);
      auto it = stackRemap.find(e.stackIndex);
      d.setStackIndex(it != stackRemap.end() ? it->second : -1);
    }
    if (!stackRemap.empty()) {
      auto stacks = dump.initStacks(static_cast<unsigned>(stackRemap.size()));
      for (const auto& [from, to] : stackRemap) {
        const shm::StackSlot& s = ring.stacks[from];
        uint32_t depth = std::min<uint32_t>(ld(s.depth), shm::kStackFrames);
        auto out = stacks[static_cast<unsigned>(to)];
        auto frames = out.initFrames(depth);
        for (uint32_t f = 0; f < depth; ++f) frames.set(f, ld(s.frames[f]));
        if (request.symbolize) {
          auto symbols = out.initSymbols(depth);
          for (uint32_t f = 0; f < depth; ++f) symbols.set(f, printable(request.symbolize(ld(s.frames[f]))));
        }
      }
    }
    st.writtenEntries = kept.size();

    // --- Why ------------------------------------------------------------------------------------
    auto info = dump.initInfo();
    info.setReason(request.reason);
    info.setDetail(request.detail);
    info.setWallNs(wallNowNs());
    int64_t dumpMonoNs = monoNowNs();
    if (request.salvage && fixedText(h->bootId) != readBootId()) {
      // A ring from before a reboot: this boot's monotonic clock means nothing for its times, so
      // the dump is placed at the newest time the ring holds (a lower bound of its process's end).
      dumpMonoNs = std::max<int64_t>(h->clockMonoNs, ld(h->crashMonoNs));
      for (const auto& c : comms) {
        dumpMonoNs = std::max({dumpMonoNs, c.copy.createdMonoNs, c.copy.destroyedMonoNs, c.copy.lastAsyncErrorMonoNs});
      }
      for (const shm::RingEntry& e : kept) {
        dumpMonoNs = std::max({dumpMonoNs, e.enqueueMonoNs, e.startMonoNs, e.endMonoNs});
      }
    }
    // A salvage on the ring's own boot reads the same CLOCK_MONOTONIC the process wrote: "now" is
    // right, and times show how long before the salvage each call was made.
    info.setMonoNs(dumpMonoNs);
    info.setIncidentId(request.incidentId);
    info.setIncidentWallNs(request.incidentWallNs);
    info.setTriggerRank(request.triggerRank);
    info.setProcessDied(request.processDied);
    info.setWriterHost(request.writerHost);
    info.setWriterPid(request.writerPid);
    info.setTotalEntries(st.totalEntries);
    info.setEvictedEntries(st.evictedEntries);
    info.setTornEntries(st.tornEntries);
    info.setLastEvictedIndex(head > capacity ? static_cast<int64_t>(head - capacity) - 1 : -1);
    info.setTimeoutNs(request.timeoutNs);
    if (stats != nullptr) *stats = st;
    return true;
  } catch (...) {
    *error = "building the dump failed: " + describeException(std::current_exception());
    return false;
  }
}

}  // namespace ncclfr::recorder
