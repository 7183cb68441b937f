// Test support: edits an existing dump in place (copy the message, change it, write it back), for
// the hostile inputs no honest writer produces: host names that are HTML, invalid UTF-8, clocks of
// hosts that booted at different times.
#pragma once

#include <functional>
#include <string>

#include <capnp/message.h>

#include "ncclfr/dump_file.h"

namespace ncclfr::viewer::testing {

inline bool rewriteDump(const std::string& path, const std::function<void(schema::Dump::Builder)>& edit,
                        std::string* error) {
  capnp::MallocMessageBuilder message;
  {
    auto file = DumpFile::open(path, error);
    if (!file) return false;
    message.setRoot(file->dump());
  }
  edit(message.getRoot<schema::Dump>());
  return writeDumpFile(path, message, error);
}

// Moves every monotonic time of a dump by `deltaNs`, clock base included: the same history as
// recorded by a host whose monotonic clock started `deltaNs` earlier. Wall-clock times do not move.
inline void shiftMonotonic(schema::Dump::Builder d, int64_t deltaNs) {
  auto shift = [&](int64_t v) { return v == 0 ? 0 : v + deltaNs; };
  auto clock = d.getProcess().getClock();
  clock.setMonoNs(clock.getMonoNs() + deltaNs);
  auto info = d.getInfo();
  info.setMonoNs(shift(info.getMonoNs()));
  for (auto c : d.getComms()) {
    c.setCreatedMonoNs(shift(c.getCreatedMonoNs()));
    c.setLastAsyncErrorMonoNs(shift(c.getLastAsyncErrorMonoNs()));
    c.setDestroyedMonoNs(shift(c.getDestroyedMonoNs()));
  }
  for (auto e : d.getEntries()) {
    e.setEnqueueMonoNs(shift(e.getEnqueueMonoNs()));
    e.setStartMonoNs(shift(e.getStartMonoNs()));
    e.setEndMonoNs(shift(e.getEndMonoNs()));
  }
}

}  // namespace ncclfr::viewer::testing
