// The CUDA driver entry points the recorder uses, from dlopen("libcuda.so.1") at run time: exactly
// the names listed in docs/internals.md (sim/'s libcuda.so.1 exports the same). Without a driver
// the recorder records host-side only.
#pragma once

#include <cuda.h>

#include <string>

namespace ncclfr::recorder {

struct CudaDriver {
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*driverGetVersion)(int*) = nullptr;
  CUresult (*getErrorString)(CUresult, const char**) = nullptr;
  CUresult (*getErrorName)(CUresult, const char**) = nullptr;
  CUresult (*deviceGet)(CUdevice*, int) = nullptr;
  CUresult (*deviceGetCount)(int*) = nullptr;
  CUresult (*devicePrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*devicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*ctxGetCurrent)(CUcontext*) = nullptr;
  CUresult (*ctxSetCurrent)(CUcontext) = nullptr;
  CUresult (*ctxGetDevice)(CUdevice*) = nullptr;
  CUresult (*ctxPushCurrent)(CUcontext) = nullptr;
  CUresult (*ctxPopCurrent)(CUcontext*) = nullptr;
  CUresult (*streamCreate)(CUstream*, unsigned int) = nullptr;
  CUresult (*streamDestroy)(CUstream) = nullptr;
  CUresult (*streamQuery)(CUstream) = nullptr;
  CUresult (*streamSynchronize)(CUstream) = nullptr;
  CUresult (*streamGetCtx)(CUstream, CUcontext*) = nullptr;
  CUresult (*streamIsCapturing)(CUstream, CUstreamCaptureStatus*) = nullptr;
  CUresult (*streamGetCaptureInfo)(CUstream, CUstreamCaptureStatus*, cuuint64_t*, CUgraph*,
                                   const CUgraphNode**, const CUgraphEdgeData**, size_t*) = nullptr;
  CUresult (*threadExchangeStreamCaptureMode)(CUstreamCaptureMode*) = nullptr;
  CUresult (*eventCreate)(CUevent*, unsigned int) = nullptr;
  CUresult (*eventDestroy)(CUevent) = nullptr;
  CUresult (*eventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*eventRecordWithFlags)(CUevent, CUstream, unsigned int) = nullptr;
  CUresult (*eventQuery)(CUevent) = nullptr;
  CUresult (*eventSynchronize)(CUevent) = nullptr;
  CUresult (*eventElapsedTime)(float*, CUevent, CUevent) = nullptr;
  int version = 0;
};

// Loads the driver and resolves every name; null with *error when the driver or a name needed for
// GPU timing is missing, or cuInit fails (no GPU).
const CudaDriver* loadCudaDriver(std::string* error);

// "CUDA_ERROR_NOT_READY" and the like, for messages.
std::string cudaErrorText(const CudaDriver& cu, CUresult r);

}  // namespace ncclfr::recorder
