// Exchanging the ncclUniqueId through a file, the way MPI programs use MPI_Bcast and PyTorch uses a
// TCP store: rank 0 creates the id and publishes it, every other rank waits for it. Plain C++ over
// nccl.h, so the examples build exactly like user programs (no ncclfr headers).
//
// Rank 0 writes `path.tmp.<pid>` and renames it to `path`, so a reader never sees half an id. The
// path must be fresh for each job (a stale file from an earlier run would hand out a dead id): the
// examples take it from --uid-file or NCCL_UID_FILE and tests give each job a new folder.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <nccl.h>

namespace examples {

// Returns false (with a message on stderr) if the id could not be created, written or read within
// `timeout`.
inline bool exchangeUniqueId(const std::string& path, int rank, ncclUniqueId* id,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  if (rank == 0) {
    ncclResult_t r = ncclGetUniqueId(id);
    if (r != ncclSuccess) {
      std::fprintf(stderr, "rank 0: ncclGetUniqueId failed: %s\n", ncclGetErrorString(r));
      return false;
    }
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::write(fd, id, sizeof *id) != static_cast<ssize_t>(sizeof *id) || ::close(fd) != 0 ||
        ::rename(tmp.c_str(), path.c_str()) != 0) {
      std::perror(("rank 0: writing " + path).c_str());
      return false;
    }
    return true;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd >= 0) {
      ssize_t n = ::read(fd, id, sizeof *id);
      ::close(fd);
      if (n == static_cast<ssize_t>(sizeof *id)) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::fprintf(stderr, "rank %d: no ncclUniqueId in %s after %lld ms\n", rank, path.c_str(),
               static_cast<long long>(timeout.count()));
  return false;
}

}  // namespace examples
