// A stand-in libcuda.so.1 for the recorder's capture test: it models just enough of the driver for
// the recorder's GPU timing (one context, events that complete as soon as they are recorded) and
// polices CUDA-graph capture rules the way the real driver enforces them:
//   * stream FAKE_CUDA_CAPTURING_STREAM (0xca97) reports itself as capturing;
//   * with FAKE_CUDA_GLOBAL_CAPTURE=1 some thread is capturing in cudaStreamCaptureModeGlobal the
//     whole time, so a "potentially unsafe" call (cuEventQuery, cuStreamQuery, cuEventSynchronize,
//     cuStreamSynchronize) from a thread that did not switch itself to relaxed mode would
//     invalidate it;
//   * recording an event on the capturing stream would add it to the graph.
// Each such call is a violation; the count is printed at exit ("fake-cuda: N capture violations").
// FAKE_CUDA_EVENT_LIMIT=N makes cuEventCreate fail (CUDA_ERROR_OUT_OF_MEMORY) once N events exist,
// for the recorder's untracked calls (0: not even the watchdog's reference event).
#include <cuda.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr uintptr_t kCapturingStream = 0xca97;
int gContext;
std::atomic<int> gViolations{0};
std::atomic<long> gEventsCreated{0};
thread_local CUstreamCaptureMode tMode = CU_STREAM_CAPTURE_MODE_GLOBAL;

struct FakeEvent {
  std::atomic<int64_t> recordedNs{0};
};

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

bool globalCapture() {
  const char* v = std::getenv("FAKE_CUDA_GLOBAL_CAPTURE");
  return v != nullptr && v[0] == '1';
}

void unsafeCall() {
  if (globalCapture() && tMode != CU_STREAM_CAPTURE_MODE_RELAXED) ++gViolations;
}

struct Report {
  ~Report() { std::fprintf(stderr, "fake-cuda: %d capture violations\n", gViolations.load()); }
} gReport;

}  // namespace

#define API extern "C" __attribute__((visibility("default"))) CUresult

API cuInit(unsigned) { return CUDA_SUCCESS; }
API cuDriverGetVersion(int* v) {
  *v = 13000;
  return CUDA_SUCCESS;
}
API cuGetErrorString(CUresult, const char** s) {
  *s = "fake";
  return CUDA_SUCCESS;
}
API cuGetErrorName(CUresult, const char** s) {
  *s = "CUDA_ERROR_FAKE";
  return CUDA_SUCCESS;
}
API cuDeviceGet(CUdevice* d, int ordinal) {
  *d = ordinal;
  return CUDA_SUCCESS;
}
API cuDeviceGetCount(int* n) {
  *n = 1;
  return CUDA_SUCCESS;
}
API cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) {
  *c = reinterpret_cast<CUcontext>(&gContext);
  return CUDA_SUCCESS;
}
API cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
API cuCtxGetCurrent(CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(&gContext);
  return CUDA_SUCCESS;
}
API cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
API cuCtxGetDevice(CUdevice* d) {
  *d = 0;
  return CUDA_SUCCESS;
}
API cuCtxPushCurrent_v2(CUcontext) { return CUDA_SUCCESS; }
API cuCtxPopCurrent_v2(CUcontext* c) {
  if (c) *c = reinterpret_cast<CUcontext>(&gContext);
  return CUDA_SUCCESS;
}
API cuStreamCreate(CUstream* s, unsigned) {
  *s = reinterpret_cast<CUstream>(new int(0));
  return CUDA_SUCCESS;
}
API cuStreamDestroy_v2(CUstream) { return CUDA_SUCCESS; }
API cuStreamQuery(CUstream) {
  unsafeCall();
  return CUDA_SUCCESS;
}
API cuStreamSynchronize(CUstream) {
  unsafeCall();
  return CUDA_SUCCESS;
}
API cuStreamGetCtx(CUstream, CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(&gContext);
  return CUDA_SUCCESS;
}
API cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus* status) {
  *status = reinterpret_cast<uintptr_t>(s) == kCapturingStream ? CU_STREAM_CAPTURE_STATUS_ACTIVE
                                                                 : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}
API cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus* status, cuuint64_t* id, CUgraph*,
                              const CUgraphNode**, const CUgraphEdgeData**, size_t*) {
  if (id) *id = 1;
  return cuStreamIsCapturing(s, status);
}
API cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  CUstreamCaptureMode old = tMode;
  tMode = *mode;
  *mode = old;
  return CUDA_SUCCESS;
}
API cuEventCreate(CUevent* e, unsigned) {
  if (const char* limit = std::getenv("FAKE_CUDA_EVENT_LIMIT"); limit != nullptr && *limit != '\0') {
    if (gEventsCreated.fetch_add(1) >= std::atol(limit)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *e = reinterpret_cast<CUevent>(new FakeEvent);
  return CUDA_SUCCESS;
}
API cuEventDestroy_v2(CUevent e) {
  delete reinterpret_cast<FakeEvent*>(e);
  return CUDA_SUCCESS;
}
API cuEventRecord(CUevent e, CUstream s) {
  if (reinterpret_cast<uintptr_t>(s) == kCapturingStream) ++gViolations;
  reinterpret_cast<FakeEvent*>(e)->recordedNs.store(nowNs());
  return CUDA_SUCCESS;
}
API cuEventRecordWithFlags(CUevent e, CUstream s, unsigned) { return cuEventRecord(e, s); }
API cuEventQuery(CUevent) {
  unsafeCall();
  return CUDA_SUCCESS;
}
API cuEventSynchronize(CUevent) {
  unsafeCall();
  return CUDA_SUCCESS;
}
API cuEventElapsedTime_v2(float* ms, CUevent a, CUevent b) {
  int64_t ta = reinterpret_cast<FakeEvent*>(a)->recordedNs.load();
  int64_t tb = reinterpret_cast<FakeEvent*>(b)->recordedNs.load();
  if (ta == 0 || tb == 0) return CUDA_ERROR_INVALID_HANDLE;
  *ms = static_cast<float>(static_cast<double>(tb - ta) / 1e6);
  return CUDA_SUCCESS;
}
