// The state behind sim/'s libcuda.so.1: devices, primary contexts, streams, events and allocations.
// libcudart.so.13 and libnccl.so.2 reach it only through the driver API, exactly as the real runtime
// does, so a CUstream and a cudaStream_t are the same object by construction.
//
// A stream is an in-order queue run by its own worker thread. Everything a GPU would do (copies,
// memsets, host functions, NCCL's collectives) is a work item; a work item that never returns blocks
// its stream forever, the way a hung kernel blocks a real one.
#pragma once

#include <cuda.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ncclfr::sim::cuda {

constexpr int kMaxDevices = 256;

struct Context;

class Stream {
 public:
  Stream(Context* ctx, unsigned flags, int priority, uint64_t id, bool legacy);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Starts the worker. `self` keeps the stream alive until its worker has drained the queue, so a
  // destroyed stream still finishes the work queued on it (cudaStreamDestroy does not wait either).
  void start(const std::shared_ptr<Stream>& self);
  // Appends a work item; returns its ticket (1 for the first item). Never blocks.
  uint64_t enqueue(std::function<void()> work);
  uint64_t lastTicket();
  bool reached(uint64_t ticket);
  void waitFor(uint64_t ticket);
  // After destroy: the worker exits once the queue is empty.
  void stop();

  Context* const ctx;
  const unsigned flags;
  const int priority;
  const uint64_t id;
  const bool legacy;
  bool blocking() const { return !legacy && (flags & CU_STREAM_NON_BLOCKING) == 0; }

 private:
  void run(std::shared_ptr<Stream> self);

  std::mutex mu_;
  std::condition_variable workCv_;
  std::condition_variable doneCv_;
  std::deque<std::function<void()>> queue_;
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;
  bool stopping_ = false;
};

// An event is complete when the stream of its latest record has passed that record's ticket: the
// stream's own progress is the one source of truth, so "event complete" and "stream idle" can never
// disagree. A never-recorded event counts as complete.
struct Event {
  Context* ctx = nullptr;
  unsigned flags = 0;
  std::mutex mu;
  uint64_t recordGen = 0;
  std::shared_ptr<Stream> stream;  // of the latest record
  uint64_t ticket = 0;
  int64_t timeNs = 0;  // CLOCK_MONOTONIC when the stream reached the latest record
};

struct Context {
  int device = 0;
  std::mutex mu;
  std::vector<std::weak_ptr<Stream>> streams;  // every stream of this context, for sync and ordering
  std::shared_ptr<Stream> legacyStream;        // the NULL stream, created on first use
  int retained = 0;
};

enum class MemKind { Device, Host, Managed, HostRegistered };

struct Allocation {
  size_t size = 0;
  int device = 0;
  MemKind kind = MemKind::Device;
};

// One per process, never destroyed: stream workers may still be running (blocked in a hung host
// function) while the process exits, and they must not find their state destructed under them.
class Driver {
 public:
  static Driver& get();

  bool initialized() const { return initialized_.load(std::memory_order_acquire); }
  void init() { initialized_.store(true, std::memory_order_release); }
  int deviceCount() const { return static_cast<int>(contexts_.size()); }
  Context* context(int device) { return contexts_[static_cast<size_t>(device)]; }
  Context* findContext(CUcontext handle);

  // The calling thread's current context (top of its context stack), or null.
  static Context* current();
  static void setCurrent(Context* ctx);
  static bool push(Context* ctx);
  static Context* pop();

  std::shared_ptr<Stream> createStream(Context* ctx, unsigned flags, int priority);
  // Resolves a handle: NULL and CU_STREAM_LEGACY mean the current context's legacy stream,
  // CU_STREAM_PER_THREAD the calling thread's per-thread default stream. Null if invalid.
  std::shared_ptr<Stream> resolveStream(CUstream handle, CUresult* err);
  bool destroyStream(CUstream handle);
  // Enqueues work on `stream`, preceded by the implicit waits that the legacy default stream
  // imposes (it waits for every blocking stream and every blocking stream waits for it).
  uint64_t submit(const std::shared_ptr<Stream>& stream, std::function<void()> work);
  void synchronizeContext(Context* ctx);

  std::shared_ptr<Event> createEvent(Context* ctx, unsigned flags);
  std::shared_ptr<Event> findEvent(CUevent handle);
  bool destroyEvent(CUevent handle);

  void* allocate(size_t size, int device, MemKind kind);
  bool release(void* ptr, MemKind* kind);
  bool registerHost(void* ptr, size_t size, int device);
  bool unregisterHost(void* ptr);
  // The allocation that contains `ptr`, if any.
  bool lookup(const void* ptr, uintptr_t* base, Allocation* out);
  size_t bytesAllocated();

 private:
  Driver();
  std::shared_ptr<Stream> legacyStream(Context* ctx);
  std::shared_ptr<Stream> perThreadStream(Context* ctx);

  std::atomic<bool> initialized_{false};
  std::vector<Context*> contexts_;
  std::mutex mu_;
  std::unordered_map<CUstream, std::shared_ptr<Stream>> streams_;
  std::unordered_map<CUevent, std::shared_ptr<Event>> events_;
  std::map<uintptr_t, Allocation> allocations_;
  size_t allocatedBytes_ = 0;
  uint64_t nextStreamId_ = 16;
};

// The number of simulated devices: NCCLFR_SIM_DEVICES, else max(8, LOCAL_WORLD_SIZE).
int configuredDeviceCount();
constexpr size_t kDeviceMemoryBytes = size_t{80} << 30;

}  // namespace ncclfr::sim::cuda
