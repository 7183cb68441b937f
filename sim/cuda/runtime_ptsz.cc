// The `_ptsz`/`_ptds` exports a program gets when built with --default-stream per-thread
// (CUDA_API_PER_THREAD_DEFAULT_STREAM): with that macro defined, cuda_runtime_api.h renames the
// functions below, so these definitions produce e.g. cudaMemcpyAsync_ptsz. Stream 0 then means the
// calling thread's per-thread default stream instead of the legacy one.
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda.h>
#include <cuda_runtime_api.h>

#include "runtime_impl.h"

using namespace ncclfr::sim::runtime;

namespace {
CUstream perThread(cudaStream_t s) {
  return s == nullptr ? CU_STREAM_PER_THREAD : reinterpret_cast<CUstream>(s);
}
CUevent cu(cudaEvent_t e) { return reinterpret_cast<CUevent>(e); }
}  // namespace

#define RT_ENTER()                            \
  do {                                        \
    cudaError_t e_ = ensureContext();         \
    if (e_ != cudaSuccess) return record(e_); \
  } while (0)
#define RT_DRIVER(expr) return record(fromDriver(expr))

cudaError_t CUDARTAPI cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  RT_ENTER();
  return record(memcpyOn(dst, src, count, kind, CU_STREAM_PER_THREAD, false));
}

cudaError_t CUDARTAPI cudaMemset(void* devPtr, int value, size_t count) {
  RT_ENTER();
  return record(memsetOn(devPtr, value, count, CU_STREAM_PER_THREAD, false));
}

cudaError_t CUDARTAPI cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                                      cudaStream_t stream) {
  RT_ENTER();
  return record(memcpyOn(dst, src, count, kind, perThread(stream), true));
}

cudaError_t CUDARTAPI cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  RT_ENTER();
  return record(memsetOn(devPtr, value, count, perThread(stream), true));
}

cudaError_t CUDARTAPI cudaStreamQuery(cudaStream_t stream) {
  RT_ENTER();
  CUresult r = cuStreamQuery(perThread(stream));
  if (r == CUDA_ERROR_NOT_READY) return cudaErrorNotReady;
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaStreamSynchronize(cudaStream_t stream) {
  RT_ENTER();
  RT_DRIVER(cuStreamSynchronize(perThread(stream)));
}

cudaError_t CUDARTAPI cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  RT_ENTER();
  RT_DRIVER(cuStreamWaitEvent(perThread(stream), cu(event), flags));
}

cudaError_t CUDARTAPI cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  RT_ENTER();
  RT_DRIVER(cuEventRecord(cu(event), perThread(stream)));
}

cudaError_t CUDARTAPI cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags) {
  RT_ENTER();
  RT_DRIVER(cuEventRecordWithFlags(cu(event), perThread(stream), flags));
}

cudaError_t CUDARTAPI cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData) {
  RT_ENTER();
  return record(launchHostFuncOn(perThread(stream), fn, userData));
}

cudaError_t CUDARTAPI cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback, void* userData,
                                            unsigned int flags) {
  RT_ENTER();
  return record(addCallbackOn(perThread(stream), callback, userData, flags));
}

cudaError_t CUDARTAPI cudaStreamGetFlags(cudaStream_t hStream, unsigned int* flags) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetFlags(perThread(hStream), flags));
}

cudaError_t CUDARTAPI cudaStreamGetPriority(cudaStream_t hStream, int* priority) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetPriority(perThread(hStream), priority));
}

cudaError_t CUDARTAPI cudaStreamGetId(cudaStream_t hStream, unsigned long long* streamId) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetId(perThread(hStream), streamId));
}

cudaError_t CUDARTAPI cudaStreamGetDevice(cudaStream_t hStream, int* device) {
  RT_ENTER();
  return record(streamDeviceOf(perThread(hStream), device));
}

cudaError_t CUDARTAPI cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pCaptureStatus) {
  if (pCaptureStatus == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUstreamCaptureStatus st;
  CUresult r = cuStreamIsCapturing(perThread(stream), &st);
  if (r == CUDA_SUCCESS) *pCaptureStatus = static_cast<cudaStreamCaptureStatus>(st);
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaMallocAsync(void** devPtr, size_t size, cudaStream_t hStream) {
  RT_ENTER();
  return record(mallocAsyncOn(devPtr, size, perThread(hStream)));
}

cudaError_t CUDARTAPI cudaFreeAsync(void* devPtr, cudaStream_t hStream) {
  RT_ENTER();
  return record(freeAsyncOn(devPtr, perThread(hStream)));
}
