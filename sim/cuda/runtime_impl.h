// The CUDA runtime calls that take a stream, shared by the legacy-default-stream exports
// (runtime_api.cc) and the per-thread-default-stream `_ptsz`/`_ptds` exports (runtime_ptsz.cc):
// they differ only in what stream 0 means.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

namespace ncclfr::sim::runtime {

// Every runtime entry point calls this first: it initializes the driver and makes a device current
// on the calling thread (device 0 unless cudaSetDevice chose another), as the real runtime does.
cudaError_t ensureContext();
cudaError_t fromDriver(CUresult r);
cudaError_t record(cudaError_t e);  // sets the thread's last error when e is an error; returns e
cudaError_t takeLastError();
cudaError_t peekLastError();
cudaError_t setDevice(int device);
unsigned& deviceFlags();

cudaError_t memcpyOn(void* dst, const void* src, size_t count, cudaMemcpyKind kind, CUstream s, bool async);
cudaError_t memsetOn(void* dst, int value, size_t count, CUstream s, bool async);
cudaError_t mallocAsyncOn(void** ptr, size_t size, CUstream s);
cudaError_t freeAsyncOn(void* ptr, CUstream s);
cudaError_t launchHostFuncOn(CUstream s, cudaHostFn_t fn, void* userData);
cudaError_t addCallbackOn(CUstream s, cudaStreamCallback_t cb, void* userData, unsigned flags);
cudaError_t streamDeviceOf(CUstream s, int* device);

}  // namespace ncclfr::sim::runtime
