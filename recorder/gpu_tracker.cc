#include "gpu_tracker.h"

#include "log.h"

namespace ncclfr::recorder {

uint32_t EventPool::pop() {
  if (pairs == nullptr) return 0;
  uint64_t h = ld(head, std::memory_order_acquire);
  for (;;) {
    uint32_t top = static_cast<uint32_t>(h);
    if (top == 0) return 0;
    uint32_t nextTop = ld(next[top - 1]);
    uint64_t desired = ((h >> 32) + 1) << 32 | nextTop;
    if (cas(head, h, desired)) {
      fetchAdd(available, uint32_t(-1));
      return top;
    }
  }
}

void EventPool::push(uint32_t index) {
  uint64_t h = ld(head, std::memory_order_relaxed);
  for (;;) {
    st(next[index], static_cast<uint32_t>(h));
    uint64_t desired = ((h >> 32) + 1) << 32 | (index + 1);
    if (cas(head, h, desired, std::memory_order_release)) break;
  }
  fetchAdd(available, uint32_t{1});
}

int GpuTracker::readyContext(uintptr_t ctx) {
  for (int i = 0; i < kMaxContexts; ++i) {
    uintptr_t c = ld(ctxs[i].ctx, std::memory_order_acquire);
    if (c == ctx) return ld(ctxs[i].state, std::memory_order_acquire) == kCtxReady ? i : -1;
    if (c == 0) break;
  }
  registerContext(ctx);
  return -1;
}

int GpuTracker::registerContext(uintptr_t ctx) {
  if (ctx == 0) return -1;
  for (int i = 0; i < kMaxContexts; ++i) {
    uintptr_t c = ld(ctxs[i].ctx, std::memory_order_acquire);
    if (c == ctx) return i;
    if (c == 0) {
      uintptr_t expected = 0;
      if (cas(ctxs[i].ctx, expected, ctx)) {
        st(ctxs[i].state, kCtxRequested, std::memory_order_release);
        return i;
      }
      if (expected == ctx) return i;
    }
  }
  raiseHotWarning(kWarnTooManyContexts);
  return -1;
}

uint32_t GpuTracker::takePair(int ctx) {
  uint32_t top = ctxs[ctx].pool.pop();
  if (top != 0) return pairHandle(static_cast<uint32_t>(ctx), top - 1);
  // A burst outran the watchdog's refill: make a pair here (CUDA calls, outside the recorder's own
  // budget) rather than leave the call untimed. Only in the stream's own context, which is the
  // calling thread's current one in practice; never by switching the application's context.
  GpuContext& g = ctxs[ctx];
  CUcontext current = nullptr;
  if (cu->ctxGetCurrent(&current) != CUDA_SUCCESS || reinterpret_cast<uintptr_t>(current) != ld(g.ctx)) {
    raiseHotWarning(kWarnEventPoolEmpty);
    return 0;
  }
  uint32_t index = fetchAdd(g.pool.created, uint32_t{1});
  if (index >= kMaxPairsPerContext) {
    raiseHotWarning(kWarnEventPoolEmpty);
    return 0;
  }
  EventPair& p = g.pool.pairs[index];
  if (cu->eventCreate(&p.start, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
    raiseHotWarning(kWarnEventPoolEmpty);
    return 0;  // the index stays used up: a rare failure, not worth a free list of holes
  }
  if (cu->eventCreate(&p.end, CU_EVENT_DEFAULT) != CUDA_SUCCESS) {
    if (cu->eventDestroy != nullptr) cu->eventDestroy(p.start);
    raiseHotWarning(kWarnEventPoolEmpty);
    return 0;
  }
  return pairHandle(static_cast<uint32_t>(ctx), index);
}

void GpuTracker::releasePair(uint32_t handle) {
  if (handle == 0) return;
  ctxs[handleCtx(handle)].pool.push(handlePair(handle));
}

}  // namespace ncclfr::recorder
