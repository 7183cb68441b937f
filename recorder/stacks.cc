#include "stacks.h"

#include <dlfcn.h>
#include <elf.h>
#include <execinfo.h>
#include <link.h>

#include <cstdio>
#include <cstring>

#include "log.h"

namespace ncclfr::recorder {
namespace {

uintptr_t gSelfBase = 0, gSelfEnd = 0;

void findSelf() {
  if (gSelfEnd != 0) return;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&findSelf), &info) == 0) return;
  struct Ctx {
    uintptr_t base, lo, hi;
  } ctx{reinterpret_cast<uintptr_t>(info.dli_fbase), 0, 0};
  dl_iterate_phdr(
      [](struct dl_phdr_info* p, size_t, void* data) {
        auto* c = static_cast<Ctx*>(data);
        for (int i = 0; i < p->dlpi_phnum; ++i) {
          const auto& ph = p->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          uintptr_t start = p->dlpi_addr + ph.p_vaddr;
          if (start <= c->base && c->base < start + ph.p_memsz) {
            for (int j = 0; j < p->dlpi_phnum; ++j) {
              const auto& q = p->dlpi_phdr[j];
              if (q.p_type != PT_LOAD) continue;
              uintptr_t s = p->dlpi_addr + q.p_vaddr, e = s + q.p_memsz;
              if (c->lo == 0 || s < c->lo) c->lo = s;
              if (e > c->hi) c->hi = e;
            }
            return 1;
          }
        }
        return 0;
      },
      &ctx);
  gSelfBase = ctx.lo;
  gSelfEnd = ctx.hi;
}

}  // namespace

int32_t captureStack(RingRegion& ring) {
  if (ring.stacks == nullptr) return -1;
  findSelf();
  void* raw[shm::kStackFrames + 8];
  int n = backtrace(raw, shm::kStackFrames + 8);
  uint64_t frames[shm::kStackFrames];
  uint32_t depth = 0;
  for (int i = 0; i < n && depth < shm::kStackFrames; ++i) {
    uintptr_t a = reinterpret_cast<uintptr_t>(raw[i]);
    if (a >= gSelfBase && a < gSelfEnd) continue;
    frames[depth++] = a;
  }
  uint64_t hash = 1469598103934665603ull;
  for (uint32_t i = 0; i < depth; ++i) hash = (hash ^ frames[i]) * 1099511628211ull;
  hash |= 1;  // never 0 (empty) nor kClaiming
  constexpr uint64_t kClaiming = 2;
  uint32_t start = static_cast<uint32_t>(hash >> 17) & ring.stackMask;
  for (uint32_t i = 0; i <= ring.stackMask; ++i) {
    uint32_t idx = (start + i) & ring.stackMask;
    shm::StackSlot& s = ring.stacks[idx];
    uint64_t h = ld(s.hash, std::memory_order_acquire);
    if (h == hash) return static_cast<int32_t>(idx);
    if (h == 0) {
      uint64_t expected = 0;
      if (cas(s.hash, expected, kClaiming)) {
        st(s.depth, depth);
        for (uint32_t f = 0; f < depth; ++f) st(s.frames[f], frames[f]);
        st(s.hash, hash, std::memory_order_release);
        return static_cast<int32_t>(idx);
      }
    }
  }
  raiseHotWarning(kWarnStackTableFull);
  return -1;
}

void recordModules(RingRegion& ring) {
  if (ring.modules == nullptr) return;
  dl_iterate_phdr(
      [](struct dl_phdr_info* p, size_t, void* data) {
        auto* r = static_cast<RingRegion*>(data);
        uint32_t n = ld(r->header->moduleCount);
        if (n >= r->header->moduleCapacity) return 1;
        shm::ModuleSlot& m = r->modules[n];
        m.base = p->dlpi_addr;
        const char* path = p->dlpi_name && *p->dlpi_name ? p->dlpi_name : "(main program)";
        std::snprintf(m.path, sizeof m.path, "%s", path);
        m.buildId[0] = '\0';
        for (int i = 0; i < p->dlpi_phnum; ++i) {
          const auto& ph = p->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* note = reinterpret_cast<const char*>(p->dlpi_addr + ph.p_vaddr);
          size_t off = 0;
          while (off + sizeof(ElfW(Nhdr)) <= ph.p_memsz) {
            const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(note + off);
            size_t nameOff = off + sizeof(ElfW(Nhdr));
            size_t descOff = nameOff + ((nh->n_namesz + 3) & ~size_t{3});
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::memcmp(note + nameOff, "GNU", 4) == 0) {
              const auto* d = reinterpret_cast<const unsigned char*>(note + descOff);
              size_t len = std::min<size_t>(nh->n_descsz, (sizeof m.buildId - 1) / 2);
              for (size_t k = 0; k < len; ++k) std::snprintf(m.buildId + 2 * k, 3, "%02x", d[k]);
              break;
            }
            off = descOff + ((nh->n_descsz + 3) & ~size_t{3});
          }
        }
        st(r->header->moduleCount, n + 1, std::memory_order_release);
        return 0;
      },
      &ring);
}

std::string symbolizeAddress(uint64_t address) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(address), &info) == 0) return "";
  char buf[512];
  const char* module = info.dli_fname ? std::strrchr(info.dli_fname, '/') : nullptr;
  module = module ? module + 1 : (info.dli_fname ? info.dli_fname : "?");
  if (info.dli_sname != nullptr) {
    std::snprintf(buf, sizeof buf, "%s+0x%lx (%s)", info.dli_sname,
                  static_cast<unsigned long>(address - reinterpret_cast<uintptr_t>(info.dli_saddr)), module);
  } else {
    std::snprintf(buf, sizeof buf, "0x%lx (%s)",
                  static_cast<unsigned long>(address - reinterpret_cast<uintptr_t>(info.dli_fbase)), module);
  }
  return buf;
}

}  // namespace ncclfr::recorder
