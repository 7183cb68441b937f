// The exported CUDA runtime entry points (legacy default stream semantics for stream 0). Signatures
// come from cuda_runtime_api.h, which this file includes, so they cannot drift from CUDA's.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>

#include "error_names.h"
#include "runtime_impl.h"

using namespace ncclfr::sim::runtime;

#define RT_ENTER()                            \
  do {                                        \
    cudaError_t e_ = ensureContext();         \
    if (e_ != cudaSuccess) return record(e_); \
  } while (0)
#define RT_DRIVER(expr) return record(fromDriver(expr))

namespace {
CUstream cu(cudaStream_t s) { return reinterpret_cast<CUstream>(s); }
CUevent cu(cudaEvent_t e) { return reinterpret_cast<CUevent>(e); }
CUdeviceptr dptr(const void* p) { return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p)); }
}  // namespace

// ---- errors and versions --------------------------------------------------------------------
cudaError_t CUDARTAPI cudaGetLastError(void) { return takeLastError(); }
cudaError_t CUDARTAPI cudaPeekAtLastError(void) { return peekLastError(); }

const char* CUDARTAPI cudaGetErrorString(cudaError_t error) {
  const auto* e = ncclfr::sim::cuda::findErrorText(static_cast<int>(error));
  return e != nullptr ? e->message : "unrecognized error code";
}

const char* CUDARTAPI cudaGetErrorName(cudaError_t error) {
  const auto* e = ncclfr::sim::cuda::findErrorText(static_cast<int>(error));
  return e != nullptr ? e->runtimeName : "unrecognized error code";
}

cudaError_t CUDARTAPI cudaDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return record(cudaErrorInvalidValue);
  RT_DRIVER(cuDriverGetVersion(driverVersion));
}

cudaError_t CUDARTAPI cudaRuntimeGetVersion(int* runtimeVersion) {
  if (runtimeVersion == nullptr) return record(cudaErrorInvalidValue);
  *runtimeVersion = CUDART_VERSION;
  return cudaSuccess;
}

// ---- devices --------------------------------------------------------------------------------
cudaError_t CUDARTAPI cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record(cudaErrorInvalidValue);
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return record(fromDriver(r));
  RT_DRIVER(cuDeviceGetCount(count));
}

cudaError_t CUDARTAPI cudaSetDevice(int device) { return record(setDevice(device)); }

cudaError_t CUDARTAPI cudaInitDevice(int device, unsigned int deviceFlags, unsigned int flags) {
  (void)deviceFlags;
  if (flags != 0) return record(cudaErrorInvalidValue);
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return record(fromDriver(r));
  int n = 0;
  (void)cuDeviceGetCount(&n);
  if (device < 0 || device >= n) return record(cudaErrorInvalidDevice);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGetDevice(int* device) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUdevice d = 0;
  CUresult r = cuCtxGetDevice(&d);
  if (r != CUDA_SUCCESS) return record(fromDriver(r));
  *device = d;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaSetDeviceFlags(unsigned int flags) {
  RT_ENTER();
  deviceFlags() = flags;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGetDeviceFlags(unsigned int* flags) {
  if (flags == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  *flags = deviceFlags();
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceSynchronize(void) {
  RT_ENTER();
  RT_DRIVER(cuCtxSynchronize());
}

cudaError_t CUDARTAPI cudaDeviceReset(void) {
  RT_ENTER();
  CUdevice d = 0;
  (void)cuCtxGetDevice(&d);
  RT_DRIVER(cuDevicePrimaryCtxReset(d));
}

cudaError_t CUDARTAPI cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (value == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUresult r = cuDeviceGetAttribute(value, static_cast<CUdevice_attribute>(attr), device);
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  int n = 0;
  (void)cuDeviceGetCount(&n);
  if (device < 0 || device >= n) return record(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  (void)cuDeviceGetName(prop->name, sizeof prop->name, device);
  CUuuid uuid;
  (void)cuDeviceGetUuid(&uuid, device);
  std::memcpy(&prop->uuid, &uuid, sizeof prop->uuid);
  (void)cuDeviceTotalMem(&prop->totalGlobalMem, device);
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    (void)cuDeviceGetAttribute(&v, a, device);
    return v;
  };
  prop->major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  prop->minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  prop->multiProcessorCount = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  prop->warpSize = attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE);
  prop->maxThreadsPerBlock = attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
  prop->sharedMemPerBlock = static_cast<size_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK));
  prop->sharedMemPerBlockOptin = static_cast<size_t>(attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
  prop->pciBusID = attr(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
  prop->unifiedAddressing = 1;
  prop->canMapHostMemory = 1;
  prop->concurrentKernels = 1;
  prop->managedMemory = 1;
  prop->streamPrioritiesSupported = 1;
  prop->memoryBusWidth = attr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceGetPCIBusId(char* pciBusId, int len, int device) {
  if (pciBusId == nullptr || len <= 0) return record(cudaErrorInvalidValue);
  RT_ENTER();
  RT_DRIVER(cuDeviceGetPCIBusId(pciBusId, len, device));
}

cudaError_t CUDARTAPI cudaDeviceGetByPCIBusId(int* device, const char* pciBusId) {
  if (device == nullptr || pciBusId == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  int n = 0;
  (void)cuDeviceGetCount(&n);
  for (int d = 0; d < n; ++d) {
    char buf[32];
    (void)cuDeviceGetPCIBusId(buf, sizeof buf, d);
    // Accept both the 8-digit and the 4-digit domain spelling, as CUDA does.
    if (strcasecmp(buf, pciBusId) == 0 || strcasecmp(buf + 4, pciBusId) == 0) {
      *device = d;
      return cudaSuccess;
    }
  }
  return record(cudaErrorInvalidDevice);
}

cudaError_t CUDARTAPI cudaDeviceCanAccessPeer(int* canAccessPeer, int device, int peerDevice) {
  if (canAccessPeer == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  int n = 0;
  (void)cuDeviceGetCount(&n);
  if (device < 0 || device >= n || peerDevice < 0 || peerDevice >= n) return record(cudaErrorInvalidDevice);
  *canAccessPeer = device != peerDevice ? 1 : 0;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceEnablePeerAccess(int peerDevice, unsigned int flags) {
  RT_ENTER();
  int n = 0;
  (void)cuDeviceGetCount(&n);
  if (flags != 0) return record(cudaErrorInvalidValue);
  if (peerDevice < 0 || peerDevice >= n) return record(cudaErrorInvalidDevice);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceDisablePeerAccess(int peerDevice) {
  RT_ENTER();
  int n = 0;
  (void)cuDeviceGetCount(&n);
  if (peerDevice < 0 || peerDevice >= n) return record(cudaErrorInvalidDevice);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceGetStreamPriorityRange(int* leastPriority, int* greatestPriority) {
  RT_ENTER();
  if (leastPriority != nullptr) *leastPriority = 0;
  if (greatestPriority != nullptr) *greatestPriority = -5;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemGetInfo(size_t* free, size_t* total) {
  RT_ENTER();
  RT_DRIVER(cuMemGetInfo(free, total));
}

// ---- streams --------------------------------------------------------------------------------
cudaError_t CUDARTAPI cudaStreamCreateWithPriority(cudaStream_t* pStream, unsigned int flags, int priority) {
  if (pStream == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUstream s = nullptr;
  CUresult r = cuStreamCreateWithPriority(&s, flags, priority);
  if (r == CUDA_SUCCESS) *pStream = reinterpret_cast<cudaStream_t>(s);
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
  return cudaStreamCreateWithPriority(pStream, flags, 0);
}

cudaError_t CUDARTAPI cudaStreamCreate(cudaStream_t* pStream) { return cudaStreamCreateWithPriority(pStream, 0, 0); }

cudaError_t CUDARTAPI cudaStreamDestroy(cudaStream_t stream) {
  RT_ENTER();
  RT_DRIVER(cuStreamDestroy(cu(stream)));
}

cudaError_t CUDARTAPI cudaStreamSynchronize(cudaStream_t stream) {
  RT_ENTER();
  RT_DRIVER(cuStreamSynchronize(cu(stream)));
}

cudaError_t CUDARTAPI cudaStreamQuery(cudaStream_t stream) {
  RT_ENTER();
  CUresult r = cuStreamQuery(cu(stream));
  // cudaErrorNotReady is an answer, not an error: it does not become the last error.
  if (r == CUDA_ERROR_NOT_READY) return cudaErrorNotReady;
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  RT_ENTER();
  RT_DRIVER(cuStreamWaitEvent(cu(stream), cu(event), flags));
}

cudaError_t CUDARTAPI cudaStreamGetFlags(cudaStream_t hStream, unsigned int* flags) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetFlags(cu(hStream), flags));
}

cudaError_t CUDARTAPI cudaStreamGetPriority(cudaStream_t hStream, int* priority) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetPriority(cu(hStream), priority));
}

cudaError_t CUDARTAPI cudaStreamGetId(cudaStream_t hStream, unsigned long long* streamId) {
  RT_ENTER();
  RT_DRIVER(cuStreamGetId(cu(hStream), streamId));
}

cudaError_t CUDARTAPI cudaStreamGetDevice(cudaStream_t hStream, int* device) {
  RT_ENTER();
  return record(streamDeviceOf(cu(hStream), device));
}

cudaError_t CUDARTAPI cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData) {
  RT_ENTER();
  return record(launchHostFuncOn(cu(stream), fn, userData));
}

cudaError_t CUDARTAPI cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback, void* userData,
                                            unsigned int flags) {
  RT_ENTER();
  return record(addCallbackOn(cu(stream), callback, userData, flags));
}

cudaError_t CUDARTAPI cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* pCaptureStatus) {
  if (pCaptureStatus == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUstreamCaptureStatus st;
  CUresult r = cuStreamIsCapturing(cu(stream), &st);
  if (r == CUDA_SUCCESS) *pCaptureStatus = static_cast<cudaStreamCaptureStatus>(st);
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaStreamGetCaptureInfo(cudaStream_t stream, enum cudaStreamCaptureStatus* captureStatus_out,
                                               unsigned long long* id_out, cudaGraph_t* graph_out,
                                               const cudaGraphNode_t** dependencies_out,
                                               const cudaGraphEdgeData** edgeData_out, size_t* numDependencies_out) {
  if (captureStatus_out == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUstreamCaptureStatus st;
  cuuint64_t id = 0;
  CUresult r = cuStreamGetCaptureInfo(cu(stream), &st, &id, nullptr, nullptr, nullptr, numDependencies_out);
  if (r != CUDA_SUCCESS) return record(fromDriver(r));
  *captureStatus_out = static_cast<cudaStreamCaptureStatus>(st);
  if (id_out != nullptr) *id_out = id;
  if (graph_out != nullptr) *graph_out = nullptr;
  if (dependencies_out != nullptr) *dependencies_out = nullptr;
  if (edgeData_out != nullptr) *edgeData_out = nullptr;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode* mode) {
  if (mode == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  auto m = static_cast<CUstreamCaptureMode>(*mode);
  CUresult r = cuThreadExchangeStreamCaptureMode(&m);
  if (r == CUDA_SUCCESS) *mode = static_cast<cudaStreamCaptureMode>(m);
  RT_DRIVER(r);
}

// Graph capture is not simulated: capture never starts, so programs see a clear error, not a
// silently empty graph.
cudaError_t CUDARTAPI cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
  (void)stream;
  (void)mode;
  RT_ENTER();
  return record(cudaErrorNotSupported);
}

cudaError_t CUDARTAPI cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  (void)stream;
  if (pGraph != nullptr) *pGraph = nullptr;
  RT_ENTER();
  return record(cudaErrorIllegalState);
}

// ---- events ---------------------------------------------------------------------------------
cudaError_t CUDARTAPI cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUevent e = nullptr;
  CUresult r = cuEventCreate(&e, flags);
  if (r == CUDA_SUCCESS) *event = reinterpret_cast<cudaEvent_t>(e);
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t CUDARTAPI cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  RT_ENTER();
  RT_DRIVER(cuEventRecord(cu(event), cu(stream)));
}

cudaError_t CUDARTAPI cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags) {
  RT_ENTER();
  RT_DRIVER(cuEventRecordWithFlags(cu(event), cu(stream), flags));
}

cudaError_t CUDARTAPI cudaEventQuery(cudaEvent_t event) {
  RT_ENTER();
  CUresult r = cuEventQuery(cu(event));
  if (r == CUDA_ERROR_NOT_READY) return cudaErrorNotReady;
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaEventSynchronize(cudaEvent_t event) {
  RT_ENTER();
  RT_DRIVER(cuEventSynchronize(cu(event)));
}

cudaError_t CUDARTAPI cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  RT_ENTER();
  RT_DRIVER(cuEventElapsedTime(ms, cu(start), cu(end)));
}

cudaError_t CUDARTAPI cudaEventDestroy(cudaEvent_t event) {
  RT_ENTER();
  RT_DRIVER(cuEventDestroy(cu(event)));
}

// ---- memory ---------------------------------------------------------------------------------
cudaError_t CUDARTAPI cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  if (size == 0) {
    *devPtr = nullptr;
    return cudaSuccess;
  }
  CUdeviceptr d = 0;
  CUresult r = cuMemAlloc(&d, size);
  if (r == CUDA_SUCCESS) *devPtr = reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaMallocManaged(void** devPtr, size_t size, unsigned int flags) {
  if (devPtr == nullptr || size == 0) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUdeviceptr d = 0;
  CUresult r = cuMemAllocManaged(&d, size, flags == 0 ? static_cast<unsigned>(CU_MEM_ATTACH_GLOBAL) : flags);
  if (r == CUDA_SUCCESS) *devPtr = reinterpret_cast<void*>(static_cast<uintptr_t>(d));
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaFree(void* devPtr) {
  RT_ENTER();
  RT_DRIVER(cuMemFree(dptr(devPtr)));
}

cudaError_t CUDARTAPI cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  RT_DRIVER(cuMemAllocHost(ptr, size));
}

cudaError_t CUDARTAPI cudaHostAlloc(void** pHost, size_t size, unsigned int flags) {
  if (pHost == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  RT_DRIVER(cuMemHostAlloc(pHost, size, flags));
}

cudaError_t CUDARTAPI cudaFreeHost(void* ptr) {
  RT_ENTER();
  if (ptr == nullptr) return cudaSuccess;
  RT_DRIVER(cuMemFreeHost(ptr));
}

cudaError_t CUDARTAPI cudaHostRegister(void* ptr, size_t size, unsigned int flags) {
  RT_ENTER();
  RT_DRIVER(cuMemHostRegister(ptr, size, flags));
}

cudaError_t CUDARTAPI cudaHostUnregister(void* ptr) {
  RT_ENTER();
  RT_DRIVER(cuMemHostUnregister(ptr));
}

cudaError_t CUDARTAPI cudaHostGetDevicePointer(void** pDevice, void* pHost, unsigned int flags) {
  if (pDevice == nullptr || pHost == nullptr || flags != 0) return record(cudaErrorInvalidValue);
  RT_ENTER();
  void* p = nullptr;
  CUresult r = cuPointerGetAttribute(&p, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, dptr(pHost));
  if (r == CUDA_SUCCESS) *pDevice = p;
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaPointerGetAttributes(struct cudaPointerAttributes* attributes, const void* ptr) {
  if (attributes == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  std::memset(attributes, 0, sizeof *attributes);
  unsigned type = 0;
  if (cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, dptr(ptr)) != CUDA_SUCCESS) {
    // Unknown host memory: CUDA 11+ answers "unregistered" rather than failing.
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
    return cudaSuccess;
  }
  int dev = 0;
  (void)cuPointerGetAttribute(&dev, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, dptr(ptr));
  attributes->device = dev;
  if (type == CU_MEMORYTYPE_DEVICE) {
    attributes->type = cudaMemoryTypeDevice;
  } else if (type == CU_MEMORYTYPE_UNIFIED) {
    attributes->type = cudaMemoryTypeManaged;
  } else {
    attributes->type = cudaMemoryTypeHost;
  }
  attributes->devicePointer = const_cast<void*>(ptr);
  attributes->hostPointer = type == CU_MEMORYTYPE_DEVICE ? nullptr : const_cast<void*>(ptr);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  RT_ENTER();
  return record(memcpyOn(dst, src, count, kind, nullptr, false));
}

cudaError_t CUDARTAPI cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                                      cudaStream_t stream) {
  RT_ENTER();
  return record(memcpyOn(dst, src, count, kind, cu(stream), true));
}

cudaError_t CUDARTAPI cudaMemcpyPeer(void* dst, int dstDevice, const void* src, int srcDevice, size_t count) {
  (void)dstDevice;
  (void)srcDevice;
  RT_ENTER();
  return record(memcpyOn(dst, src, count, cudaMemcpyDefault, nullptr, false));
}

cudaError_t CUDARTAPI cudaMemcpyPeerAsync(void* dst, int dstDevice, const void* src, int srcDevice, size_t count,
                                          cudaStream_t stream) {
  (void)dstDevice;
  (void)srcDevice;
  RT_ENTER();
  return record(memcpyOn(dst, src, count, cudaMemcpyDefault, cu(stream), true));
}

cudaError_t CUDARTAPI cudaMemset(void* devPtr, int value, size_t count) {
  RT_ENTER();
  return record(memsetOn(devPtr, value, count, nullptr, false));
}

cudaError_t CUDARTAPI cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  RT_ENTER();
  return record(memsetOn(devPtr, value, count, cu(stream), true));
}

cudaError_t CUDARTAPI cudaMallocAsync(void** devPtr, size_t size, cudaStream_t hStream) {
  RT_ENTER();
  return record(mallocAsyncOn(devPtr, size, cu(hStream)));
}

cudaError_t CUDARTAPI cudaFreeAsync(void* devPtr, cudaStream_t hStream) {
  RT_ENTER();
  return record(freeAsyncOn(devPtr, cu(hStream)));
}

// ---- driver entry points --------------------------------------------------------------------
cudaError_t CUDARTAPI cudaGetDriverEntryPointByVersion(const char* symbol, void** funcPtr, unsigned int cudaVersion,
                                                       unsigned long long flags,
                                                       enum cudaDriverEntryPointQueryResult* driverStatus) {
  if (symbol == nullptr || funcPtr == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
  CUresult r = cuGetProcAddress(symbol, funcPtr, static_cast<int>(cudaVersion), flags, &st);
  if (driverStatus != nullptr) {
    *driverStatus = st == CU_GET_PROC_ADDRESS_SUCCESS ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
  }
  // A missing symbol is reported through driverStatus; the call itself succeeds, as in CUDA.
  if (r == CUDA_ERROR_NOT_FOUND && driverStatus != nullptr) return cudaSuccess;
  RT_DRIVER(r);
}

cudaError_t CUDARTAPI cudaGetDriverEntryPoint(const char* symbol, void** funcPtr, unsigned long long flags,
                                              enum cudaDriverEntryPointQueryResult* driverStatus) {
  return cudaGetDriverEntryPointByVersion(symbol, funcPtr, CUDART_VERSION, flags, driverStatus);
}

// ---- limits: stored and read back; nothing in the simulation depends on them ------------------
namespace {
std::mutex gLimitMu;
size_t gLimits[16] = {1024, 1048576, 8388608, 2, 2048, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
}  // namespace

cudaError_t CUDARTAPI cudaDeviceSetLimit(enum cudaLimit limit, size_t value) {
  RT_ENTER();
  auto i = static_cast<size_t>(limit);
  if (i >= std::size(gLimits)) return record(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(gLimitMu);
  gLimits[i] = value;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceGetLimit(size_t* pValue, enum cudaLimit limit) {
  if (pValue == nullptr) return record(cudaErrorInvalidValue);
  RT_ENTER();
  auto i = static_cast<size_t>(limit);
  if (i >= std::size(gLimits)) return record(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(gLimitMu);
  *pValue = gLimits[i];
  return cudaSuccess;
}
