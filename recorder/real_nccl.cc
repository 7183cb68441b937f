#include "real_nccl.h"

#include <dlfcn.h>

#include <cstring>
#include <string>

#include "log.h"

namespace ncclfr::recorder::real {

std::atomic<void*> gTable[static_cast<int>(Fn::kCount)];

namespace {

const char* const kNames[] = {
#define NCCLFR_NAME(name, ret, args) "nccl" #name,
    NCCLFR_FOR_EACH_NCCL_FUNCTION(NCCLFR_NAME)
#undef NCCLFR_NAME
};

// A resolved address must not be our own export (it would recurse forever): possible only when
// this library is loaded as an ordinary dependency after libnccl rather than preloaded.
bool isOurs(void* p) {
  Dl_info mine{}, theirs{};
  if (dladdr(reinterpret_cast<void*>(&isOurs), &mine) == 0) return false;
  if (dladdr(p, &theirs) == 0) return false;
  return mine.dli_fbase == theirs.dli_fbase;
}

void* lookup(void* handle, const std::string& base) {
  for (const std::string& n : {"p" + base, base}) {
    void* p = dlsym(handle, n.c_str());
    if (p != nullptr && !isOurs(p)) return p;
  }
  return nullptr;
}

std::atomic<void*> gLibrary{nullptr};

}  // namespace

const char* name(Fn fn) { return kNames[static_cast<int>(fn)]; }

void* resolve(Fn fn) {
  std::string base = kNames[static_cast<int>(fn)];
  void* p = lookup(RTLD_NEXT, base);
  if (p == nullptr) {
    void* lib = gLibrary.load(std::memory_order_acquire);
    if (lib == nullptr) {
      // NOLOAD first: a libnccl the application dlopen'ed privately is found without loading a
      // second copy.
      lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_NOLOAD);
      if (lib == nullptr) lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
      if (lib != nullptr) gLibrary.store(lib, std::memory_order_release);
    }
    if (lib != nullptr) p = lookup(lib, base);
  }
  if (p != nullptr) gTable[static_cast<int>(fn)].store(p, std::memory_order_release);
  return p;
}

}  // namespace ncclfr::recorder::real
