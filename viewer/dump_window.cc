#include "ncclfr/viewer/dump_window.h"

#include <algorithm>
#include <exception>

#include "ncclfr/dump_file.h"

namespace ncclfr::viewer {

using analysis::EntryView;

namespace {

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

bool isP2P(schema::Op op) { return op == schema::Op::SEND || op == schema::Op::RECV; }

}  // namespace

bool readWindows(const std::string& path, const std::vector<WindowRequest>& requests,
                 std::vector<std::vector<EntryView>>* out, std::string* error) {
  out->assign(requests.size(), {});
  if (requests.empty()) return true;
  auto file = DumpFile::open(path, error);
  if (!file) return false;
  try {
    auto d = file->dump();
    auto entries = d.getEntries();
    const uint32_t ncomms = d.getComms().size();
    // Requests by communicator index (a process normally asks once per communicator, but nothing
    // breaks if it asks twice).
    std::vector<std::vector<size_t>> byComm(ncomms);
    for (size_t r = 0; r < requests.size(); ++r) {
      if (requests[r].comm < ncomms) byComm[requests[r].comm].push_back(r);
    }
    struct Progress {
      size_t collectives = 0;
      size_t p2p = 0;
      bool done = false;
    };
    std::vector<Progress> progress(requests.size());
    size_t open = 0;
    for (size_t r = 0; r < requests.size(); ++r) {
      if (requests[r].comm < ncomms) {
        ++open;
      } else {
        progress[r].done = true;
      }
    }
    // Newest first: windows sit near the tail of a stalled ring. A communicator's window is
    // complete once an older collective (or, without collectives, enough sends and receives) has
    // gone by, since each communicator's calls are in the ring in call order.
    for (uint32_t k = entries.size(); k-- > 0 && open > 0;) {
      auto e = entries[k];
      uint32_t ci = e.getComm();
      if (ci >= ncomms || byComm[ci].empty()) continue;
      auto op = e.getOp();
      int64_t seq = e.getSeq();
      bool p2p = isP2P(op);
      for (size_t r : byComm[ci]) {
        const WindowRequest& q = requests[r];
        Progress& p = progress[r];
        if (p.done) continue;
        bool take = false;
        if (p2p) {
          if (q.hi >= 0 && seq < q.lo - 1) {
            p.done = true;
          } else if ((q.hi < 0 || seq <= q.hi) && p.p2p < q.maxP2P) {
            ++p.p2p;
            take = true;
            if (q.hi < 0 && p.p2p == q.maxP2P) p.done = true;
          }
        } else if (q.hi >= 0) {
          if (seq < q.lo) {
            p.done = true;
          } else if (seq <= q.hi && p.collectives < static_cast<size_t>(q.hi - q.lo + 1)) {
            ++p.collectives;
            take = true;
          }
        }
        if (take) (*out)[r].push_back(copyEntry(e, k));
        if (p.done) --open;
      }
    }
    for (auto& v : *out) std::reverse(v.begin(), v.end());
    return true;
  } catch (...) {
    *error = path + ": " + describeException(std::current_exception());
    out->assign(requests.size(), {});
    return false;
  }
}

bool readAllEntries(const std::string& path, size_t last, std::vector<FullEntry>* out, DumpExtras* extras,
                    std::string* error) {
  out->clear();
  auto file = DumpFile::open(path, error);
  if (!file) return false;
  try {
    auto d = file->dump();
    if (extras) {
      extras->ncclVersion = d.getProcess().getNcclVersion();
      extras->cudaDriverVersion = static_cast<uint32_t>(d.getProcess().getCudaDriverVersion());
    }
    auto entries = d.getEntries();
    uint32_t n = entries.size();
    uint32_t begin = (last > 0 && last < n) ? n - static_cast<uint32_t>(last) : 0;
    out->reserve(n - begin);
    for (uint32_t k = begin; k < n; ++k) {
      FullEntry f;
      static_cast<EntryView&>(f) = copyEntry(entries[k], k);
      f.callDurationNs = entries[k].getCallDurationNs();
      out->push_back(f);
    }
    return true;
  } catch (...) {
    *error = path + ": " + describeException(std::current_exception());
    out->clear();
    return false;
  }
}

}  // namespace ncclfr::viewer
