#include "cuda_driver.h"

#include <dlfcn.h>

namespace ncclfr::recorder {
namespace {

template <typename F>
bool bind(void* lib, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
  }
  return *out != nullptr;
}

}  // namespace

const CudaDriver* loadCudaDriver(std::string* error) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (lib == nullptr) lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    *error = std::string("no CUDA driver (") + (why ? why : "libcuda.so.1 not found") + ")";
    return nullptr;
  }
  // Leaked on purpose: the table lives as long as the process, and the recorder's threads may use
  // it while static destructors run.
  auto* cu = new CudaDriver;
  std::string missing;
  bind(lib, "cuInit", &cu->init, &missing);
  bind(lib, "cuDriverGetVersion", &cu->driverGetVersion, &missing);
  bind(lib, "cuGetErrorString", &cu->getErrorString, &missing);
  bind(lib, "cuGetErrorName", &cu->getErrorName, &missing);
  bind(lib, "cuDeviceGet", &cu->deviceGet, &missing);
  bind(lib, "cuDeviceGetCount", &cu->deviceGetCount, &missing);
  bind(lib, "cuDevicePrimaryCtxRetain", &cu->devicePrimaryCtxRetain, &missing);
  bind(lib, "cuDevicePrimaryCtxRelease_v2", &cu->devicePrimaryCtxRelease, &missing);
  bind(lib, "cuCtxGetCurrent", &cu->ctxGetCurrent, &missing);
  bind(lib, "cuCtxSetCurrent", &cu->ctxSetCurrent, &missing);
  bind(lib, "cuCtxGetDevice", &cu->ctxGetDevice, &missing);
  bind(lib, "cuCtxPushCurrent_v2", &cu->ctxPushCurrent, &missing);
  bind(lib, "cuCtxPopCurrent_v2", &cu->ctxPopCurrent, &missing);
  bind(lib, "cuStreamCreate", &cu->streamCreate, &missing);
  bind(lib, "cuStreamDestroy_v2", &cu->streamDestroy, &missing);
  bind(lib, "cuStreamQuery", &cu->streamQuery, &missing);
  bind(lib, "cuStreamSynchronize", &cu->streamSynchronize, &missing);
  bind(lib, "cuStreamGetCtx", &cu->streamGetCtx, &missing);
  bind(lib, "cuStreamIsCapturing", &cu->streamIsCapturing, &missing);
  bind(lib, "cuStreamGetCaptureInfo_v3", &cu->streamGetCaptureInfo, &missing);
  bind(lib, "cuThreadExchangeStreamCaptureMode", &cu->threadExchangeStreamCaptureMode, &missing);
  bind(lib, "cuEventCreate", &cu->eventCreate, &missing);
  bind(lib, "cuEventDestroy_v2", &cu->eventDestroy, &missing);
  bind(lib, "cuEventRecord", &cu->eventRecord, &missing);
  bind(lib, "cuEventRecordWithFlags", &cu->eventRecordWithFlags, &missing);
  bind(lib, "cuEventQuery", &cu->eventQuery, &missing);
  bind(lib, "cuEventSynchronize", &cu->eventSynchronize, &missing);
  bind(lib, "cuEventElapsedTime_v2", &cu->eventElapsedTime, &missing);
  // Names GPU timing cannot do without; the rest only improve messages or are spare.
  if (!cu->init || !cu->ctxGetCurrent || !cu->ctxPushCurrent || !cu->ctxPopCurrent || !cu->streamCreate ||
      !cu->streamGetCtx || !cu->streamIsCapturing || !cu->threadExchangeStreamCaptureMode || !cu->eventCreate ||
      !cu->eventRecord || !cu->eventQuery || !cu->eventElapsedTime) {
    *error = "the CUDA driver lacks " + missing;
    return nullptr;
  }
  CUresult r = cu->init(0);
  if (r != CUDA_SUCCESS) {
    *error = "cuInit failed: " + cudaErrorText(*cu, r);
    return nullptr;
  }
  if (cu->driverGetVersion) cu->driverGetVersion(&cu->version);
  return cu;
}

std::string cudaErrorText(const CudaDriver& cu, CUresult r) {
  const char* name = nullptr;
  if (cu.getErrorName != nullptr && cu.getErrorName(r, &name) == CUDA_SUCCESS && name != nullptr) return name;
  return "CUresult " + std::to_string(static_cast<int>(r));
}

}  // namespace ncclfr::recorder
