#include "group.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "debug.h"

namespace ncclfr::sim::nccl {
namespace {

struct PendingOp {
  Comm* comm;
  Task task;
};

struct GroupState {
  int depth = 0;
  ncclResult_t error = ncclSuccess;
  int blocking = -1;  // -1: no communicator joined the group yet
  std::vector<PendingOp> ops;
  std::vector<PendingInit> inits;
};

thread_local GroupState tlsGroup;

// One host function per launch stream; several communicators' batches on one stream run
// concurrently (each on its own thread), as NCCL runs one group's kernels together.
struct Unit {
  std::vector<Batch*> batches;
};

void runUnit(void* arg) {
  auto* u = static_cast<Unit*>(arg);
  if (u->batches.size() == 1) {
    runBatch(u->batches[0]);
  } else {
    std::vector<std::thread> threads;
    for (size_t i = 1; i < u->batches.size(); ++i) threads.emplace_back(runBatch, u->batches[i]);
    runBatch(u->batches[0]);
    for (auto& t : threads) t.join();
  }
  delete u;
}

// The device's primary context, made current while launching on its streams (stream 0 then means
// that device's legacy stream, as when NCCL calls cudaSetDevice(comm->cudaDev) before launching).
class DeviceScope {
 public:
  explicit DeviceScope(int dev) {
    CUcontext ctx = nullptr;
    if (cuInit(0) == CUDA_SUCCESS && cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS &&
        cuCtxPushCurrent(ctx) == CUDA_SUCCESS) {
      pushed_ = true;
      dev_ = dev;
    }
  }
  ~DeviceScope() {
    if (!pushed_) return;
    (void)cuCtxPopCurrent(nullptr);
    (void)cuDevicePrimaryCtxRelease(dev_);
  }
  bool ok() const { return pushed_; }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  bool pushed_ = false;
  int dev_ = 0;
};

ncclResult_t cudaFailure(Comm* c, CUresult r, const char* what) {
  const char* msg = "unknown";
  (void)cuGetErrorString(r, &msg);
  SIM_WARN(c->cudaDev, "Cuda failure '%s' in %s", msg != nullptr ? msg : "unknown", what);
  return ncclUnhandledCudaError;
}

// Makes `waiter` wait for everything queued so far on `target`.
CUresult streamWaitStream(CUstream waiter, CUstream target) {
  CUevent ev = nullptr;
  CUresult r = cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING);
  if (r != CUDA_SUCCESS) return r;
  r = cuEventRecord(ev, target);
  if (r == CUDA_SUCCESS) r = cuStreamWaitEvent(waiter, ev, 0);
  (void)cuEventDestroy(ev);
  return r;
}

ncclResult_t launchOps(std::vector<PendingOp>& ops) {
  // One batch per communicator, in order of first appearance, tasks in call order.
  std::vector<Batch*> batches;
  std::map<Comm*, Batch*> byComm;
  for (PendingOp& op : ops) {
    Batch*& b = byComm[op.comm];
    if (b == nullptr) {
      b = new Batch();
      b->comm = op.comm;
      batches.push_back(b);
    }
    b->tasks.push_back(op.task);
  }
  // Validate every stream before numbering anything, so a failure leaves no gap in the order.
  ncclResult_t ret = ncclSuccess;
  for (Batch* b : batches) {
    if (!b->comm->initialized.load()) {
      SIM_WARN(b->comm->cudaDev, "comm %p: operation on a communicator whose initialisation failed",
               static_cast<void*>(b->comm));
      ret = ncclInvalidUsage;
      continue;
    }
    DeviceScope scope(b->comm->cudaDev);
    for (const Task& t : b->tasks) {
      CUcontext ctx = nullptr;
      CUresult r = cuStreamGetCtx(t.stream, &ctx);
      if (r != CUDA_SUCCESS) {
        if (ret == ncclSuccess) ret = cudaFailure(b->comm, r, "launching on the user stream");
        continue;
      }
      CUcontext want = nullptr;
      (void)cuCtxGetCurrent(&want);
      if (ctx != want) {
        // As a kernel launch on a stream of another device fails on hardware.
        CUdevice streamDev = -1;
        if (cuCtxPushCurrent(ctx) == CUDA_SUCCESS) {
          (void)cuCtxGetDevice(&streamDev);
          (void)cuCtxPopCurrent(nullptr);
        }
        SIM_WARN(b->comm->cudaDev, "%s: stream %p is a stream of device %d, the communicator's device is %d",
                 funcName(t.func), static_cast<void*>(t.stream), streamDev, b->comm->cudaDev);
        if (ret == ncclSuccess) ret = cudaFailure(b->comm, CUDA_ERROR_INVALID_HANDLE, "launching on the user stream");
      }
    }
  }
  if (ret != ncclSuccess) {
    for (Batch* b : batches) delete b;
    return ret;
  }
  std::map<CUstream, Unit*> units;
  std::vector<std::pair<CUstream, Unit*>> unitOrder;
  for (Batch* b : batches) {
    {
      std::lock_guard<std::mutex> lock(b->comm->launchMu);
      b->seq = b->comm->launched++;
    }
    b->comm->ref();
    CUstream launch = b->tasks.front().stream;
    Unit*& u = units[launch];
    if (u == nullptr) {
      u = new Unit();
      unitOrder.emplace_back(launch, u);
    }
    u->batches.push_back(b);
  }
  for (auto& [launch, u] : unitOrder) {
    Comm* first = u->batches.front()->comm;
    DeviceScope scope(first->cudaDev);
    std::vector<CUstream> others;
    for (Batch* b : u->batches) {
      for (const Task& t : b->tasks) {
        if (t.stream != launch && std::find(others.begin(), others.end(), t.stream) == others.end()) {
          others.push_back(t.stream);
        }
      }
    }
    // Like NCCL: the launch stream waits for the group's other streams, and they wait for it.
    for (CUstream o : others) (void)streamWaitStream(launch, o);
    Unit* unit = u;
    CUresult r = cuLaunchHostFunc(launch, &runUnit, unit);
    if (r != CUDA_SUCCESS) {
      for (Batch* b : unit->batches) {
        b->comm->completed.fetch_add(1);
        Comm* c = b->comm;
        delete b;
        c->unref();
      }
      delete unit;
      if (ret == ncclSuccess) ret = cudaFailure(first, r, "cuLaunchHostFunc");
      continue;
    }
    for (CUstream o : others) (void)streamWaitStream(o, launch);
  }
  return ret;
}

ncclResult_t runInits(std::vector<PendingInit>& inits) {
  ncclResult_t ret = ncclSuccess;
  std::vector<PendingInit*> blocking;
  for (PendingInit& in : inits) {
    if (in.blocking) {
      blocking.push_back(&in);
      continue;
    }
    // Non-blocking: the rendezvous runs in the background; the tracker reports ncclInProgress.
    Comm* c = in.tracker;
    auto run = std::move(in.run);
    setAsyncError(c, ncclInProgress);
    startJob(c, [c, run] { setAsyncError(c, run()); });
    ret = ncclInProgress;
  }
  std::vector<ncclResult_t> results(blocking.size(), ncclSuccess);
  if (blocking.size() == 1) {
    results[0] = blocking[0]->run();
  } else if (!blocking.empty()) {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < blocking.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = blocking[i]->run(); });
    }
    for (auto& t : threads) t.join();
  }
  for (size_t i = 0; i < blocking.size(); ++i) {
    Comm* created = blocking[i]->created;
    if (results[i] != ncclSuccess) {
      if (blocking[i]->out != nullptr) publishComm(blocking[i]->out, nullptr);
      if (created != nullptr) created->unref();
      if (ret == ncclSuccess || ret == ncclInProgress) ret = results[i];
    }
    if (created != nullptr) initDone(created);  // the object outlives unref (see Comm)
  }
  return ret;
}

}  // namespace

void groupStart() { ++tlsGroup.depth; }

int groupDepth() { return tlsGroup.depth; }

ncclResult_t groupError(ncclResult_t r) {
  if (r != ncclSuccess && r != ncclInProgress && tlsGroup.error == ncclSuccess) tlsGroup.error = r;
  return r;
}

ncclResult_t appendOp(Comm* comm, const Task& task) {
  GroupState& g = tlsGroup;
  if (g.blocking != -1 && g.blocking != comm->config.blocking) {
    SIM_WARN(comm->cudaDev, "Blocking and nonblocking communicators are not allowed in the same group.");
    return ncclInvalidArgument;
  }
  g.blocking = comm->config.blocking;
  g.ops.push_back(PendingOp{comm, task});
  return ncclSuccess;
}

void appendInit(PendingInit init) { tlsGroup.inits.push_back(std::move(init)); }

bool initDeferredHere(const Comm* comm) {
  return std::any_of(tlsGroup.inits.begin(), tlsGroup.inits.end(),
                     [comm](const PendingInit& in) { return in.created == comm; });
}

ncclResult_t groupEnd(ncclSimInfo_t* simInfo, bool simulate) {
  GroupState& g = tlsGroup;
  if (g.depth == 0) {
    SIM_WARN(-1, "ncclGroupEnd: not in a group call.");
    return ncclInvalidUsage;
  }
  if (--g.depth > 0) return ncclSuccess;
  std::vector<PendingOp> ops = std::move(g.ops);
  std::vector<PendingInit> inits = std::move(g.inits);
  ncclResult_t error = g.error;
  int blocking = g.blocking;
  g = GroupState();
  if (error == ncclSuccess && simInfo != nullptr) {
    ncclSimInfo_t info = NCCL_SIM_INFO_INITIALIZER;
    size_t size = 0;
    std::memcpy(&size, simInfo, sizeof size);
    info.magic = 0;
    std::memcpy(&info, simInfo, std::min(size, sizeof info));
    if (info.magic != 0x74685283) {
      SIM_WARN(-1, "ncclSimInfo_t argument not initialized via NCCL_SIM_INFO_INITIALIZER");
      error = ncclInvalidArgument;
    }
  }
  if (error != ncclSuccess || simulate) {
    // The group is atomic: nothing in it runs. Communicators created in it are freed.
    for (PendingInit& in : inits) {
      if (in.out != nullptr) publishComm(in.out, nullptr);
      if (in.created != nullptr) {
        in.created->unref();
        initDone(in.created);
      }
    }
    if (error == ncclSuccess && simInfo != nullptr) {
      // There is no interconnect to model: report the time as unknown-but-small, never negative.
      simInfo->estimatedTime = 0.0f;
    }
    return error;
  }
  ncclResult_t ret = ncclSuccess;
  if (!inits.empty()) ret = runInits(inits);
  if (ops.empty()) return ret;
  if (blocking == 0) {
    std::vector<Comm*> comms;
    for (PendingOp& op : ops) {
      if (std::find(comms.begin(), comms.end(), op.comm) == comms.end()) comms.push_back(op.comm);
    }
    for (Comm* c : comms) {
      c->ref();
      setAsyncError(c, ncclInProgress);
    }
    // As NCCL does for non-blocking communicators, the launch happens on a thread of its own and
    // the communicators report ncclInProgress until it is done.
    std::thread([ops = std::move(ops), comms]() mutable {
      ncclResult_t r = launchOps(ops);
      for (Comm* c : comms) {
        // Keep an error the monitor may have set meanwhile (a peer died).
        int expected = ncclInProgress;
        c->asyncError.compare_exchange_strong(expected, r);
        c->unref();
      }
    }).detach();
    return ncclInProgress;
  }
  ncclResult_t r = launchOps(ops);
  return ret == ncclSuccess ? r : ret;
}

}  // namespace ncclfr::sim::nccl
