#include "segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <set>

#include "debug.h"

namespace ncclfr::sim::nccl {
namespace {

constexpr char kPrefix[] = "ncclfr-sim.";

std::mutex gMu;
std::map<std::string, Segment*>* gOpen = new std::map<std::string, Segment*>();  // never destroyed
std::set<std::string>* gCreated = new std::set<std::string>();

size_t roundUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

size_t envBytes(const char* name, size_t fallback, size_t lo, size_t hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') return fallback;
  return std::clamp(roundUp(static_cast<size_t>(n), 64), lo, hi);
}

std::string jobTag() {
  std::string tag = "nojob";
  if (const char* j = std::getenv("NCCLFR_SIM_JOB"); j != nullptr && *j != '\0') {
    tag.clear();
    for (const char* p = j; *p != '\0' && tag.size() < 32; ++p) {
      char c = *p;
      tag.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_');
    }
  }
  return tag;
}

// Names are ncclfr-sim.<job>.<creator pid>.<random>: a segment whose creator is gone can never be
// joined (the creator plays NCCL's bootstrap root), so it is garbage.
void sweepDeadCreators() {
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, kPrefix, sizeof kPrefix - 1) != 0) continue;
    const char* dot = std::strchr(e->d_name + sizeof kPrefix - 1, '.');
    if (dot == nullptr) continue;
    long pid = std::strtol(dot + 1, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      ::shm_unlink((std::string("/") + e->d_name).c_str());
    }
  }
  ::closedir(d);
}

}  // namespace

ncclResult_t Segment::create(std::string* name) {
  sweepDeadCreators();
  std::random_device rd;
  for (int attempt = 0; attempt < 16; ++attempt) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "/%s%s.%d.%08x%08x", kPrefix, jobTag().c_str(), static_cast<int>(::getpid()), rd(),
                  rd());
    int fd = ::shm_open(buf, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) {
      SIM_WARN(-1, "ncclGetUniqueId: shm_open %s failed: %s", buf, std::strerror(errno));
      return ncclSystemError;
    }
    if (::ftruncate(fd, kHeaderBytes) != 0) {
      SIM_WARN(-1, "ncclGetUniqueId: ftruncate %s failed: %s", buf, std::strerror(errno));
      ::close(fd);
      ::shm_unlink(buf);
      return ncclSystemError;
    }
    void* p = ::mmap(nullptr, kHeaderBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
      ::shm_unlink(buf);
      return ncclSystemError;
    }
    // The id is handed to other processes only after this returns, so plain stores suffice.
    auto* h = new (p) SegmentHeader();
    h->layoutVersion = kLayoutVersion;
    h->creatorPid = static_cast<int32_t>(::getpid());
    std::snprintf(h->name, sizeof h->name, "%s", buf);
    h->magic = kSegmentMagic;
    ::munmap(p, kHeaderBytes);
    {
      std::lock_guard<std::mutex> lock(gMu);
      gCreated->insert(buf);
    }
    *name = buf;
    return ncclSuccess;
  }
  return ncclSystemError;
}

ncclResult_t Segment::open(const std::string& name, int nranks, Segment** out) {
  std::lock_guard<std::mutex> lock(gMu);
  if (auto it = gOpen->find(name); it != gOpen->end()) {
    if (it->second->nranks() != nranks) {
      SIM_WARN(-1, "ncclCommInitRank: nranks %d differs from the %d other ranks of this ncclUniqueId used", nranks,
               it->second->nranks());
      return ncclInvalidUsage;
    }
    ++it->second->refs_;
    *out = it->second;
    return ncclSuccess;
  }
  int fd = ::shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) {
    SIM_WARN(-1, "ncclCommInitRank: the ncclUniqueId's rendezvous %s does not exist (%s): the id was already used "
             "by a complete communicator, or the process that created it exited",
             name.c_str(), std::strerror(errno));
    return ncclSystemError;
  }
  void* p = ::mmap(nullptr, kHeaderBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ::close(fd);
    return ncclSystemError;
  }
  auto* h = static_cast<SegmentHeader*>(p);
  if (h->magic != kSegmentMagic || h->layoutVersion != kLayoutVersion) {
    SIM_WARN(-1, "ncclCommInitRank: %s is not a sim/ rendezvous of layout %u", name.c_str(), kLayoutVersion);
    ::munmap(p, kHeaderBytes);
    ::close(fd);
    return ncclInvalidArgument;
  }
  for (;;) {
    uint32_t st = h->layoutState.load(std::memory_order_acquire);
    if (st == 2) break;
    uint32_t fresh = 0;
    if (st == 0 && h->layoutState.compare_exchange_strong(fresh, 1)) {
      auto n = static_cast<size_t>(nranks);
      // Defaults keep a 32-rank communicator near 100 MiB of address space, of which only the pages
      // a job touches are ever allocated. NCCLFR_SIM_CHUNK_BYTES / NCCLFR_SIM_P2P_BYTES shrink the
      // buffers so that tests exercise multi-chunk transfers with little data.
      size_t staging = envBytes("NCCLFR_SIM_CHUNK_BYTES", std::clamp(roundUp((64u << 20) / n, 4096), size_t{64} << 10,
                                                                      size_t{1} << 20),
                                64, size_t{64} << 20);
      size_t chan = envBytes("NCCLFR_SIM_P2P_BYTES",
                             std::clamp(roundUp((64u << 20) / (n * n), 4096), size_t{4} << 10, size_t{64} << 10), 64,
                             size_t{16} << 20);
      h->nranks = static_cast<uint32_t>(nranks);
      h->stagingBytes = staging;
      h->channelBytes = chan;
      h->slotsOffset = kHeaderBytes;
      h->channelsOffset = roundUp(h->slotsOffset + n * sizeof(RankSlot), 4096);
      h->stagingOffset = roundUp(h->channelsOffset + n * n * sizeof(Channel), 4096);
      h->ringsOffset = roundUp(h->stagingOffset + n * staging, 4096);
      h->totalBytes = roundUp(h->ringsOffset + n * n * chan, 4096);
      if (::ftruncate(fd, static_cast<off_t>(h->totalBytes)) != 0) {
        SIM_WARN(-1, "ncclCommInitRank: cannot size %s to %llu bytes: %s", name.c_str(),
                 static_cast<unsigned long long>(h->totalBytes), std::strerror(errno));
        h->layoutState.store(0);
        futexWakeAll(&h->layoutState);
        ::munmap(p, kHeaderBytes);
        ::close(fd);
        return ncclSystemError;
      }
      h->layoutState.store(2, std::memory_order_release);
      futexWakeAll(&h->layoutState);
      break;
    }
    futexWait(&h->layoutState, st, 100);
  }
  if (h->nranks != static_cast<uint32_t>(nranks)) {
    SIM_WARN(-1, "ncclCommInitRank: nranks %d differs from the %u other ranks of this ncclUniqueId used", nranks,
             h->nranks);
    ::munmap(p, kHeaderBytes);
    ::close(fd);
    return ncclInvalidUsage;
  }
  size_t total = h->totalBytes;
  ::munmap(p, kHeaderBytes);
  void* full = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (full == MAP_FAILED) {
    SIM_WARN(-1, "ncclCommInitRank: mmap of %s failed: %s", name.c_str(), std::strerror(errno));
    return ncclSystemError;
  }
  auto* seg = new Segment();
  seg->name_ = name;
  seg->hdr_ = static_cast<SegmentHeader*>(full);
  seg->size_ = total;
  seg->refs_ = 1;
  (*gOpen)[name] = seg;
  *out = seg;
  return ncclSuccess;
}

void Segment::release() {
  std::lock_guard<std::mutex> lock(gMu);
  if (--refs_ > 0) return;
  gOpen->erase(name_);
  ::munmap(hdr_, size_);
  delete this;
}

void Segment::unlinkName() {
  ::shm_unlink(name_.c_str());
  std::lock_guard<std::mutex> lock(gMu);
  gCreated->erase(name_);
}

RankSlot* Segment::slot(int r) const {
  return reinterpret_cast<RankSlot*>(reinterpret_cast<uint8_t*>(hdr_) + hdr_->slotsOffset) + r;
}

Channel* Segment::channel(int src, int dst) const {
  return reinterpret_cast<Channel*>(reinterpret_cast<uint8_t*>(hdr_) + hdr_->channelsOffset) +
         (static_cast<size_t>(src) * hdr_->nranks + static_cast<size_t>(dst));
}

uint8_t* Segment::staging(int r) const {
  return reinterpret_cast<uint8_t*>(hdr_) + hdr_->stagingOffset + static_cast<size_t>(r) * hdr_->stagingBytes;
}

uint8_t* Segment::ring(int src, int dst) const {
  return reinterpret_cast<uint8_t*>(hdr_) + hdr_->ringsOffset +
         (static_cast<size_t>(src) * hdr_->nranks + static_cast<size_t>(dst)) * hdr_->channelBytes;
}

void unlinkUnusedSegments() {
  std::lock_guard<std::mutex> lock(gMu);
  for (const std::string& n : *gCreated) ::shm_unlink(n.c_str());
  gCreated->clear();
}

}  // namespace ncclfr::sim::nccl
