// Stream, event, memory and error semantics of sim/'s libcudart + libcuda, driven through the
// public CUDA APIs exactly as a program (or the recorder, through the driver) would.
#include <catch2/catch.hpp>
#include <cuda.h>
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace {

// A host function that blocks its stream until the test opens it: the stand-in for a hung kernel.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> entered{false};
  static void CUDART_CB wait(void* p) {
    auto* g = static_cast<Gate*>(p);
    g->entered = true;
    std::unique_lock<std::mutex> lock(g->mu);
    g->cv.wait(lock, [&] { return g->open; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

struct Log {
  std::mutex mu;
  std::vector<int> order;
};
struct LogItem {
  Log* log;
  int value;
  static void CUDART_CB append(void* p) {
    auto* item = static_cast<LogItem*>(p);
    std::lock_guard<std::mutex> lock(item->log->mu);
    item->log->order.push_back(item->value);
  }
};

void CUDART_CB setFlag(void* p) { static_cast<std::atomic<bool>*>(p)->store(true); }

}  // namespace

TEST_CASE("work on a stream runs in order, asynchronously to the host") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t s;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  Gate gate;
  Log log;
  std::vector<LogItem> items;
  for (int i = 0; i < 50; ++i) items.push_back({&log, i});
  REQUIRE(cudaLaunchHostFunc(s, &Gate::wait, &gate) == cudaSuccess);
  for (auto& item : items) REQUIRE(cudaLaunchHostFunc(s, &LogItem::append, &item) == cudaSuccess);
  // Every call above returned while the first item still blocks the stream.
  CHECK(cudaStreamQuery(s) == cudaErrorNotReady);
  CHECK(cudaGetLastError() == cudaSuccess);  // "not ready" is an answer, not a sticky error
  {
    std::lock_guard<std::mutex> lock(log.mu);
    CHECK(log.order.empty());
  }
  gate.release();
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(cudaStreamQuery(s) == cudaSuccess);
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[static_cast<size_t>(i)] = i;
  CHECK(log.order == expected);
  REQUIRE(cudaStreamDestroy(s) == cudaSuccess);
}

TEST_CASE("an event completes when its stream passes it") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t s;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  cudaEvent_t never, ev;
  REQUIRE(cudaEventCreate(&never) == cudaSuccess);
  REQUIRE(cudaEventCreate(&ev) == cudaSuccess);
  CHECK(cudaEventQuery(never) == cudaSuccess);  // never recorded: complete
  Gate gate;
  REQUIRE(cudaLaunchHostFunc(s, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaEventRecord(ev, s) == cudaSuccess);
  CHECK(cudaEventQuery(ev) == cudaErrorNotReady);
  // The driver sees the same event object (the recorder polls events through libcuda).
  CHECK(cuEventQuery(reinterpret_cast<CUevent>(ev)) == CUDA_ERROR_NOT_READY);
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, ev, ev) == cudaErrorNotReady);
  gate.release();
  REQUIRE(cudaEventSynchronize(ev) == cudaSuccess);
  CHECK(cudaEventQuery(ev) == cudaSuccess);
  CHECK(cuEventQuery(reinterpret_cast<CUevent>(ev)) == CUDA_SUCCESS);
  CHECK(cudaEventElapsedTime(&ms, never, ev) == cudaErrorInvalidResourceHandle);
  CHECK(cudaEventDestroy(ev) == cudaSuccess);
  CHECK(cudaEventDestroy(never) == cudaSuccess);
  CHECK(cudaEventQuery(ev) == cudaErrorInvalidResourceHandle);
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
  CHECK(cudaGetLastError() == cudaSuccess);
  REQUIRE(cudaStreamDestroy(s) == cudaSuccess);
}

TEST_CASE("event timing is the host clock when each stream passed its event, across streams") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t a, b;
  REQUIRE(cudaStreamCreate(&a) == cudaSuccess);
  REQUIRE(cudaStreamCreate(&b) == cudaSuccess);
  cudaEvent_t start, stop, untimed;
  REQUIRE(cudaEventCreate(&start) == cudaSuccess);
  REQUIRE(cudaEventCreate(&stop) == cudaSuccess);
  REQUIRE(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming) == cudaSuccess);
  Gate gate;
  REQUIRE(cudaEventRecord(start, a) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(b, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaEventRecord(stop, b) == cudaSuccess);
  REQUIRE(cudaEventRecord(untimed, b) == cudaSuccess);
  REQUIRE(cudaEventSynchronize(start) == cudaSuccess);
  auto t0 = std::chrono::steady_clock::now();
  // Hold stream b for a measurable while; the time is a quantity under test, not a synchronisation.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  gate.release();
  REQUIRE(cudaEventSynchronize(stop) == cudaSuccess);
  auto held = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  float ms = 0;
  REQUIRE(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
  CHECK(ms >= 50.0f);
  CHECK(ms <= held + 5000.0);  // generous: a loaded machine may deschedule the worker
  float back = 0;
  REQUIRE(cudaEventElapsedTime(&back, stop, start) == cudaSuccess);
  CHECK(back == Approx(-ms).margin(1e-3));
  CHECK(cudaEventElapsedTime(&ms, start, untimed) == cudaErrorInvalidResourceHandle);
  // The driver's _v2 entry point agrees.
  float viaDriver = 0;
  REQUIRE(cuEventElapsedTime(&viaDriver, reinterpret_cast<CUevent>(start), reinterpret_cast<CUevent>(stop)) ==
          CUDA_SUCCESS);
  CHECK(viaDriver == Approx(-back).margin(1e-3));
  (void)cudaGetLastError();
  for (auto e : {start, stop, untimed}) CHECK(cudaEventDestroy(e) == cudaSuccess);
  CHECK(cudaStreamDestroy(a) == cudaSuccess);
  CHECK(cudaStreamDestroy(b) == cudaSuccess);
}

TEST_CASE("cudaStreamWaitEvent orders one stream after another") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t a, b;
  REQUIRE(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking) == cudaSuccess);
  cudaEvent_t ev;
  REQUIRE(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess);
  Gate gate;
  std::atomic<bool> ran{false};
  REQUIRE(cudaLaunchHostFunc(a, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaEventRecord(ev, a) == cudaSuccess);
  REQUIRE(cudaStreamWaitEvent(b, ev, 0) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(b, &setFlag, &ran) == cudaSuccess);
  // Destroying the event while work still refers to it is allowed.
  REQUIRE(cudaEventDestroy(ev) == cudaSuccess);
  CHECK(cudaStreamQuery(b) == cudaErrorNotReady);
  CHECK_FALSE(ran.load());
  gate.release();
  REQUIRE(cudaStreamSynchronize(b) == cudaSuccess);
  CHECK(ran.load());
  CHECK(cudaStreamDestroy(a) == cudaSuccess);
  CHECK(cudaStreamDestroy(b) == cudaSuccess);
}

TEST_CASE("the legacy default stream synchronises with blocking streams only") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t blocking, nonBlocking;
  REQUIRE(cudaStreamCreate(&blocking) == cudaSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&nonBlocking, cudaStreamNonBlocking) == cudaSuccess);
  Gate gate;
  std::atomic<bool> legacyRan{false}, nonBlockingRan{false};
  REQUIRE(cudaLaunchHostFunc(blocking, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(nullptr, &setFlag, &legacyRan) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(nonBlocking, &setFlag, &nonBlockingRan) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(nonBlocking) == cudaSuccess);
  CHECK(nonBlockingRan.load());
  CHECK(cudaStreamQuery(nullptr) == cudaErrorNotReady);
  CHECK_FALSE(legacyRan.load());
  gate.release();
  REQUIRE(cudaStreamSynchronize(0) == cudaSuccess);
  CHECK(legacyRan.load());
  CHECK(cudaStreamDestroy(blocking) == cudaSuccess);
  CHECK(cudaStreamDestroy(nonBlocking) == cudaSuccess);
}

TEST_CASE("a host function that does not return blocks its stream like a hung kernel") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t s;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  Gate gate;
  int* dev = nullptr;
  REQUIRE(cudaMalloc(&dev, sizeof(int)) == cudaSuccess);
  int host = 7;
  REQUIRE(cudaMemsetAsync(dev, 0, sizeof(int), s) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(s, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(dev, &host, sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
  cudaEvent_t after;
  REQUIRE(cudaEventCreate(&after) == cudaSuccess);
  REQUIRE(cudaEventRecord(after, s) == cudaSuccess);
  std::atomic<bool> syncReturned{false};
  std::thread waiter([&] {
    (void)cudaSetDevice(0);
    (void)cudaStreamSynchronize(s);
    syncReturned = true;
  });
  while (!gate.entered.load()) std::this_thread::yield();
  // Queued work stays queued behind the hung item, and nothing reports completion.
  CHECK(cudaEventQuery(after) == cudaErrorNotReady);
  CHECK(cudaStreamQuery(s) == cudaErrorNotReady);
  CHECK_FALSE(syncReturned.load());
  gate.release();
  waiter.join();
  CHECK(syncReturned.load());
  int out = 0;
  REQUIRE(cudaMemcpy(&out, dev, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(out == 7);
  CHECK(cudaFree(dev) == cudaSuccess);
  CHECK(cudaEventDestroy(after) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
}

TEST_CASE("runtime and driver share devices, contexts, streams and events") {
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  CUdevice dev = -1;
  REQUIRE(cuCtxGetDevice(&dev) == CUDA_SUCCESS);
  CHECK(dev == 1);
  CUcontext primary = nullptr, current = nullptr;
  REQUIRE(cuDevicePrimaryCtxRetain(&primary, 1) == CUDA_SUCCESS);
  REQUIRE(cuCtxGetCurrent(&current) == CUDA_SUCCESS);
  CHECK(primary == current);
  cudaStream_t s;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  CUcontext streamCtx = nullptr;
  REQUIRE(cuStreamGetCtx(reinterpret_cast<CUstream>(s), &streamCtx) == CUDA_SUCCESS);
  CHECK(streamCtx == primary);
  int sdev = -1;
  REQUIRE(cudaStreamGetDevice(s, &sdev) == cudaSuccess);
  CHECK(sdev == 1);
  CUevent ev = nullptr;
  REQUIRE(cuEventCreate(&ev, CU_EVENT_DEFAULT) == CUDA_SUCCESS);
  REQUIRE(cuEventRecord(ev, reinterpret_cast<CUstream>(s)) == CUDA_SUCCESS);
  REQUIRE(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(ev)) == cudaSuccess);
  CHECK(cuStreamQuery(reinterpret_cast<CUstream>(s)) == CUDA_SUCCESS);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_ACTIVE;
  CHECK(cuStreamIsCapturing(reinterpret_cast<CUstream>(s), &st) == CUDA_SUCCESS);
  CHECK(st == CU_STREAM_CAPTURE_STATUS_NONE);
  cuuint64_t id = 1;
  st = CU_STREAM_CAPTURE_STATUS_ACTIVE;
  CHECK(cuStreamGetCaptureInfo(reinterpret_cast<CUstream>(s), &st, &id, nullptr, nullptr, nullptr, nullptr) ==
        CUDA_SUCCESS);
  CHECK(st == CU_STREAM_CAPTURE_STATUS_NONE);
  cudaStreamCaptureStatus rst = cudaStreamCaptureStatusActive;
  CHECK(cudaStreamIsCapturing(s, &rst) == cudaSuccess);
  CHECK(rst == cudaStreamCaptureStatusNone);
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  REQUIRE(cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS);
  CHECK(mode == CU_STREAM_CAPTURE_MODE_GLOBAL);
  REQUIRE(cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS);
  CHECK(mode == CU_STREAM_CAPTURE_MODE_RELAXED);
  // An event of device 1 cannot be recorded on a stream of device 0.
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t s0;
  REQUIRE(cudaStreamCreate(&s0) == cudaSuccess);
  CHECK(cuEventRecord(ev, reinterpret_cast<CUstream>(s0)) == CUDA_ERROR_INVALID_HANDLE);
  CHECK(cuEventDestroy(ev) == CUDA_SUCCESS);
  CHECK(cuDevicePrimaryCtxRelease(1) == CUDA_SUCCESS);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
  CHECK(cudaStreamDestroy(s0) == cudaSuccess);
}

TEST_CASE("a thread without a current context gets CUDA_ERROR_INVALID_CONTEXT from the driver") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);  // initializes the driver
  CUresult createStream = CUDA_SUCCESS, createEvent = CUDA_SUCCESS, pushThenCreate = CUDA_ERROR_UNKNOWN;
  std::thread([&] {
    CUstream s = nullptr;
    CUevent e = nullptr;
    createStream = cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    createEvent = cuEventCreate(&e, CU_EVENT_DISABLE_TIMING);
    CUcontext ctx = nullptr;
    if (cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_SUCCESS && cuCtxPushCurrent(ctx) == CUDA_SUCCESS) {
      pushThenCreate = cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
      if (pushThenCreate == CUDA_SUCCESS) (void)cuStreamDestroy(s);
      (void)cuCtxPopCurrent(&ctx);
      (void)cuDevicePrimaryCtxRelease(0);
    }
  }).join();
  CHECK(createStream == CUDA_ERROR_INVALID_CONTEXT);
  CHECK(createEvent == CUDA_ERROR_INVALID_CONTEXT);
  CHECK(pushThenCreate == CUDA_SUCCESS);
}

TEST_CASE("memory: malloc, memcpy, memset and pointer attributes") {
  REQUIRE(cudaSetDevice(2) == cudaSuccess);
  float* dev = nullptr;
  float* pinned = nullptr;
  REQUIRE(cudaMalloc(&dev, 1024 * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMallocHost(&pinned, 1024 * sizeof(float)) == cudaSuccess);
  std::vector<float> in(1024), out(1024, -1.0f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i) * 0.5f;
  REQUIRE(cudaMemcpy(dev, in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cudaMemcpy(pinned, dev, in.size() * sizeof(float), cudaMemcpyDefault) == cudaSuccess);
  REQUIRE(cudaMemcpy(out.data(), pinned, in.size() * sizeof(float), cudaMemcpyHostToHost) == cudaSuccess);
  CHECK(out == in);
  REQUIRE(cudaMemset(dev, 0, 16 * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMemcpy(out.data(), dev, in.size() * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(out[0] == 0.0f);
  CHECK(out[15] == 0.0f);
  CHECK(out[16] == in[16]);
  cudaPointerAttributes attr;
  REQUIRE(cudaPointerGetAttributes(&attr, dev + 10) == cudaSuccess);
  CHECK(attr.type == cudaMemoryTypeDevice);
  CHECK(attr.device == 2);
  REQUIRE(cudaPointerGetAttributes(&attr, pinned) == cudaSuccess);
  CHECK(attr.type == cudaMemoryTypeHost);
  REQUIRE(cudaPointerGetAttributes(&attr, in.data()) == cudaSuccess);
  CHECK(attr.type == cudaMemoryTypeUnregistered);
  CHECK(cudaFree(dev) == cudaSuccess);
  CHECK(cudaFree(dev) == cudaErrorInvalidValue);
  CHECK(cudaFreeHost(pinned) == cudaSuccess);
  CHECK(cudaFree(nullptr) == cudaSuccess);
  (void)cudaGetLastError();
}

TEST_CASE("errors, versions and devices read as the real runtime reports them") {
  int n = 0;
  REQUIRE(cudaGetDeviceCount(&n) == cudaSuccess);
  CHECK(n >= 8);
  CHECK(cudaSetDevice(n) == cudaErrorInvalidDevice);
  CHECK(cudaPeekAtLastError() == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(std::strcmp(cudaGetErrorString(cudaErrorNotReady), "device not ready") == 0);
  CHECK(std::strcmp(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue") == 0);
  CHECK(std::strcmp(cudaGetErrorString(static_cast<cudaError_t>(12345)), "unrecognized error code") == 0);
  const char* s = nullptr;
  CHECK(cuGetErrorName(CUDA_ERROR_NOT_READY, &s) == CUDA_SUCCESS);
  CHECK(std::strcmp(s, "CUDA_ERROR_NOT_READY") == 0);
  CHECK(cuGetErrorString(static_cast<CUresult>(12345), &s) == CUDA_ERROR_INVALID_VALUE);
  int v = 0;
  REQUIRE(cudaRuntimeGetVersion(&v) == cudaSuccess);
  CHECK(v == CUDART_VERSION);
  REQUIRE(cudaDriverGetVersion(&v) == cudaSuccess);
  CHECK(v == CUDA_VERSION);
  cudaDeviceProp prop;
  REQUIRE(cudaGetDeviceProperties(&prop, 3) == cudaSuccess);
  CHECK(prop.major == 9);
  char bus[32];
  REQUIRE(cudaDeviceGetPCIBusId(bus, sizeof bus, 3) == cudaSuccess);
  int back = -1;
  REQUIRE(cudaDeviceGetByPCIBusId(&back, bus) == cudaSuccess);
  CHECK(back == 3);
  cudaStream_t bogus = reinterpret_cast<cudaStream_t>(0x1234);
  CHECK(cudaStreamSynchronize(bogus) == cudaErrorInvalidResourceHandle);
  CHECK(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal) == cudaErrorNotSupported);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult q;
  REQUIRE(cudaGetDriverEntryPointByVersion("cuEventQuery", &fn, CUDART_VERSION, cudaEnableDefault, &q) == cudaSuccess);
  CHECK(q == cudaDriverEntryPointSuccess);
  CHECK(fn == reinterpret_cast<void*>(&cuEventQuery));
  (void)cudaGetLastError();
}

TEST_CASE("the per-thread default stream is a stream of its own") {
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t s;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  Gate gate;
  std::atomic<bool> ran{false};
  REQUIRE(cudaLaunchHostFunc(s, &Gate::wait, &gate) == cudaSuccess);
  REQUIRE(cudaLaunchHostFunc(cudaStreamPerThread, &setFlag, &ran) == cudaSuccess);
  REQUIRE(cudaStreamSynchronize(cudaStreamPerThread) == cudaSuccess);
  CHECK(ran.load());
  gate.release();
  CHECK(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
}

TEST_CASE("device limits are stored and read back") {
  size_t v = 0;
  REQUIRE(cudaDeviceSetLimit(cudaLimitStackSize, 4096) == cudaSuccess);
  REQUIRE(cudaDeviceGetLimit(&v, cudaLimitStackSize) == cudaSuccess);
  CHECK(v == 4096);
  CHECK(cudaDeviceGetLimit(nullptr, cudaLimitStackSize) == cudaErrorInvalidValue);
  (void)cudaGetLastError();
}
