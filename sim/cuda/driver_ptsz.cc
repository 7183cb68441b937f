// The driver's per-thread-default-stream entry points (`_ptsz`, `_ptds`), which cuda.h selects when
// a program is built with CUDA_API_PER_THREAD_DEFAULT_STREAM: identical to the plain ones except
// that stream 0 means the calling thread's per-thread default stream.
#include <cuda.h>

namespace {
CUstream perThread(CUstream s) { return s == nullptr ? CU_STREAM_PER_THREAD : s; }
}  // namespace

extern "C" {

CUresult CUDAAPI cuStreamQuery_ptsz(CUstream s) { return cuStreamQuery(perThread(s)); }
CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream s) { return cuStreamSynchronize(perThread(s)); }
CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int flags) {
  return cuStreamWaitEvent(perThread(s), e, flags);
}
CUresult CUDAAPI cuStreamGetCtx_ptsz(CUstream s, CUcontext* ctx) { return cuStreamGetCtx(perThread(s), ctx); }
CUresult CUDAAPI cuStreamGetFlags_ptsz(CUstream s, unsigned int* flags) { return cuStreamGetFlags(perThread(s), flags); }
CUresult CUDAAPI cuStreamGetPriority_ptsz(CUstream s, int* priority) {
  return cuStreamGetPriority(perThread(s), priority);
}
CUresult CUDAAPI cuStreamGetId_ptsz(CUstream s, unsigned long long* id) { return cuStreamGetId(perThread(s), id); }
CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus* st) {
  return cuStreamIsCapturing(perThread(s), st);
}
CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* graph,
                                                const CUgraphNode** deps, const CUgraphEdgeData** edges,
                                                size_t* numDeps) {
  return cuStreamGetCaptureInfo(perThread(s), st, id, graph, deps, edges, numDeps);
}
CUresult CUDAAPI cuStreamAddCallback_ptsz(CUstream s, CUstreamCallback cb, void* user, unsigned int flags) {
  return cuStreamAddCallback(perThread(s), cb, user, flags);
}
CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s) { return cuEventRecord(e, perThread(s)); }
CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned int flags) {
  return cuEventRecordWithFlags(e, perThread(s), flags);
}
CUresult CUDAAPI cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void* user) {
  return cuLaunchHostFunc(perThread(s), fn, user);
}
CUresult CUDAAPI cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  return cuMemcpyAsync(dst, src, n, perThread(s));
}
CUresult CUDAAPI cuMemsetD8Async_ptsz(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
  return cuMemsetD8Async(dst, v, n, perThread(s));
}
CUresult CUDAAPI cuMemsetD32Async_ptsz(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
  return cuMemsetD32Async(dst, v, n, perThread(s));
}
CUresult CUDAAPI cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  CUresult r = cuMemcpyAsync(dst, src, n, CU_STREAM_PER_THREAD);
  return r != CUDA_SUCCESS ? r : cuStreamSynchronize(CU_STREAM_PER_THREAD);
}

}  // extern "C"
