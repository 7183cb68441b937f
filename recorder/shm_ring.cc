#include "shm_ring.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs_util.h"

namespace ncclfr::recorder {
namespace {

bool isPow2(uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

void wireRegion(RingRegion* r) {
  shm::ProcessHeader* h = r->header;
  r->comms = reinterpret_cast<shm::CommSlot*>(r->base + h->commOffset);
  r->p2p = reinterpret_cast<shm::P2PSlot*>(r->base + h->p2pOffset);
  r->stacks = h->stackCapacity ? reinterpret_cast<shm::StackSlot*>(r->base + h->stackOffset) : nullptr;
  r->modules = h->moduleCapacity ? reinterpret_cast<shm::ModuleSlot*>(r->base + h->moduleOffset) : nullptr;
  r->entries = reinterpret_cast<shm::RingEntry*>(r->base + h->ringOffset);
  r->ringMask = h->ringCapacity - 1;
  r->p2pMask = h->p2pCapacity - 1;
  r->stackMask = h->stackCapacity ? h->stackCapacity - 1 : 0;
}

// Writes the layout part of a fresh header and the initial values that are not zero.
void initLayout(RingRegion* r, const RingCapacities& caps) {
  shm::Layout l = shm::layoutFor(caps.ring, caps.comms, caps.p2p, caps.stacks, caps.modules);
  shm::ProcessHeader* h = r->header;
  std::memcpy(h->magic, shm::kMagic, sizeof h->magic);
  h->major = shm::kMajor;
  h->minor = shm::kMinor;
  h->headerBytes = sizeof(shm::ProcessHeader);
  h->entryBytes = sizeof(shm::RingEntry);
  h->commSlotBytes = sizeof(shm::CommSlot);
  h->p2pSlotBytes = sizeof(shm::P2PSlot);
  h->stackSlotBytes = sizeof(shm::StackSlot);
  h->moduleSlotBytes = sizeof(shm::ModuleSlot);
  h->ringCapacity = caps.ring;
  h->commCapacity = caps.comms;
  h->p2pCapacity = caps.p2p;
  h->stackCapacity = caps.stacks;
  h->moduleCapacity = caps.modules;
  h->ringOffset = l.ringOffset;
  h->commOffset = l.commOffset;
  h->p2pOffset = l.p2pOffset;
  h->stackOffset = l.stackOffset;
  h->moduleOffset = l.moduleOffset;
  h->fileBytes = l.fileBytes;
  h->globalRank = h->worldSize = h->localRank = -1;
  h->state = static_cast<uint32_t>(shm::ProcessState::kLive);
  wireRegion(r);
  for (uint32_t i = 0; i < caps.p2p; ++i) {
    r->p2p[i].lastStartedSeq = -1;
    r->p2p[i].lastCompletedSeq = -1;
  }
}

bool validCaps(const RingCapacities& caps, std::string* error) {
  if (!isPow2(caps.ring) || !isPow2(caps.p2p) || (caps.stacks != 0 && !isPow2(caps.stacks)) || caps.comms == 0) {
    *error = "ring capacities must be powers of two";
    return false;
  }
  return true;
}

}  // namespace

void spinPause(int* spins) {
  if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

bool createRingFile(const std::string& dir, uint32_t pid, uint64_t startTicks, const RingCapacities& caps,
                    RingRegion* region, std::string* error) {
  if (!validCaps(caps, error)) return false;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 && !fs::makeDirs(dir, 0700, error)) return false;
  shm::Layout l = shm::layoutFor(caps.ring, caps.comms, caps.p2p, caps.stacks, caps.modules);
  std::string base = dir + "/" + shm::kFilePrefix + std::to_string(pid) + "-" + std::to_string(startTicks);
  std::string path;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    path = base + (attempt ? "." + std::to_string(attempt) : "") + shm::kFileSuffix;
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      *error = "cannot create " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  if (fd < 0) {
    *error = "cannot create a ring file in " + dir;
    return false;
  }
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(l.fileBytes));
  if (err != 0) {
    *error = "cannot reserve " + std::to_string(l.fileBytes >> 20) + " MiB for " + path + ": " + std::strerror(err);
    ::close(fd);
    ::unlink(path.c_str());
    return false;
  }
  void* p = ::mmap(nullptr, l.fileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = "cannot map " + path + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(path.c_str());
    return false;
  }
  region->base = static_cast<uint8_t*>(p);
  region->bytes = l.fileBytes;
  region->fd = fd;
  region->anonymous = false;
  region->writable = true;
  region->path = path;
  region->header = reinterpret_cast<shm::ProcessHeader*>(p);
  initLayout(region, caps);
  return true;
}

bool createAnonymousRing(const RingCapacities& caps, RingRegion* region, std::string* error) {
  if (!validCaps(caps, error)) return false;
  shm::Layout l = shm::layoutFor(caps.ring, caps.comms, caps.p2p, caps.stacks, caps.modules);
  void* p = ::mmap(nullptr, l.fileBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    *error = std::string("cannot allocate the ring: ") + std::strerror(errno);
    return false;
  }
  region->base = static_cast<uint8_t*>(p);
  region->bytes = l.fileBytes;
  region->fd = -1;
  region->anonymous = true;
  region->writable = true;
  region->path.clear();
  region->header = reinterpret_cast<shm::ProcessHeader*>(p);
  initLayout(region, caps);
  return true;
}

bool openRingFile(const std::string& path, RingRegion* region, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = path + ": not a regular file";
    ::close(fd);
    return false;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(shm::ProcessHeader)) {
    *error = path + ": too short for an ncclfr ring (" + std::to_string(size) + " bytes)";
    ::close(fd);
    return false;
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = path + ": cannot map: " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  auto fail = [&](const std::string& why) {
    *error = path + ": " + why;
    ::munmap(p, size);
    ::close(fd);
    return false;
  };
  const auto* h = static_cast<const shm::ProcessHeader*>(p);
  if (std::memcmp(h->magic, shm::kMagic, sizeof h->magic) != 0) return fail("not an ncclfr ring (bad magic)");
  if (h->major != shm::kMajor) {
    return fail("ring format " + std::to_string(h->major) + "." + std::to_string(h->minor) +
                " is not one this ncclfr reads (" + std::to_string(shm::kMajor) + ".x)");
  }
  if (h->headerBytes != sizeof(shm::ProcessHeader) || h->entryBytes != sizeof(shm::RingEntry) ||
      h->commSlotBytes != sizeof(shm::CommSlot) || h->p2pSlotBytes != sizeof(shm::P2PSlot) ||
      h->stackSlotBytes != sizeof(shm::StackSlot) || h->moduleSlotBytes != sizeof(shm::ModuleSlot)) {
    return fail("unexpected record sizes in the header");
  }
  if (!isPow2(h->ringCapacity) || !isPow2(h->p2pCapacity) || (h->stackCapacity && !isPow2(h->stackCapacity)) ||
      h->commCapacity == 0) {
    return fail("corrupt capacities in the header");
  }
  shm::Layout l = shm::layoutFor(h->ringCapacity, h->commCapacity, h->p2pCapacity, h->stackCapacity, h->moduleCapacity);
  if (l.ringOffset != h->ringOffset || l.commOffset != h->commOffset || l.p2pOffset != h->p2pOffset ||
      l.stackOffset != h->stackOffset || l.moduleOffset != h->moduleOffset || l.fileBytes != h->fileBytes) {
    return fail("corrupt offsets in the header");
  }
  if (size < l.fileBytes) {
    return fail("truncated: " + std::to_string(size) + " bytes, the header says " + std::to_string(l.fileBytes));
  }
  region->base = static_cast<uint8_t*>(p);
  region->bytes = size;
  region->fd = fd;
  region->anonymous = false;
  region->writable = false;
  region->path = path;
  region->header = static_cast<shm::ProcessHeader*>(p);
  wireRegion(region);
  return true;
}

void unmapRing(RingRegion* region) {
  if (region->base != nullptr) ::munmap(region->base, region->bytes);
  if (region->fd >= 0) ::close(region->fd);
  *region = RingRegion{};
}

shm::P2PSlot* findP2P(RingRegion& r, uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  uint32_t start = static_cast<uint32_t>(h >> 32) & r.p2pMask;
  for (uint32_t i = 0; i <= r.p2pMask; ++i) {
    shm::P2PSlot* s = &r.p2p[(start + i) & r.p2pMask];
    uint64_t k = ld(s->key, std::memory_order_acquire);
    if (k == key) return s;
    if (k == 0) {
      uint64_t expected = 0;
      if (cas(s->key, expected, key)) return s;
      if (expected == key) return s;
    }
  }
  return nullptr;
}

}  // namespace ncclfr::recorder
