// sim/'s libcuda.so.1: the CUDA driver API over driver_state.h. Exported names are the ABI names
// cuda.h maps to (cuStreamDestroy_v2, cuEventElapsedTime_v2, ...), with cuda.h's own signatures:
// this file includes it, so a signature that drifts from the header does not compile.
#include <cuda.h>

#include <cstring>
#include <string_view>

#include "driver_state.h"
#include "error_names.h"
#include "sim/common/futex.h"

using ncclfr::sim::monotonicNs;
using ncclfr::sim::cuda::Allocation;
using ncclfr::sim::cuda::Context;
using ncclfr::sim::cuda::Driver;
using ncclfr::sim::cuda::Event;
using ncclfr::sim::cuda::MemKind;
using ncclfr::sim::cuda::Stream;

namespace {

constexpr int kDriverVersion = CUDA_VERSION;

#define SIM_REQUIRE_INIT() \
  do {                     \
    if (!Driver::get().initialized()) return CUDA_ERROR_NOT_INITIALIZED; \
  } while (0)

thread_local CUstreamCaptureMode tlsCaptureMode = CU_STREAM_CAPTURE_MODE_GLOBAL;

Context* currentOrNull() { return Driver::current(); }

CUresult recordEvent(CUevent hEvent, CUstream hStream) {
  SIM_REQUIRE_INIT();
  auto ev = Driver::get().findEvent(hEvent);
  if (!ev) return CUDA_ERROR_INVALID_HANDLE;
  CUresult err;
  auto stream = Driver::get().resolveStream(hStream, &err);
  if (!stream) return err;
  // As on hardware, an event belongs to one context and can only be recorded on its streams.
  if (stream->ctx != ev->ctx) return CUDA_ERROR_INVALID_HANDLE;
  // Held across the submit so no query sees the new generation with the previous record's ticket;
  // the worker takes ev->mu only inside the item, never while the submit waits on it.
  std::lock_guard<std::mutex> lock(ev->mu);
  const uint64_t gen = ++ev->recordGen;
  ev->ticket = Driver::get().submit(stream, [ev, gen] {
    std::lock_guard<std::mutex> itemLock(ev->mu);
    if (ev->recordGen == gen) ev->timeNs = monotonicNs();
  });
  ev->stream = stream;
  return CUDA_SUCCESS;
}

CUresult copyAsync(void* dst, const void* src, size_t n, CUstream hStream, bool sync) {
  SIM_REQUIRE_INIT();
  if (n == 0) return CUDA_SUCCESS;
  if (dst == nullptr || src == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto stream = Driver::get().resolveStream(hStream, &err);
  if (!stream) return err;
  uint64_t t = Driver::get().submit(stream, [dst, src, n] { std::memmove(dst, src, n); });
  if (sync) stream->waitFor(t);
  return CUDA_SUCCESS;
}

template <typename T>
CUresult setAsync(void* dst, T value, size_t n, CUstream hStream, bool sync) {
  SIM_REQUIRE_INIT();
  if (n == 0) return CUDA_SUCCESS;
  if (dst == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto stream = Driver::get().resolveStream(hStream, &err);
  if (!stream) return err;
  uint64_t t = Driver::get().submit(stream, [dst, value, n] {
    T* p = static_cast<T*>(dst);
    for (size_t i = 0; i < n; ++i) p[i] = value;
  });
  if (sync) stream->waitFor(t);
  return CUDA_SUCCESS;
}

void* toPtr(CUdeviceptr p) { return reinterpret_cast<void*>(static_cast<uintptr_t>(p)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Initialization, version, errors

CUresult CUDAAPI cuInit(unsigned int Flags) {
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Driver::get().init();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = kDriverVersion;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char** pStr) {
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto* e = ncclfr::sim::cuda::findErrorText(static_cast<int>(error));
  if (e == nullptr || e->driverName == nullptr) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->message;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorName(CUresult error, const char** pStr) {
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto* e = ncclfr::sim::cuda::findErrorText(static_cast<int>(error));
  if (e == nullptr || e->driverName == nullptr) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->driverName;
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Devices

CUresult CUDAAPI cuDeviceGetCount(int* count) {
  SIM_REQUIRE_INIT();
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = Driver::get().deviceCount();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice* device, int ordinal) {
  SIM_REQUIRE_INIT();
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (ordinal < 0 || ordinal >= Driver::get().deviceCount()) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

#define SIM_CHECK_DEVICE(dev)                                                          \
  do {                                                                                 \
    if ((dev) < 0 || (dev) >= Driver::get().deviceCount()) return CUDA_ERROR_INVALID_DEVICE; \
  } while (0)

CUresult CUDAAPI cuDeviceGetName(char* name, int len, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::strncpy(name, "NCCLFR Simulated GPU", static_cast<size_t>(len));
  name[len - 1] = '\0';
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem(size_t* bytes, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *bytes = ncclfr::sim::cuda::kDeviceMemoryBytes;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::memset(uuid->bytes, 0, sizeof uuid->bytes);
  std::memcpy(uuid->bytes, "ncclfr-sim", 10);
  uuid->bytes[15] = static_cast<char>(dev);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (pciBusId == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(pciBusId, static_cast<size_t>(len), "00000000:%02X:00.0", dev + 1);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // An H100-like device; anything not listed reads 0, as an unsupported feature does.
  switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *pi = 132; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *pi = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *pi = 49152; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *pi = 232448; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *pi = dev + 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *pi = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *pi = 0; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *pi = 1; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *pi = 1; break;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: *pi = 1; break;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *pi = 1980000; break;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *pi = 2619000; break;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *pi = 5120; break;
    default: *pi = 0; break;
  }
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Contexts: one primary context per device, a per-thread stack of current contexts.

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* ctx = Driver::get().context(dev);
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    ++ctx->retained;
  }
  *pctx = reinterpret_cast<CUcontext>(ctx);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  Context* ctx = Driver::get().context(dev);
  std::lock_guard<std::mutex> lock(ctx->mu);
  if (ctx->retained == 0) return CUDA_ERROR_INVALID_CONTEXT;
  // The context outlives its last reference: streams and events stay usable, which real CUDA does
  // not promise but no program may rely on the opposite either.
  --ctx->retained;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* ctx = Driver::get().context(dev);
  std::lock_guard<std::mutex> lock(ctx->mu);
  *flags = 0;
  *active = ctx->retained > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev) {
  SIM_REQUIRE_INIT();
  SIM_CHECK_DEVICE(dev);
  Driver::get().synchronizeContext(Driver::get().context(dev));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext* pctx) {
  SIM_REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pctx = reinterpret_cast<CUcontext>(currentOrNull());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  SIM_REQUIRE_INIT();
  Context* c = nullptr;
  if (ctx != nullptr && (c = Driver::get().findContext(ctx)) == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  Driver::setCurrent(c);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx) {
  SIM_REQUIRE_INIT();
  Context* c = Driver::get().findContext(ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (!Driver::push(c)) return CUDA_ERROR_OUT_OF_MEMORY;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPopCurrent(CUcontext* pctx) {
  SIM_REQUIRE_INIT();
  Context* c = Driver::pop();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx != nullptr) *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice* device) {
  SIM_REQUIRE_INIT();
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSynchronize(void) {
  SIM_REQUIRE_INIT();
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  Driver::get().synchronizeContext(c);
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Streams

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int priority) {
  SIM_REQUIRE_INIT();
  if (phStream == nullptr || (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  // The device's priority range is [-5, 0] (lower is higher); values outside are clamped, as CUDA does.
  priority = priority > 0 ? 0 : (priority < -5 ? -5 : priority);
  *phStream = reinterpret_cast<CUstream>(Driver::get().createStream(c, flags, priority).get());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  return cuStreamCreateWithPriority(phStream, Flags, 0);
}

CUresult CUDAAPI cuStreamDestroy(CUstream hStream) {
  SIM_REQUIRE_INIT();
  if (hStream == nullptr || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD) {
    return CUDA_ERROR_INVALID_HANDLE;
  }
  return Driver::get().destroyStream(hStream) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult CUDAAPI cuStreamQuery(CUstream hStream) {
  SIM_REQUIRE_INIT();
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  return s->reached(s->lastTicket()) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream) {
  SIM_REQUIRE_INIT();
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  s->waitFor(s->lastTicket());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetCtx(CUstream hStream, CUcontext* pctx) {
  SIM_REQUIRE_INIT();
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  *pctx = reinterpret_cast<CUcontext>(s->ctx);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetFlags(CUstream hStream, unsigned int* flags) {
  SIM_REQUIRE_INIT();
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  *flags = s->flags;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetPriority(CUstream hStream, int* priority) {
  SIM_REQUIRE_INIT();
  if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  *priority = s->priority;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetId(CUstream hStream, unsigned long long* streamId) {
  SIM_REQUIRE_INIT();
  if (streamId == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  *streamId = s->id;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  SIM_REQUIRE_INIT();
  if (Flags != 0 && Flags != CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
  auto ev = Driver::get().findEvent(hEvent);
  if (!ev) return CUDA_ERROR_INVALID_HANDLE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  std::shared_ptr<Stream> target;
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(ev->mu);
    target = ev->stream;
    ticket = ev->ticket;
  }
  if (!target) return CUDA_SUCCESS;  // waiting on a never-recorded event is a no-op
  Driver::get().submit(s, [target, ticket] { target->waitFor(ticket); });
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void* userData) {
  SIM_REQUIRE_INIT();
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  Driver::get().submit(s, [fn, userData] { fn(userData); });
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void* userData, unsigned int flags) {
  SIM_REQUIRE_INIT();
  if (callback == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  auto s = Driver::get().resolveStream(hStream, &err);
  if (!s) return err;
  Driver::get().submit(s, [callback, userData, hStream] { callback(hStream, CUDA_SUCCESS, userData); });
  return CUDA_SUCCESS;
}

// Stream capture: sim/ never captures, so every stream reports "not capturing".
CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  SIM_REQUIRE_INIT();
  if (captureStatus == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!Driver::get().resolveStream(hStream, &err)) return err;
  *captureStatus = CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus* captureStatus_out, cuuint64_t* id_out,
                                        CUgraph* graph_out, const CUgraphNode** dependencies_out,
                                        const CUgraphEdgeData** edgeData_out, size_t* numDependencies_out) {
  SIM_REQUIRE_INIT();
  if (captureStatus_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!Driver::get().resolveStream(hStream, &err)) return err;
  *captureStatus_out = CU_STREAM_CAPTURE_STATUS_NONE;
  if (id_out != nullptr) *id_out = 0;
  if (graph_out != nullptr) *graph_out = nullptr;
  if (dependencies_out != nullptr) *dependencies_out = nullptr;
  if (edgeData_out != nullptr) *edgeData_out = nullptr;
  if (numDependencies_out != nullptr) *numDependencies_out = 0;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  SIM_REQUIRE_INIT();
  if (mode == nullptr || *mode < CU_STREAM_CAPTURE_MODE_GLOBAL || *mode > CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  CUstreamCaptureMode old = tlsCaptureMode;
  tlsCaptureMode = *mode;
  *mode = old;
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Events

CUresult CUDAAPI cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  SIM_REQUIRE_INIT();
  constexpr unsigned kKnown = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (phEvent == nullptr || (Flags & ~kKnown) != 0) return CUDA_ERROR_INVALID_VALUE;
  if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_VALUE;
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *phEvent = reinterpret_cast<CUevent>(Driver::get().createEvent(c, Flags).get());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent) {
  SIM_REQUIRE_INIT();
  // Work already queued keeps its own reference, so destroying a pending event is safe (as in CUDA).
  return Driver::get().destroyEvent(hEvent) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream) { return recordEvent(hEvent, hStream); }

CUresult CUDAAPI cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
  if (flags != CU_EVENT_RECORD_DEFAULT && flags != CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
  return recordEvent(hEvent, hStream);
}

CUresult CUDAAPI cuEventQuery(CUevent hEvent) {
  SIM_REQUIRE_INIT();
  auto ev = Driver::get().findEvent(hEvent);
  if (!ev) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard<std::mutex> lock(ev->mu);
  return !ev->stream || ev->stream->reached(ev->ticket) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent) {
  SIM_REQUIRE_INIT();
  auto ev = Driver::get().findEvent(hEvent);
  if (!ev) return CUDA_ERROR_INVALID_HANDLE;
  std::shared_ptr<Stream> target;
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(ev->mu);
    target = ev->stream;
    ticket = ev->ticket;
  }
  if (target) target->waitFor(ticket);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  SIM_REQUIRE_INIT();
  if (pMilliseconds == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto a = Driver::get().findEvent(hStart);
  auto b = Driver::get().findEvent(hEnd);
  if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  int64_t ta, tb;
  auto timeOf = [](Event& e, int64_t* t) {
    std::lock_guard<std::mutex> lock(e.mu);
    if (!e.stream) return CUDA_ERROR_INVALID_HANDLE;
    if (!e.stream->reached(e.ticket)) return CUDA_ERROR_NOT_READY;
    *t = e.timeNs;
    return CUDA_SUCCESS;
  };
  if (CUresult r = timeOf(*a, &ta); r != CUDA_SUCCESS) return r;
  if (CUresult r = timeOf(*b, &tb); r != CUDA_SUCCESS) return r;
  *pMilliseconds = static_cast<float>(static_cast<double>(tb - ta) / 1e6);
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------------------------
// Memory: "device" memory is host memory; copies and memsets are stream work like on a GPU.

CUresult CUDAAPI cuMemAlloc(CUdeviceptr* dptr, size_t bytesize) {
  SIM_REQUIRE_INIT();
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  void* p = Driver::get().allocate(bytesize, c->device, MemKind::Device);
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  SIM_REQUIRE_INIT();
  if (dptr == nullptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  void* p = Driver::get().allocate(bytesize, c->device, MemKind::Managed);
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr) {
  SIM_REQUIRE_INIT();
  if (dptr == 0) return CUDA_SUCCESS;
  // Freeing device memory waits for the device, as on hardware: a hung kernel hangs cudaFree too.
  if (Context* c = currentOrNull()) Driver::get().synchronizeContext(c);
  MemKind kind;
  if (!Driver::get().release(toPtr(dptr), &kind)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocHost(void** pp, size_t bytesize) {
  SIM_REQUIRE_INIT();
  if (pp == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *pp = Driver::get().allocate(bytesize, c->device, MemKind::Host);
  return *pp == nullptr ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  (void)Flags;
  return cuMemAllocHost(pp, bytesize);
}

CUresult CUDAAPI cuMemFreeHost(void* p) {
  SIM_REQUIRE_INIT();
  MemKind kind;
  if (!Driver::get().release(p, &kind)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostRegister(void* p, size_t bytesize, unsigned int Flags) {
  SIM_REQUIRE_INIT();
  (void)Flags;
  if (p == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c = currentOrNull();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return Driver::get().registerHost(p, bytesize, c->device) ? CUDA_SUCCESS
                                                            : CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
}

CUresult CUDAAPI cuMemHostUnregister(void* p) {
  SIM_REQUIRE_INIT();
  return Driver::get().unregisterHost(p) ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

CUresult CUDAAPI cuMemGetInfo(size_t* free, size_t* total) {
  SIM_REQUIRE_INIT();
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (currentOrNull() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *total = ncclfr::sim::cuda::kDeviceMemoryBytes;
  *free = *total - Driver::get().bytesAllocated();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetAddressRange(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  SIM_REQUIRE_INIT();
  uintptr_t base;
  Allocation a;
  if (!Driver::get().lookup(toPtr(dptr), &base, &a)) return CUDA_ERROR_NOT_FOUND;
  if (pbase != nullptr) *pbase = base;
  if (psize != nullptr) *psize = a.size;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  SIM_REQUIRE_INIT();
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uintptr_t base;
  Allocation a;
  if (!Driver::get().lookup(toPtr(ptr), &base, &a)) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
      *static_cast<CUcontext*>(data) = reinterpret_cast<CUcontext>(Driver::get().context(a.device));
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      *static_cast<unsigned*>(data) =
          a.kind == MemKind::Device ? CU_MEMORYTYPE_DEVICE
                                    : (a.kind == MemKind::Managed ? CU_MEMORYTYPE_UNIFIED : CU_MEMORYTYPE_HOST);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      *static_cast<void**>(data) = toPtr(ptr);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
      *static_cast<unsigned*>(data) = a.kind == MemKind::Managed ? 1u : 0u;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
      *static_cast<int*>(data) = a.device;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
      *static_cast<CUdeviceptr*>(data) = base;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
      *static_cast<size_t*>(data) = a.size;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount) {
  return copyAsync(toPtr(dst), toPtr(src), ByteCount, nullptr, true);
}
CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream) {
  return copyAsync(toPtr(dst), toPtr(src), ByteCount, hStream, false);
}
CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount) {
  return copyAsync(toPtr(dstDevice), srcHost, ByteCount, nullptr, true);
}
CUresult CUDAAPI cuMemcpyDtoH(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount) {
  return copyAsync(dstHost, toPtr(srcDevice), ByteCount, nullptr, true);
}
CUresult CUDAAPI cuMemcpyDtoD(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount) {
  return copyAsync(toPtr(dstDevice), toPtr(srcDevice), ByteCount, nullptr, true);
}
CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream) {
  return copyAsync(toPtr(dstDevice), srcHost, ByteCount, hStream, false);
}
CUresult CUDAAPI cuMemcpyDtoHAsync(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
  return copyAsync(dstHost, toPtr(srcDevice), ByteCount, hStream, false);
}
CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
  return copyAsync(toPtr(dstDevice), toPtr(srcDevice), ByteCount, hStream, false);
}
CUresult CUDAAPI cuMemsetD8(CUdeviceptr dstDevice, unsigned char uc, size_t N) {
  return setAsync<unsigned char>(toPtr(dstDevice), uc, N, nullptr, true);
}
CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream) {
  return setAsync<unsigned char>(toPtr(dstDevice), uc, N, hStream, false);
}
CUresult CUDAAPI cuMemsetD32(CUdeviceptr dstDevice, unsigned int ui, size_t N) {
  return setAsync<unsigned int>(toPtr(dstDevice), ui, N, nullptr, true);
}
CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream) {
  return setAsync<unsigned int>(toPtr(dstDevice), ui, N, hStream, false);
}

// ---------------------------------------------------------------------------------------------
// Entry points by name, for cudaGetDriverEntryPoint and programs that look the driver up themselves.

namespace {
struct ProcEntry {
  std::string_view name;
  void* fn;
};
#define SIM_PROC(base, fn) ProcEntry{#base, reinterpret_cast<void*>(&fn)}
const ProcEntry kProcs[] = {
    SIM_PROC(cuInit, cuInit),
    SIM_PROC(cuDriverGetVersion, cuDriverGetVersion),
    SIM_PROC(cuGetErrorString, cuGetErrorString),
    SIM_PROC(cuGetErrorName, cuGetErrorName),
    SIM_PROC(cuDeviceGet, cuDeviceGet),
    SIM_PROC(cuDeviceGetCount, cuDeviceGetCount),
    SIM_PROC(cuDeviceGetName, cuDeviceGetName),
    SIM_PROC(cuDeviceGetAttribute, cuDeviceGetAttribute),
    SIM_PROC(cuDeviceTotalMem, cuDeviceTotalMem),
    SIM_PROC(cuDeviceGetUuid, cuDeviceGetUuid),
    SIM_PROC(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId),
    SIM_PROC(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain),
    SIM_PROC(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease),
    SIM_PROC(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset),
    SIM_PROC(cuDevicePrimaryCtxGetState, cuDevicePrimaryCtxGetState),
    SIM_PROC(cuCtxGetCurrent, cuCtxGetCurrent),
    SIM_PROC(cuCtxSetCurrent, cuCtxSetCurrent),
    SIM_PROC(cuCtxPushCurrent, cuCtxPushCurrent),
    SIM_PROC(cuCtxPopCurrent, cuCtxPopCurrent),
    SIM_PROC(cuCtxGetDevice, cuCtxGetDevice),
    SIM_PROC(cuCtxSynchronize, cuCtxSynchronize),
    SIM_PROC(cuStreamCreate, cuStreamCreate),
    SIM_PROC(cuStreamCreateWithPriority, cuStreamCreateWithPriority),
    SIM_PROC(cuStreamDestroy, cuStreamDestroy),
    SIM_PROC(cuStreamQuery, cuStreamQuery),
    SIM_PROC(cuStreamSynchronize, cuStreamSynchronize),
    SIM_PROC(cuStreamGetCtx, cuStreamGetCtx),
    SIM_PROC(cuStreamGetFlags, cuStreamGetFlags),
    SIM_PROC(cuStreamGetPriority, cuStreamGetPriority),
    SIM_PROC(cuStreamGetId, cuStreamGetId),
    SIM_PROC(cuStreamWaitEvent, cuStreamWaitEvent),
    SIM_PROC(cuStreamAddCallback, cuStreamAddCallback),
    SIM_PROC(cuStreamIsCapturing, cuStreamIsCapturing),
    SIM_PROC(cuStreamGetCaptureInfo, cuStreamGetCaptureInfo),
    SIM_PROC(cuThreadExchangeStreamCaptureMode, cuThreadExchangeStreamCaptureMode),
    SIM_PROC(cuLaunchHostFunc, cuLaunchHostFunc),
    SIM_PROC(cuEventCreate, cuEventCreate),
    SIM_PROC(cuEventDestroy, cuEventDestroy),
    SIM_PROC(cuEventRecord, cuEventRecord),
    SIM_PROC(cuEventRecordWithFlags, cuEventRecordWithFlags),
    SIM_PROC(cuEventQuery, cuEventQuery),
    SIM_PROC(cuEventSynchronize, cuEventSynchronize),
    SIM_PROC(cuEventElapsedTime, cuEventElapsedTime),
    SIM_PROC(cuMemAlloc, cuMemAlloc),
    SIM_PROC(cuMemAllocManaged, cuMemAllocManaged),
    SIM_PROC(cuMemFree, cuMemFree),
    SIM_PROC(cuMemAllocHost, cuMemAllocHost),
    SIM_PROC(cuMemHostAlloc, cuMemHostAlloc),
    SIM_PROC(cuMemFreeHost, cuMemFreeHost),
    SIM_PROC(cuMemHostRegister, cuMemHostRegister),
    SIM_PROC(cuMemHostUnregister, cuMemHostUnregister),
    SIM_PROC(cuMemGetInfo, cuMemGetInfo),
    SIM_PROC(cuMemGetAddressRange, cuMemGetAddressRange),
    SIM_PROC(cuPointerGetAttribute, cuPointerGetAttribute),
    SIM_PROC(cuMemcpy, cuMemcpy),
    SIM_PROC(cuMemcpyAsync, cuMemcpyAsync),
    SIM_PROC(cuMemcpyHtoD, cuMemcpyHtoD),
    SIM_PROC(cuMemcpyDtoH, cuMemcpyDtoH),
    SIM_PROC(cuMemcpyDtoD, cuMemcpyDtoD),
    SIM_PROC(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync),
    SIM_PROC(cuMemcpyDtoHAsync, cuMemcpyDtoHAsync),
    SIM_PROC(cuMemcpyDtoDAsync, cuMemcpyDtoDAsync),
    SIM_PROC(cuMemsetD8, cuMemsetD8),
    SIM_PROC(cuMemsetD8Async, cuMemsetD8Async),
    SIM_PROC(cuMemsetD32, cuMemsetD32),
    SIM_PROC(cuMemsetD32Async, cuMemsetD32Async),
};
#undef SIM_PROC
}  // namespace

CUresult CUDAAPI cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                                  CUdriverProcAddressQueryResult* symbolStatus) {
  (void)cudaVersion;
  (void)flags;
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pfn = nullptr;
  std::string_view want(symbol);
  for (const ProcEntry& e : kProcs) {
    if (e.name == want) {
      *pfn = e.fn;
      if (symbolStatus != nullptr) *symbolStatus = CU_GET_PROC_ADDRESS_SUCCESS;
      return CUDA_SUCCESS;
    }
  }
  if (symbolStatus != nullptr) *symbolStatus = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return CUDA_ERROR_NOT_FOUND;
}
