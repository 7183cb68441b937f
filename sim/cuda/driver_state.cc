#include "driver_state.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace ncclfr::sim::cuda {

int configuredDeviceCount() {
  auto parse = [](const char* name) -> int {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return -1;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 1) return -1;
    return static_cast<int>(std::min<long>(n, kMaxDevices));
  };
  int n = parse("NCCLFR_SIM_DEVICES");
  if (n > 0) return n;
  // One node of the job: a launcher starting LOCAL_WORLD_SIZE ranks gives each its own device.
  return std::max(8, parse("LOCAL_WORLD_SIZE"));
}

// ---------------------------------------------------------------------------------------------
Stream::Stream(Context* c, unsigned f, int p, uint64_t i, bool l)
    : ctx(c), flags(f), priority(p), id(i), legacy(l) {}

Stream::~Stream() = default;

void Stream::start(const std::shared_ptr<Stream>& self) {
  // Detached: a worker blocked in a hung host function must not keep exit() waiting, exactly as a
  // hung kernel does not stop the host process from exiting.
  std::thread([this, self] { run(self); }).detach();
}

uint64_t Stream::enqueue(std::function<void()> work) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(work));
  workCv_.notify_one();
  return ++enqueued_;
}

uint64_t Stream::lastTicket() {
  std::lock_guard<std::mutex> lock(mu_);
  return enqueued_;
}

bool Stream::reached(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_ >= ticket;
}

void Stream::waitFor(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  doneCv_.wait(lock, [&] { return completed_ >= ticket; });
}

void Stream::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  workCv_.notify_one();
}

void Stream::run(std::shared_ptr<Stream> self) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    workCv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) break;
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // release captures before the next item, as a finished kernel frees its args
    lock.lock();
    ++completed_;
    doneCv_.notify_all();
  }
  lock.unlock();
  self.reset();
}

// ---------------------------------------------------------------------------------------------
namespace {
// Trivially destructible on purpose: threads may outlive static destruction at exit.
thread_local Context* tlsCtxStack[32];
thread_local int tlsCtxDepth = 0;
thread_local Stream* tlsPerThread[kMaxDevices];
}  // namespace

Driver& Driver::get() {
  static Driver* driver = new Driver();  // never destroyed, see the class comment
  return *driver;
}

Driver::Driver() {
  int n = configuredDeviceCount();
  for (int d = 0; d < n; ++d) {
    auto* ctx = new Context();
    ctx->device = d;
    contexts_.push_back(ctx);
  }
}

Context* Driver::findContext(CUcontext handle) {
  for (Context* c : contexts_) {
    if (reinterpret_cast<CUcontext>(c) == handle) return c;
  }
  return nullptr;
}

Context* Driver::current() { return tlsCtxDepth > 0 ? tlsCtxStack[tlsCtxDepth - 1] : nullptr; }

void Driver::setCurrent(Context* ctx) {
  if (tlsCtxDepth == 0) {
    if (ctx == nullptr) return;
    tlsCtxDepth = 1;
  }
  tlsCtxStack[tlsCtxDepth - 1] = ctx;
  if (ctx == nullptr) --tlsCtxDepth;
}

bool Driver::push(Context* ctx) {
  if (tlsCtxDepth == static_cast<int>(std::size(tlsCtxStack))) return false;
  tlsCtxStack[tlsCtxDepth++] = ctx;
  return true;
}

Context* Driver::pop() {
  if (tlsCtxDepth == 0) return nullptr;
  return tlsCtxStack[--tlsCtxDepth];
}

std::shared_ptr<Stream> Driver::createStream(Context* ctx, unsigned flags, int priority) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = nextStreamId_++;
  }
  auto stream = std::make_shared<Stream>(ctx, flags, priority, id, false);
  stream->start(stream);
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    auto& v = ctx->streams;
    v.erase(std::remove_if(v.begin(), v.end(), [](const std::weak_ptr<Stream>& w) { return w.expired(); }),
            v.end());
    v.push_back(stream);
  }
  std::lock_guard<std::mutex> lock(mu_);
  streams_[reinterpret_cast<CUstream>(stream.get())] = stream;
  return stream;
}

std::shared_ptr<Stream> Driver::legacyStream(Context* ctx) {
  std::lock_guard<std::mutex> lock(ctx->mu);
  if (!ctx->legacyStream) {
    auto s = std::make_shared<Stream>(ctx, 0u, 0, 1, true);
    s->start(s);
    ctx->legacyStream = s;
  }
  return ctx->legacyStream;
}

std::shared_ptr<Stream> Driver::perThreadStream(Context* ctx) {
  Stream*& slot = tlsPerThread[ctx->device];
  std::lock_guard<std::mutex> lock(mu_);
  if (slot != nullptr) {
    auto it = streams_.find(reinterpret_cast<CUstream>(slot));
    if (it != streams_.end()) return it->second;
  }
  auto stream = std::make_shared<Stream>(ctx, 0u, 0, 2, false);
  stream->start(stream);
  {
    std::lock_guard<std::mutex> ctxLock(ctx->mu);
    ctx->streams.push_back(stream);
  }
  // Kept in the registry for good: the per-thread stream lives as long as the process.
  streams_[reinterpret_cast<CUstream>(stream.get())] = stream;
  slot = stream.get();
  return stream;
}

std::shared_ptr<Stream> Driver::resolveStream(CUstream handle, CUresult* err) {
  *err = CUDA_SUCCESS;
  if (handle == nullptr || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD) {
    Context* ctx = current();
    if (ctx == nullptr) {
      *err = CUDA_ERROR_INVALID_CONTEXT;
      return nullptr;
    }
    return handle == CU_STREAM_PER_THREAD ? perThreadStream(ctx) : legacyStream(ctx);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(handle);
  if (it == streams_.end()) {
    *err = CUDA_ERROR_INVALID_HANDLE;
    return nullptr;
  }
  return it->second;
}

bool Driver::destroyStream(CUstream handle) {
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(handle);
    if (it == streams_.end() || it->second->id == 2) return false;
    stream = std::move(it->second);
    streams_.erase(it);
  }
  stream->stop();
  return true;
}

uint64_t Driver::submit(const std::shared_ptr<Stream>& stream, std::function<void()> work) {
  std::vector<std::pair<std::shared_ptr<Stream>, uint64_t>> deps;
  Context* ctx = stream->ctx;
  if (stream->legacy) {
    std::vector<std::shared_ptr<Stream>> others;
    {
      std::lock_guard<std::mutex> lock(ctx->mu);
      for (auto& w : ctx->streams) {
        if (auto s = w.lock(); s && s->blocking()) others.push_back(std::move(s));
      }
    }
    for (auto& s : others) {
      uint64_t t = s->lastTicket();
      if (!s->reached(t)) deps.emplace_back(std::move(s), t);
    }
  } else if (stream->blocking()) {
    std::shared_ptr<Stream> legacy;
    {
      std::lock_guard<std::mutex> lock(ctx->mu);
      legacy = ctx->legacyStream;
    }
    if (legacy) {
      uint64_t t = legacy->lastTicket();
      if (!legacy->reached(t)) deps.emplace_back(std::move(legacy), t);
    }
  }
  if (deps.empty()) return stream->enqueue(std::move(work));
  return stream->enqueue([deps = std::move(deps), work = std::move(work)] {
    for (const auto& [s, t] : deps) s->waitFor(t);
    work();
  });
}

void Driver::synchronizeContext(Context* ctx) {
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    for (auto& w : ctx->streams) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
    if (ctx->legacyStream) all.push_back(ctx->legacyStream);
  }
  std::vector<uint64_t> tickets;
  tickets.reserve(all.size());
  for (auto& s : all) tickets.push_back(s->lastTicket());
  for (size_t i = 0; i < all.size(); ++i) all[i]->waitFor(tickets[i]);
}

// ---------------------------------------------------------------------------------------------
std::shared_ptr<Event> Driver::createEvent(Context* ctx, unsigned flags) {
  auto ev = std::make_shared<Event>();
  ev->ctx = ctx;
  ev->flags = flags;
  std::lock_guard<std::mutex> lock(mu_);
  events_[reinterpret_cast<CUevent>(ev.get())] = ev;
  return ev;
}

std::shared_ptr<Event> Driver::findEvent(CUevent handle) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = events_.find(handle);
  return it == events_.end() ? nullptr : it->second;
}

bool Driver::destroyEvent(CUevent handle) {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.erase(handle) != 0;
}

// ---------------------------------------------------------------------------------------------
void* Driver::allocate(size_t size, int device, MemKind kind) {
  // 256-byte alignment like cudaMalloc; at least one byte so every allocation has its own address.
  size_t rounded = (std::max<size_t>(size, 1) + 255) & ~size_t{255};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (kind == MemKind::Device && allocatedBytes_ + rounded > kDeviceMemoryBytes) return nullptr;
  }
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  allocations_[reinterpret_cast<uintptr_t>(p)] = Allocation{size, device, kind};
  if (kind == MemKind::Device || kind == MemKind::Managed) allocatedBytes_ += rounded;
  return p;
}

bool Driver::release(void* ptr, MemKind* kind) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == allocations_.end() || it->second.kind == MemKind::HostRegistered) return false;
    *kind = it->second.kind;
    if (*kind == MemKind::Device || *kind == MemKind::Managed) {
      allocatedBytes_ -= (std::max<size_t>(it->second.size, 1) + 255) & ~size_t{255};
    }
    allocations_.erase(it);
  }
  std::free(ptr);
  return true;
}

bool Driver::registerHost(void* ptr, size_t size, int device) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] =
      allocations_.emplace(reinterpret_cast<uintptr_t>(ptr), Allocation{size, device, MemKind::HostRegistered});
  return inserted;
}

bool Driver::unregisterHost(void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocations_.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == allocations_.end() || it->second.kind != MemKind::HostRegistered) return false;
  allocations_.erase(it);
  return true;
}

bool Driver::lookup(const void* ptr, uintptr_t* base, Allocation* out) {
  auto p = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocations_.upper_bound(p);
  if (it == allocations_.begin()) return false;
  --it;
  if (p >= it->first + std::max<size_t>(it->second.size, 1)) return false;
  *base = it->first;
  *out = it->second;
  return true;
}

size_t Driver::bytesAllocated() {
  std::lock_guard<std::mutex> lock(mu_);
  return allocatedBytes_;
}

}  // namespace ncclfr::sim::cuda
