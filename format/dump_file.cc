#include "ncclfr/dump_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

namespace ncclfr {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

bool writeAll(int fd, const void* data, size_t size, std::string* error) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "write failed: " + errnoText(errno);
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Cap'n Proto's traversal limit guards against messages whose pointers alias the same data over
// and over (an amplification attack). Our readers walk a dump a few times at most, so allow many
// times the message's own size, with a floor for small dumps.
capnp::ReaderOptions readerOptions(size_t messageWords) {
  capnp::ReaderOptions options;
  constexpr uint64_t kFloorWords = uint64_t{8} << 20;
  options.traversalLimitInWords = std::max<uint64_t>(kFloorWords, uint64_t{64} * messageWords);
  return options;
}

}  // namespace

std::string describeException(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const kj::Exception& k) {
    // kj's description can span lines (it appends a stack) and quote the file's bytes: keep the
    // first line, at most 160 characters, with control and non-ASCII bytes escaped, so one damaged
    // file prints one clean line.
    std::string d(k.getDescription().cStr());
    auto nl = d.find('\n');
    if (nl != std::string::npos) d.resize(nl);
    std::string clean;
    for (unsigned char c : d) {
      if (clean.size() >= 160) {
        clean += "...";
        break;
      }
      if (c >= 0x20 && c < 0x7f) {
        clean += static_cast<char>(c);
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        clean += hex;
      }
    }
    return "corrupt message (Cap'n Proto: " + clean + ")";
  } catch (const std::exception& s) {
    return s.what();
  } catch (...) {
    return "unknown error";
  }
}

bool writeDump(int fd, capnp::MessageBuilder& message, std::string* error) noexcept {
  try {
    DumpFileHeader header{};
    std::memcpy(header.magic, kDumpMagic, sizeof header.magic);
    header.major = kDumpMajor;
    header.minor = kDumpMinor;
    header.headerBytes = sizeof(DumpFileHeader);
    if (!writeAll(fd, &header, sizeof header, error)) return false;
    capnp::writeMessageToFd(fd, message);
    return true;
  } catch (...) {
    *error = describeException(std::current_exception());
    return false;
  }
}

bool writeDumpFile(const std::string& path, capnp::MessageBuilder& message, std::string* error) noexcept {
  try {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = tmp + ": " + errnoText(errno);
      return false;
    }
    std::string why;
    bool ok = writeDump(fd, message, &why);
    if (::close(fd) != 0 && ok) {
      ok = false;
      why = "close failed: " + errnoText(errno);
    }
    if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
      ok = false;
      why = "rename failed: " + errnoText(errno);
    }
    if (!ok) {
      ::unlink(tmp.c_str());
      *error = path + ": " + why;
    }
    return ok;
  } catch (...) {
    *error = path + ": " + describeException(std::current_exception());
    return false;
  }
}

std::unique_ptr<DumpFile> DumpFile::open(const std::string& path, std::string* error) noexcept {
  try {
    std::unique_ptr<DumpFile> file(new DumpFile);
    file->name_ = path;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the
    // S_ISREG check below then refuses it. It changes nothing for a regular file.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
      *error = path + ": " + errnoText(errno);
      return nullptr;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      *error = path + ": " + errnoText(errno);
      ::close(fd);
      return nullptr;
    }
    if (!S_ISREG(st.st_mode)) {
      *error = path + ": not a regular file";
      ::close(fd);
      return nullptr;
    }
    file->size_ = static_cast<size_t>(st.st_size);
    if (file->size_ == 0) {
      *error = path + ": empty file";
      ::close(fd);
      return nullptr;
    }
    file->map_ = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int mapErr = errno;
    ::close(fd);
    if (file->map_ == MAP_FAILED) {
      file->map_ = nullptr;
      *error = path + ": mmap failed: " + errnoText(mapErr);
      return nullptr;
    }
    if (!file->init(static_cast<const unsigned char*>(file->map_), file->size_, error)) return nullptr;
    return file;
  } catch (...) {
    *error = path + ": " + describeException(std::current_exception());
    return nullptr;
  }
}

std::unique_ptr<DumpFile> DumpFile::fromBytes(const void* data, size_t size, std::string_view name,
                                              std::string* error) noexcept {
  try {
    std::unique_ptr<DumpFile> file(new DumpFile);
    file->name_ = std::string(name);
    file->size_ = size;
    const unsigned char* bytes = static_cast<const unsigned char*>(data);
    if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
      file->owned_.reset(new uint64_t[(size + 7) / 8]);
      if (size) std::memcpy(file->owned_.get(), data, size);
      bytes = reinterpret_cast<const unsigned char*>(file->owned_.get());
    }
    if (size == 0) {
      *error = file->name_ + ": empty file";
      return nullptr;
    }
    if (!file->init(bytes, size, error)) return nullptr;
    return file;
  } catch (...) {
    *error = std::string(name) + ": " + describeException(std::current_exception());
    return nullptr;
  }
}

bool DumpFile::init(const unsigned char* bytes, size_t size, std::string* error) noexcept {
  DumpFileHeader header{};
  if (size < sizeof header) {
    if (size >= sizeof header.magic && std::memcmp(bytes, kDumpMagic, sizeof kDumpMagic) != 0) {
      *error = name_ + ": not an ncclfr dump (wrong magic)";
    } else {
      *error = name_ + ": truncated (" + std::to_string(size) + " bytes, shorter than the header)";
    }
    return false;
  }
  std::memcpy(&header, bytes, sizeof header);
  if (std::memcmp(header.magic, kDumpMagic, sizeof kDumpMagic) != 0) {
    *error = name_ + ": not an ncclfr dump (wrong magic)";
    return false;
  }
  major_ = header.major;
  minor_ = header.minor;
  if (header.major > kDumpMajor) {
    *error = name_ + ": dump format " + std::to_string(header.major) + "." + std::to_string(header.minor) +
             " is newer than this ncclfr reads (" + std::to_string(kDumpMajor) + ".x); upgrade ncclfr";
    return false;
  }
  if (header.major == 0) {
    *error = name_ + ": dump format 0." + std::to_string(header.minor) + " was never released";
    return false;
  }
  if (header.headerBytes < sizeof header || header.headerBytes % 8 != 0 || header.headerBytes > size) {
    *error = name_ + ": corrupt header (message offset " + std::to_string(header.headerBytes) + ")";
    return false;
  }
  size_t messageBytes = size - header.headerBytes;
  if (messageBytes % 8 != 0) {
    // A message is whole words; a ragged tail means the copy was cut short.
    *error = name_ + ": truncated (message is not a whole number of words)";
    return false;
  }
  try {
    kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(bytes + header.headerBytes),
                                          messageBytes / sizeof(capnp::word));
    reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words, readerOptions(words.size()));
    if (reader_->getEnd() != words.end()) {
      *error = name_ + ": " + std::to_string((words.end() - reader_->getEnd()) * 8) +
               " bytes of trailing garbage after the message";
      return false;
    }
    root_ = reader_->getRoot<schema::Dump>();
    // Touch the small parts every reader needs, so a damaged root fails here, once, with a clear line.
    (void)root_.getProcess().getHost();
    (void)root_.getInfo().getIncidentId();
    (void)root_.getComms().size();
    (void)root_.getEntries().size();
    return true;
  } catch (...) {
    std::string why = describeException(std::current_exception());
    if (why.find("ends prematurely") != std::string::npos || why.find("too small") != std::string::npos) {
      *error = name_ + ": truncated (the file ends inside its message)";
    } else {
      *error = name_ + ": " + why;
    }
    reader_.reset();
    return false;
  }
}

DumpFile::~DumpFile() {
  reader_.reset();
  if (map_ != nullptr) ::munmap(map_, size_);
}

template <typename Enum>
std::string enumName(Enum value) {
  auto enumerants = capnp::Schema::from<Enum>().getEnumerants();
  auto index = static_cast<uint16_t>(value);
  if (index < enumerants.size()) return enumerants[index].getProto().getName().cStr();
  return "unknown(" + std::to_string(index) + ")";
}

template <typename Enum>
bool enumFromName(std::string_view name, Enum* value) {
  for (auto e : capnp::Schema::from<Enum>().getEnumerants()) {
    auto n = e.getProto().getName();
    if (std::string_view(n.cStr(), n.size()) == name) {
      *value = static_cast<Enum>(e.getOrdinal());
      return true;
    }
  }
  return false;
}

#define NCCLFR_INSTANTIATE_ENUM(E)              \
  template std::string enumName<E>(E);          \
  template bool enumFromName<E>(std::string_view, E*);
NCCLFR_INSTANTIATE_ENUM(schema::TimingMode)
NCCLFR_INSTANTIATE_ENUM(schema::DumpReason)
NCCLFR_INSTANTIATE_ENUM(schema::CommState)
NCCLFR_INSTANTIATE_ENUM(schema::CommOrigin)
NCCLFR_INSTANTIATE_ENUM(schema::Op)
NCCLFR_INSTANTIATE_ENUM(schema::EntryState)
NCCLFR_INSTANTIATE_ENUM(schema::DataType)
NCCLFR_INSTANTIATE_ENUM(schema::RedOp)
#undef NCCLFR_INSTANTIATE_ENUM

}  // namespace ncclfr
