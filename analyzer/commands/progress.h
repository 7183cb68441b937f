// Progress on stderr for work that takes more than a second, only when stderr is a terminal (so
// logs and CI output stay clean).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace ncclfr::cli {

class Progress {
 public:
  explicit Progress(std::string what)
      : what_(std::move(what)), tty_(::isatty(2) == 1), begin_(std::chrono::steady_clock::now()) {}
  ~Progress() { finish(); }
  void update(size_t done, size_t total) {
    if (!tty_ || std::chrono::steady_clock::now() - begin_ < std::chrono::seconds(1)) return;
    std::fprintf(stderr, "\r%s: %zu/%zu", what_.c_str(), done, total);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  std::string what_;
  bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point begin_;
};

}  // namespace ncclfr::cli
