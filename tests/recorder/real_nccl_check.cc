// real_nccl_check: with libncclfr.so preloaded over the real libnccl.so.2, each call that works
// without a GPU (version, unique id, failing init, calls on a null communicator) must return exactly
// what the real function returns when called directly (pncclX, which the shim does not interpose).
// Prints one line per call and exits 0 when every result matched.
#include <nccl.h>

#include <cstdio>
#include <cstring>

namespace {
int mismatches = 0;

void compare(const char* what, ncclResult_t shim, ncclResult_t direct) {
  bool same = shim == direct;
  mismatches += !same;
  std::printf("%-32s shim %d direct %d %s\n", what, static_cast<int>(shim), static_cast<int>(direct),
              same ? "same" : "DIFFERENT");
}
}  // namespace

int main() {
  int v1 = -1, v2 = -2;
  compare("ncclGetVersion", ncclGetVersion(&v1), pncclGetVersion(&v2));
  if (v1 != v2) {
    std::printf("version %d vs %d DIFFERENT\n", v1, v2);
    ++mismatches;
  } else {
    std::printf("version %d\n", v1);
  }
  compare("ncclGetVersion(NULL)", ncclGetVersion(nullptr), pncclGetVersion(nullptr));
  ncclUniqueId a, b;
  std::memset(&a, 0, sizeof a);
  std::memset(&b, 0, sizeof b);
  compare("ncclGetUniqueId", ncclGetUniqueId(&a), pncclGetUniqueId(&b));
  compare("ncclGetUniqueId(NULL)", ncclGetUniqueId(nullptr), pncclGetUniqueId(nullptr));
  ncclComm_t c1 = nullptr, c2 = nullptr;
  compare("ncclCommInitRank", ncclCommInitRank(&c1, 1, a, 0), pncclCommInitRank(&c2, 1, b, 0));
  compare("ncclCommInitRank(bad rank)", ncclCommInitRank(&c1, 2, a, 7), pncclCommInitRank(&c2, 2, b, 7));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  compare("ncclCommInitRankConfig", ncclCommInitRankConfig(&c1, 1, a, 0, &config),
          pncclCommInitRankConfig(&c2, 1, b, 0, &config));
  compare("ncclAllReduce(NULL comm)", ncclAllReduce(nullptr, nullptr, 1, ncclFloat, ncclSum, nullptr, nullptr),
          pncclAllReduce(nullptr, nullptr, 1, ncclFloat, ncclSum, nullptr, nullptr));
  compare("ncclSend(NULL comm)", ncclSend(nullptr, 1, ncclFloat, 0, nullptr, nullptr),
          pncclSend(nullptr, 1, ncclFloat, 0, nullptr, nullptr));
  compare("ncclGroupStart", ncclGroupStart(), pncclGroupStart());
  compare("ncclGroupEnd", ncclGroupEnd(), pncclGroupEnd());
  compare("ncclCommDestroy(NULL)", ncclCommDestroy(nullptr), pncclCommDestroy(nullptr));
  compare("ncclCommAbort(NULL)", ncclCommAbort(nullptr), pncclCommAbort(nullptr));
  ncclResult_t e1 = ncclSuccess, e2 = ncclSuccess;
  compare("ncclCommGetAsyncError(NULL)", ncclCommGetAsyncError(nullptr, &e1), pncclCommGetAsyncError(nullptr, &e2));
  std::printf("%d mismatches\n", mismatches);
  return mismatches == 0 ? 0 : 1;
}
