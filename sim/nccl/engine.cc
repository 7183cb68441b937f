#include "engine.h"

#include <algorithm>
#include <cstring>

#include "debug.h"

namespace ncclfr::sim::nccl {

const char* funcName(Func f) {
  switch (f) {
    case Func::Broadcast: return "Broadcast";
    case Func::Reduce: return "Reduce";
    case Func::AllGather: return "AllGather";
    case Func::ReduceScatter: return "ReduceScatter";
    case Func::AllReduce: return "AllReduce";
    case Func::AlltoAll: return "AlltoAll";
    case Func::Gather: return "Gather";
    case Func::Scatter: return "Scatter";
    case Func::Send: return "Send";
    case Func::Recv: return "Recv";
  }
  return "?";
}

namespace {

constexpr uint32_t kUserOpTag = 100;

struct CollExec {
  const Task* task = nullptr;
  uint64_t collIndex = 0;
  int nblocks = 1;
  size_t blockElems = 0;
  size_t chunkElems = 0;
  uint32_t nChunks = 1;
  uint32_t chunk = 0;
  int phase = 0;  // 0: post the next chunk, 1: collect it, 2: mismatched, never completes
  bool finished = false;
};

struct P2PExec {
  const Task* task = nullptr;
  bool send = true;
  uint64_t seq = 0;
  size_t bytes = 0;
  size_t done = 0;
  int phase = 0;  // send: 0 post size, 1 stream data, 2 wait for receiver; recv: 0 match, 1 data; 3 mismatched
  bool finished = false;
};

class BatchRunner {
 public:
  explicit BatchRunner(Batch* b) : b_(b), c_(b->comm), s_(b->comm->seg), n_(b->comm->nranks), me_(b->comm->rank) {}

  void run() {
    RankSlot* mine = c_->mySlot();
    // Wait for the communicator's previous batches, which may be on other streams.
    for (;;) {
      uint32_t seen = mine->bell.read();
      if (c_->completed.load() == b_->seq || c_->abortFlag.load()) break;
      mine->bell.sleep(seen);
    }
    if (!c_->abortFlag.load()) {
      c_->executing.fetch_add(1);
      prepare();
      progress();
      c_->executing.fetch_sub(1);
    }
    c_->completed.fetch_add(1);
    mine->bell.ring();
  }

 private:
  void prepare() {
    for (const Task& t : b_->tasks) {
      if (t.func == Func::Send || t.func == Func::Recv) {
        P2PExec x;
        x.task = &t;
        x.send = t.func == Func::Send;
        auto peer = static_cast<size_t>(t.root);
        x.seq = x.send ? ++c_->sendSeq[peer] : ++c_->recvSeq[peer];
        x.bytes = t.count * typeSize(t.dtype);
        p2p_.push_back(x);
        continue;
      }
      CollExec x;
      x.task = &t;
      x.collIndex = ++c_->collIndex;
      bool blocked = t.func == Func::ReduceScatter || t.func == Func::AlltoAll || t.func == Func::Scatter;
      x.nblocks = blocked ? n_ : 1;
      x.blockElems = t.count;
      size_t es = typeSize(t.dtype);
      x.chunkElems = std::max<size_t>(1, s_->header()->stagingBytes / (static_cast<size_t>(x.nblocks) * es));
      // At least one round even for count 0, so that every participant compares its call with the
      // others' and a count-0-versus-count-N mismatch is caught too.
      x.nChunks = static_cast<uint32_t>(std::max<size_t>(1, (x.blockElems + x.chunkElems - 1) / x.chunkElems));
      colls_.push_back(x);
    }
  }

  void progress() {
    RankSlot* mine = c_->mySlot();
    size_t ci = 0;
    std::vector<uint8_t> busySend(static_cast<size_t>(n_)), busyRecv(static_cast<size_t>(n_));
    for (;;) {
      uint32_t seen = mine->bell.read();
      if (c_->abortFlag.load()) return;
      bool progressed = false, done = true;
      if (ci < colls_.size()) {
        done = false;
        progressed |= stepColl(colls_[ci]);
        if (colls_[ci].finished) ++ci;
      }
      std::fill(busySend.begin(), busySend.end(), 0);
      std::fill(busyRecv.begin(), busyRecv.end(), 0);
      for (P2PExec& x : p2p_) {
        if (x.finished) continue;
        done = false;
        auto& busy = x.send ? busySend : busyRecv;
        auto peer = static_cast<size_t>(x.task->root);
        if (busy[peer]) continue;  // messages to one peer go in order
        busy[peer] = 1;
        progressed |= x.send ? stepSend(x) : stepRecv(x);
      }
      if (done) return;
      if (!progressed) mine->bell.sleep(seen);
    }
  }

  void ringOthers() {
    for (int r = 0; r < n_; ++r) {
      if (r != me_) s_->slot(r)->bell.ring();
    }
  }

  CollDesc describe(const CollExec& x) const {
    const Task& t = *x.task;
    CollDesc d{};
    d.collIndex = x.collIndex;
    d.count = t.count;
    d.func = static_cast<uint32_t>(t.func);
    d.dtype = static_cast<uint32_t>(t.dtype);
    d.op = static_cast<int>(t.userOp) < ncclNumOps ? static_cast<uint32_t>(t.userOp) : kUserOpTag;
    bool rooted = t.func == Func::Broadcast || t.func == Func::Reduce || t.func == Func::Gather || t.func == Func::Scatter;
    d.root = rooted ? t.root : -1;
    d.chunk = x.chunk;
    d.nChunks = x.nChunks;
    return d;
  }

  static bool sameCall(const CollDesc& a, const CollDesc& b) {
    return a.collIndex == b.collIndex && a.count == b.count && a.func == b.func && a.dtype == b.dtype &&
           a.op == b.op && a.root == b.root && a.chunk == b.chunk && a.nChunks == b.nChunks;
  }

  static std::string callText(const CollDesc& d) {
    char buf[200];
    const char* op = d.op == kUserOpTag ? "premulsum" : opName(static_cast<ncclRedOp_t>(d.op));
    std::snprintf(buf, sizeof buf, "%s(count=%llu, datatype=%s, op=%s, root=%d) as collective #%llu",
                  funcName(static_cast<Func>(d.func)), static_cast<unsigned long long>(d.count),
                  typeName(static_cast<ncclDataType_t>(d.dtype)), op, d.root,
                  static_cast<unsigned long long>(d.collIndex));
    return buf;
  }

  bool contributes(const Task& t) const {
    return !((t.func == Func::Broadcast || t.func == Func::Scatter) && t.root != me_);
  }

  bool stepColl(CollExec& x) {
    const Task& t = *x.task;
    RankSlot* mine = c_->mySlot();
    const uint64_t g = c_->collRound + 1;
    const size_t es = typeSize(t.dtype);
    const size_t lo = static_cast<size_t>(x.chunk) * x.chunkElems;
    const size_t len = lo >= x.blockElems ? 0 : std::min(x.chunkElems, x.blockElems - lo);
    if (x.phase == 0) {
      // My staging may be overwritten once everyone has read my previous round.
      for (int r = 0; r < n_; ++r) {
        if (s_->slot(r)->consumed.load(std::memory_order_acquire) + 1 < g) return false;
      }
      if (contributes(t) && len > 0) {
        uint8_t* st = s_->staging(me_);
        auto* src = static_cast<const uint8_t*>(t.sendbuff);
        for (int blk = 0; blk < x.nblocks; ++blk) {
          std::memcpy(st + static_cast<size_t>(blk) * x.chunkElems * es,
                      src + (static_cast<size_t>(blk) * x.blockElems + lo) * es, len * es);
        }
      }
      mine->desc = describe(x);
      mine->posted.store(g, std::memory_order_release);
      ringOthers();
      x.phase = 1;
      return true;
    }
    if (x.phase != 1) return false;
    for (int r = 0; r < n_; ++r) {
      if (s_->slot(r)->posted.load(std::memory_order_acquire) < g) return false;
    }
    const CollDesc mineDesc = mine->desc;
    for (int r = 0; r < n_; ++r) {
      const CollDesc other = s_->slot(r)->desc;
      if (!sameCall(mineDesc, other)) {
        // NCCL leaves mismatched calls undefined; on hardware the job hangs (or corrupts data).
        // sim/ makes it a hang on every participant, never a silent success.
        SIM_WARN(c_->cudaDev,
                 "Mismatched collectives on comm 0x%llx: rank %d calls %s but rank %d calls %s; this collective "
                 "will never complete",
                 static_cast<unsigned long long>(c_->commHash), me_, callText(mineDesc).c_str(), r,
                 callText(other).c_str());
        x.phase = 2;
        return false;
      }
    }
    auto* out = static_cast<uint8_t*>(t.recvbuff);
    const int root = t.root;
    const size_t blockStride = x.chunkElems * es;
    if (len > 0) {
      switch (t.func) {
        case Func::AllReduce:
        case Func::Reduce:
        case Func::ReduceScatter: {
          if (t.func == Func::Reduce && me_ != root) break;
          std::vector<const void*> srcs(static_cast<size_t>(n_));
          size_t off = t.func == Func::ReduceScatter ? static_cast<size_t>(me_) * blockStride : 0;
          for (int r = 0; r < n_; ++r) srcs[static_cast<size_t>(r)] = s_->staging(r) + off;
          reduce(out + lo * es, srcs.data(), n_, len, t.dtype, t.op);
          break;
        }
        case Func::Broadcast:
          std::memcpy(out + lo * es, s_->staging(root), len * es);
          break;
        case Func::AllGather:
        case Func::Gather:
          if (t.func == Func::Gather && me_ != root) break;
          for (int r = 0; r < n_; ++r) {
            std::memcpy(out + (static_cast<size_t>(r) * x.blockElems + lo) * es, s_->staging(r), len * es);
          }
          break;
        case Func::AlltoAll:
          for (int r = 0; r < n_; ++r) {
            std::memcpy(out + (static_cast<size_t>(r) * x.blockElems + lo) * es,
                        s_->staging(r) + static_cast<size_t>(me_) * blockStride, len * es);
          }
          break;
        case Func::Scatter:
          std::memcpy(out + lo * es, s_->staging(root) + static_cast<size_t>(me_) * blockStride, len * es);
          break;
        default:
          break;
      }
    }
    mine->consumed.store(g, std::memory_order_release);
    ringOthers();
    c_->collRound = g;
    if (++x.chunk == x.nChunks) {
      x.finished = true;
    } else {
      x.phase = 0;
    }
    return true;
  }

  bool stepSend(P2PExec& x) {
    const int peer = x.task->root;
    Channel* ch = s_->channel(me_, peer);
    RankSlot* other = s_->slot(peer);
    if (x.phase == 0) {
      if (ch->msgDone.load(std::memory_order_acquire) + 1 < x.seq) return false;
      ch->msgBytes = x.bytes;
      ch->msgPosted.store(x.seq, std::memory_order_release);
      other->bell.ring();
      x.phase = 1;
      return true;
    }
    if (x.phase == 1) {
      const uint64_t cap = s_->header()->channelBytes;
      uint8_t* ring = s_->ring(me_, peer);
      auto* src = static_cast<const uint8_t*>(x.task->sendbuff);
      bool moved = false;
      while (x.done < x.bytes) {
        uint64_t head = ch->head.load(std::memory_order_relaxed);
        uint64_t tail = ch->tail.load(std::memory_order_acquire);
        uint64_t space = cap - (head - tail);
        if (space == 0) break;
        size_t n = static_cast<size_t>(std::min<uint64_t>(space, x.bytes - x.done));
        size_t off = static_cast<size_t>(head % cap);
        size_t first = std::min(n, static_cast<size_t>(cap) - off);
        std::memcpy(ring + off, src + x.done, first);
        std::memcpy(ring, src + x.done + first, n - first);
        ch->head.store(head + n, std::memory_order_release);
        x.done += n;
        moved = true;
      }
      if (moved) other->bell.ring();
      if (x.done == x.bytes) {
        x.phase = 2;
        return true;
      }
      return moved;
    }
    // A send completes once the receiver has taken all of it.
    if (ch->msgDone.load(std::memory_order_acquire) >= x.seq) {
      x.finished = true;
      return true;
    }
    return false;
  }

  bool stepRecv(P2PExec& x) {
    const int peer = x.task->root;
    Channel* ch = s_->channel(peer, me_);
    RankSlot* other = s_->slot(peer);
    if (x.phase == 0) {
      if (ch->msgPosted.load(std::memory_order_acquire) < x.seq) return false;
      if (ch->msgBytes != x.bytes) {
        SIM_WARN(c_->cudaDev,
                 "Mismatched send/recv on comm 0x%llx: rank %d receives %zu bytes from rank %d, which sends %llu "
                 "bytes; this operation will never complete",
                 static_cast<unsigned long long>(c_->commHash), me_, x.bytes, peer,
                 static_cast<unsigned long long>(ch->msgBytes));
        x.phase = 3;
        return false;
      }
      x.phase = 1;
      return true;
    }
    if (x.phase != 1) return false;
    const uint64_t cap = s_->header()->channelBytes;
    const uint8_t* ring = s_->ring(peer, me_);
    auto* dst = static_cast<uint8_t*>(x.task->recvbuff);
    bool moved = false;
    while (x.done < x.bytes) {
      uint64_t head = ch->head.load(std::memory_order_acquire);
      uint64_t tail = ch->tail.load(std::memory_order_relaxed);
      if (head == tail) break;
      size_t n = static_cast<size_t>(std::min<uint64_t>(head - tail, x.bytes - x.done));
      size_t off = static_cast<size_t>(tail % cap);
      size_t first = std::min(n, static_cast<size_t>(cap) - off);
      std::memcpy(dst + x.done, ring + off, first);
      std::memcpy(dst + x.done + first, ring, n - first);
      ch->tail.store(tail + n, std::memory_order_release);
      x.done += n;
      moved = true;
    }
    if (x.done == x.bytes) {
      ch->msgDone.store(x.seq, std::memory_order_release);
      other->bell.ring();
      x.finished = true;
      return true;
    }
    if (moved) other->bell.ring();
    return moved;
  }

  Batch* b_;
  Comm* c_;
  Segment* s_;
  int n_;
  int me_;
  std::vector<CollExec> colls_;
  std::vector<P2PExec> p2p_;
};

}  // namespace

void runBatch(Batch* batch) {
  BatchRunner(batch).run();
  Comm* c = batch->comm;
  delete batch;
  c->unref();
}

}  // namespace ncclfr::sim::nccl
