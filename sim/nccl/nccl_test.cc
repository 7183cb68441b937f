// In-process tests of sim/'s libnccl: several ranks of one communicator driven from one process
// (ncclCommInitAll, one device per rank), and the argument checks and codes of the API. The
// multi-process behaviour (separate ranks, failures, the launcher) is tested in tests/sim/.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

namespace {

constexpr int kRanks = 4;

struct Ranks {
  ncclComm_t comms[kRanks] = {};
  cudaStream_t streams[kRanks] = {};
  Ranks() {
    REQUIRE(ncclCommInitAll(comms, kRanks, nullptr) == ncclSuccess);
    for (int r = 0; r < kRanks; ++r) {
      REQUIRE(cudaSetDevice(r) == cudaSuccess);
      REQUIRE(cudaStreamCreateWithFlags(&streams[r], cudaStreamNonBlocking) == cudaSuccess);
    }
  }
  ~Ranks() {
    for (int r = 0; r < kRanks; ++r) {
      (void)cudaSetDevice(r);
      (void)cudaStreamSynchronize(streams[r]);
      (void)cudaStreamDestroy(streams[r]);
      CHECK(ncclCommDestroy(comms[r]) == ncclSuccess);
    }
  }
  void sync() {
    for (int r = 0; r < kRanks; ++r) {
      (void)cudaSetDevice(r);
      REQUIRE(cudaStreamSynchronize(streams[r]) == cudaSuccess);
    }
  }
};

}  // namespace

TEST_CASE("ncclCommInitAll builds one communicator per device and queries report rank, size and device") {
  Ranks ranks;
  for (int r = 0; r < kRanks; ++r) {
    int v = -1;
    REQUIRE(ncclCommUserRank(ranks.comms[r], &v) == ncclSuccess);
    CHECK(v == r);
    REQUIRE(ncclCommCount(ranks.comms[r], &v) == ncclSuccess);
    CHECK(v == kRanks);
    REQUIRE(ncclCommCuDevice(ranks.comms[r], &v) == ncclSuccess);
    CHECK(v == r);
    ncclResult_t state = ncclInternalError;
    REQUIRE(ncclCommGetAsyncError(ranks.comms[r], &state) == ncclSuccess);
    CHECK(state == ncclSuccess);
  }
}

TEST_CASE("collectives launched in one group from one thread compute NCCL's results") {
  Ranks ranks;
  constexpr size_t kCount = 5;
  std::vector<std::vector<float>> send(kRanks), recv(kRanks);
  for (int r = 0; r < kRanks; ++r) {
    send[r].resize(kCount * kRanks);
    for (size_t i = 0; i < send[r].size(); ++i) send[r][i] = static_cast<float>(100 * r + static_cast<int>(i));
    recv[r].assign(kCount * kRanks, -1.0f);
  }
  SECTION("allreduce") {
    REQUIRE(ncclGroupStart() == ncclSuccess);
    for (int r = 0; r < kRanks; ++r) {
      REQUIRE(ncclAllReduce(send[r].data(), recv[r].data(), kCount, ncclFloat, ncclSum, ranks.comms[r],
                            ranks.streams[r]) == ncclSuccess);
    }
    REQUIRE(ncclGroupEnd() == ncclSuccess);
    ranks.sync();
    for (int r = 0; r < kRanks; ++r) {
      for (size_t i = 0; i < kCount; ++i) CHECK(recv[r][i] == static_cast<float>(600 + 4 * i));
    }
  }
  SECTION("alltoall and reducescatter") {
    std::vector<std::vector<float>> rs(kRanks, std::vector<float>(kCount, -1.0f));
    REQUIRE(ncclGroupStart() == ncclSuccess);
    for (int r = 0; r < kRanks; ++r) {
      REQUIRE(ncclAlltoAll(send[r].data(), recv[r].data(), kCount, ncclFloat, ranks.comms[r], ranks.streams[r]) ==
              ncclSuccess);
      REQUIRE(ncclReduceScatter(send[r].data(), rs[r].data(), kCount, ncclFloat, ncclMax, ranks.comms[r],
                                ranks.streams[r]) == ncclSuccess);
    }
    REQUIRE(ncclGroupEnd() == ncclSuccess);
    ranks.sync();
    for (int r = 0; r < kRanks; ++r) {
      for (int p = 0; p < kRanks; ++p) {
        for (size_t i = 0; i < kCount; ++i) {
          CHECK(recv[r][p * kCount + i] == send[p][r * kCount + i]);
        }
      }
      for (size_t i = 0; i < kCount; ++i) CHECK(rs[r][i] == send[kRanks - 1][r * kCount + i]);
    }
  }
}

TEST_CASE("send/recv rings in a group never deadlock, whatever the order of calls") {
  Ranks ranks;
  constexpr size_t kCount = 100000;  // larger than a channel's buffer: the transfer streams through it
  std::vector<std::vector<int>> send(kRanks, std::vector<int>(kCount)), recv(kRanks, std::vector<int>(kCount, -1));
  for (int r = 0; r < kRanks; ++r) std::iota(send[r].begin(), send[r].end(), r * 1000000);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  for (int r = 0; r < kRanks; ++r) {
    // Every rank posts its send before its receive: outside a group this would deadlock.
    REQUIRE(ncclSend(send[r].data(), kCount, ncclInt32, (r + 1) % kRanks, ranks.comms[r], ranks.streams[r]) ==
            ncclSuccess);
    REQUIRE(ncclRecv(recv[r].data(), kCount, ncclInt32, (r + kRanks - 1) % kRanks, ranks.comms[r],
                     ranks.streams[r]) == ncclSuccess);
  }
  REQUIRE(ncclGroupEnd() == ncclSuccess);
  ranks.sync();
  for (int r = 0; r < kRanks; ++r) CHECK(recv[r] == send[(r + kRanks - 1) % kRanks]);
}

TEST_CASE("invalid arguments get the codes NCCL returns") {
  int v = 0;
  CHECK(ncclGetVersion(&v) == ncclSuccess);
  CHECK(v == NCCL_VERSION_CODE);
  CHECK(ncclGetVersion(nullptr) == ncclInvalidArgument);
  CHECK(ncclGetUniqueId(nullptr) == ncclInvalidArgument);
  CHECK(ncclGroupEnd() == ncclInvalidUsage);
  CHECK(std::strcmp(ncclGetErrorString(ncclRemoteError), "remote process exited or there was a network error") == 0);
  CHECK(ncclCommDestroy(nullptr) == ncclSuccess);
  CHECK(ncclCommAbort(nullptr) == ncclSuccess);
  CHECK(ncclCommFinalize(nullptr) == ncclSuccess);
  CHECK(ncclCommCount(nullptr, &v) == ncclInvalidArgument);
  ncclResult_t state;
  CHECK(ncclCommGetAsyncError(nullptr, &state) == ncclInvalidArgument);
  ncclUniqueId id;
  REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, 2, id, 2) == ncclInvalidArgument);
  CHECK(comm == nullptr);
  CHECK(ncclCommInitRank(&comm, 0, id, 0) == ncclInvalidArgument);
  CHECK(ncclCommInitRank(nullptr, 1, id, 0) == ncclInvalidArgument);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.magic = 0;
  CHECK(ncclCommInitRankConfig(&comm, 1, id, 0, &config) == ncclInvalidArgument);
  config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 2;
  CHECK(ncclCommInitRankConfig(&comm, 1, id, 0, &config) == ncclInvalidArgument);
  ncclUniqueId garbage;
  std::memset(&garbage, 7, sizeof garbage);
  CHECK(ncclCommInitRank(&comm, 1, garbage, 0) == ncclInvalidArgument);
  ncclSimInfo_t sim = NCCL_SIM_INFO_INITIALIZER;
  CHECK(ncclGroupSimulateEnd(&sim) == ncclInvalidUsage);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  sim.magic = 0;
  CHECK(ncclGroupSimulateEnd(&sim) == ncclInvalidArgument);
  // A single-rank communicator: the real checks against a real communicator.
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  REQUIRE(ncclCommInitRank(&comm, 1, id, 0) == ncclSuccess);
  float buf[4] = {1, 2, 3, 4};
  CHECK(ncclAllReduce(buf, buf, 4, ncclFloat, static_cast<ncclRedOp_t>(17), comm, 0) == ncclInvalidArgument);
  CHECK(ncclAllReduce(buf, buf, 4, static_cast<ncclDataType_t>(42), ncclSum, comm, 0) == ncclInvalidArgument);
  CHECK(ncclBroadcast(buf, buf, 4, ncclFloat, 1, comm, 0) == ncclInvalidArgument);
  CHECK(ncclSend(buf, 4, ncclFloat, -1, comm, 0) == ncclInvalidArgument);
  CHECK(ncclCommCount(comm, nullptr) == ncclInvalidArgument);
  CHECK(ncclRedOpDestroy(ncclSum, comm) == ncclInvalidArgument);
  int excluded = 0;
  ncclComm_t child = nullptr;
  CHECK(ncclCommShrink(comm, &excluded, 1, &child, nullptr, NCCL_SHRINK_DEFAULT) == ncclInvalidArgument);
  CHECK(ncclCommShrink(comm, nullptr, 1, &child, nullptr, NCCL_SHRINK_DEFAULT) == ncclInvalidArgument);
  CHECK(ncclCommRevoke(comm, 3) == ncclInvalidArgument);
  // An error inside a group fails the whole group at ncclGroupEnd, and nothing in it runs.
  float out[4] = {0, 0, 0, 0};
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(buf, out, 4, ncclFloat, ncclSum, comm, 0) == ncclSuccess);
  CHECK(ncclAllReduce(buf, out, 4, ncclFloat, static_cast<ncclRedOp_t>(17), comm, 0) == ncclInvalidArgument);
  CHECK(ncclGroupEnd() == ncclInvalidArgument);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(out[0] == 0.0f);
  // A user PreMulSum operator on one rank is the scaled input.
  ncclRedOp_t premul;
  float scale = 3.0f;
  REQUIRE(ncclRedOpCreatePreMulSum(&premul, &scale, ncclFloat, ncclScalarHostImmediate, comm) == ncclSuccess);
  CHECK(ncclAllReduce(buf, out, 4, ncclFloat16, premul, comm, 0) == ncclInvalidArgument);  // type differs
  REQUIRE(ncclAllReduce(buf, out, 4, ncclFloat, premul, comm, 0) == ncclSuccess);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(out[3] == 12.0f);
  CHECK(ncclRedOpDestroy(premul, comm) == ncclSuccess);
  CHECK(ncclRedOpDestroy(premul, comm) == ncclInvalidArgument);
  CHECK(ncclCommFinalize(comm) == ncclSuccess);
  CHECK(ncclCommFinalize(comm) == ncclInvalidArgument);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
  CHECK(ncclCommDestroy(comm) == ncclInvalidArgument);
  CHECK(std::strlen(ncclGetLastError(nullptr)) > 0);
}

TEST_CASE("two ranks on one device are refused, as NCCL refuses a duplicate GPU") {
  ncclUniqueId id;
  REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
  ncclComm_t comms[2] = {};
  ncclResult_t results[2] = {ncclSuccess, ncclSuccess};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      (void)cudaSetDevice(5);
      results[r] = ncclCommInitRank(&comms[r], 2, id, r);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(results[0] == ncclInvalidUsage);
  CHECK(results[1] == ncclInvalidUsage);
  CHECK(comms[0] == nullptr);
  CHECK(comms[1] == nullptr);
}

TEST_CASE("ncclCommInitRankScalable joins ranks that pass the same list of ids") {
  ncclUniqueId ids[2];
  REQUIRE(ncclGetUniqueId(&ids[0]) == ncclSuccess);
  REQUIRE(ncclGetUniqueId(&ids[1]) == ncclSuccess);
  ncclComm_t comms[3] = {};
  ncclResult_t results[3] = {ncclInternalError, ncclInternalError, ncclInternalError};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      (void)cudaSetDevice(r);
      results[r] = ncclCommInitRankScalable(&comms[r], 3, r, 2, ids, nullptr);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    CHECK(results[r] == ncclSuccess);
    int v = -1;
    REQUIRE(ncclCommUserRank(comms[r], &v) == ncclSuccess);
    CHECK(v == r);
    CHECK(ncclCommDestroy(comms[r]) == ncclSuccess);
  }
  ncclComm_t bad = nullptr;
  CHECK(ncclCommInitRankScalable(&bad, 3, 0, 4, ids, nullptr) == ncclInvalidArgument);
}
