// sim/'s libcudart.so.13: the CUDA runtime API as a thin layer over sim/'s driver API, so that
// runtime and driver objects are the same objects (a cudaStream_t is a CUstream). Every symbol is
// exported under the version node `libcudart.so.13` (libcudart.map), as the real library does:
// binaries linked against the real libcudart ask for `cudaMalloc@libcudart.so.13`.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "error_names.h"
#include "runtime_impl.h"

namespace ncclfr::sim::runtime {
namespace {

thread_local cudaError_t tlsLastError = cudaSuccess;
// Device flags are per process in the simulation; nothing but the program reads them back.
unsigned gDeviceFlags = 0;
std::mutex gRetainMu;
bool gRetained[256];

cudaError_t retainAndSet(int device) {
  CUcontext ctx = nullptr;
  CUresult r = cuDevicePrimaryCtxRetain(&ctx, device);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  {
    std::lock_guard<std::mutex> lock(gRetainMu);
    if (gRetained[device]) {
      (void)cuDevicePrimaryCtxRelease(device);  // the runtime holds one reference per device
    } else {
      gRetained[device] = true;
    }
  }
  return fromDriver(cuCtxSetCurrent(ctx));
}

}  // namespace

cudaError_t fromDriver(CUresult r) {
  switch (r) {
    case CUDA_ERROR_INVALID_CONTEXT: return cudaErrorDeviceUninitialized;
    case CUDA_ERROR_INVALID_HANDLE: return cudaErrorInvalidResourceHandle;
    case CUDA_ERROR_NOT_FOUND: return cudaErrorSymbolNotFound;
    default: return static_cast<cudaError_t>(r);  // the other codes sim/ uses share their numbers
  }
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) tlsLastError = e;
  return e;
}

cudaError_t takeLastError() {
  cudaError_t e = tlsLastError;
  tlsLastError = cudaSuccess;
  return e;
}

cudaError_t peekLastError() { return tlsLastError; }

cudaError_t setDevice(int device) {
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  int n = 0;
  r = cuDeviceGetCount(&n);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  if (device < 0 || device >= n) return cudaErrorInvalidDevice;
  return retainAndSet(device);
}

unsigned& deviceFlags() { return gDeviceFlags; }

cudaError_t ensureContext() {
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  CUcontext ctx = nullptr;
  r = cuCtxGetCurrent(&ctx);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  if (ctx != nullptr) return cudaSuccess;
  return retainAndSet(0);
}

cudaError_t memcpyOn(void* dst, const void* src, size_t count, cudaMemcpyKind kind, CUstream s, bool async) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  if (count == 0) return cudaSuccess;
  auto d = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(dst));
  auto sp = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(src));
  if (async) return fromDriver(cuMemcpyAsync(d, sp, count, s));
  // A device-to-device cudaMemcpy returns before the copy is done; the others wait for it.
  bool d2d = kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) {
    unsigned a = 0, b = 0;
    d2d = cuPointerGetAttribute(&a, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d) == CUDA_SUCCESS &&
          cuPointerGetAttribute(&b, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, sp) == CUDA_SUCCESS &&
          a == CU_MEMORYTYPE_DEVICE && b == CU_MEMORYTYPE_DEVICE;
  }
  if (d2d) return fromDriver(cuMemcpyAsync(d, sp, count, s));
  CUresult r = cuMemcpyAsync(d, sp, count, s);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  return fromDriver(cuStreamSynchronize(s));
}

cudaError_t memsetOn(void* dst, int value, size_t count, CUstream s, bool async) {
  auto d = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(dst));
  CUresult r = cuMemsetD8Async(d, static_cast<unsigned char>(value), count, s);
  if (r != CUDA_SUCCESS || async) return fromDriver(r);
  // cudaMemset on device memory returns before it is done; on host memory it completes first.
  unsigned type = 0;
  if (cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d) == CUDA_SUCCESS &&
      type == CU_MEMORYTYPE_DEVICE) {
    return cudaSuccess;
  }
  return fromDriver(cuStreamSynchronize(s));
}

cudaError_t mallocAsyncOn(void** ptr, size_t size, CUstream s) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  unsigned long long id = 0;
  CUresult r = cuStreamGetId(s, &id);  // validates the stream
  if (r != CUDA_SUCCESS) return fromDriver(r);
  if (size == 0) {
    *ptr = nullptr;
    return cudaSuccess;
  }
  CUdeviceptr d = 0;
  r = cuMemAlloc(&d, size);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  *ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  return cudaSuccess;
}

namespace {
// Runs on the stream's worker thread, which has no current context, so cuMemFree does not wait for
// the device (that would wait for this very stream); stream order already did the waiting.
void freeWhenReached(void* ptr) {
  (void)cuMemFree(static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(ptr)));
}
}  // namespace

cudaError_t freeAsyncOn(void* ptr, CUstream s) {
  if (ptr == nullptr) return cudaErrorInvalidValue;
  CUdeviceptr base = 0;
  size_t size = 0;
  if (cuMemGetAddressRange(&base, &size, static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(ptr))) !=
          CUDA_SUCCESS ||
      reinterpret_cast<void*>(static_cast<uintptr_t>(base)) != ptr) {
    return cudaErrorInvalidValue;
  }
  return fromDriver(cuLaunchHostFunc(s, &freeWhenReached, ptr));
}

cudaError_t launchHostFuncOn(CUstream s, cudaHostFn_t fn, void* userData) {
  return fromDriver(cuLaunchHostFunc(s, fn, userData));
}

cudaError_t addCallbackOn(CUstream s, cudaStreamCallback_t cb, void* userData, unsigned flags) {
  if (cb == nullptr || flags != 0) return cudaErrorInvalidValue;
  // CUstreamCallback and cudaStreamCallback_t have the same shape (stream, status, userData).
  return fromDriver(cuStreamAddCallback(s, reinterpret_cast<CUstreamCallback>(cb), userData, 0));
}

cudaError_t streamDeviceOf(CUstream s, int* device) {
  if (device == nullptr) return cudaErrorInvalidValue;
  CUcontext ctx = nullptr;
  CUresult r = cuStreamGetCtx(s, &ctx);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  CUresult pr = cuCtxPushCurrent(ctx);
  if (pr != CUDA_SUCCESS) return fromDriver(pr);
  CUdevice dev = 0;
  r = cuCtxGetDevice(&dev);
  (void)cuCtxPopCurrent(nullptr);
  if (r != CUDA_SUCCESS) return fromDriver(r);
  *device = dev;
  return cudaSuccess;
}

}  // namespace ncclfr::sim::runtime

