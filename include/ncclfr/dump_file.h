// Reading and writing ncclfr dump files (schema: include/ncclfr/dump.capnp; docs/dump-format.md).
//
// A dump file is a DumpFileHeader followed by one unpacked Cap'n Proto message. Unpacked so a
// reader can mmap the file and walk it in place: the analyzer opens tens of thousands of dumps and
// touches only the pages it needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "ncclfr/dump.capnp.h"

namespace ncclfr {

// The format this build writes. Readers accept any minor of a major they know and refuse a newer
// major (see dump.capnp for the evolution rule).
inline constexpr uint16_t kDumpMajor = 1;
inline constexpr uint16_t kDumpMinor = 2;
inline constexpr char kDumpMagic[8] = {'N', 'C', 'C', 'L', 'F', 'R', 'D', '\0'};
// The name every dump file ends with, so a folder walk can tell dumps from other files.
inline constexpr std::string_view kDumpSuffix = ".ncclfr";

// The bytes in front of every dump's message. Fixed width and little-endian (every machine ncclfr
// runs on); its 16 bytes keep the message that follows 8-byte aligned, which zero-copy reads need.
// A reader checks magic and major before it interprets a single byte of the message, so a future
// major can change anything after the header.
struct DumpFileHeader {
  char magic[8];
  uint16_t major;
  uint16_t minor;
  // Offset of the message from the start of the file: sizeof(DumpFileHeader) in 1.x. Readers honour
  // it, so a later minor may grow the header without breaking them.
  uint32_t headerBytes;
};
static_assert(sizeof(DumpFileHeader) == 16, "the header is part of the on-disk format");

// Writes header + message to `fd` at its current offset. Never throws; on failure returns false and
// sets *error to one line.
bool writeDump(int fd, capnp::MessageBuilder& message, std::string* error) noexcept;

// Writes `path` atomically: a temporary file beside it (mode 0600), then rename(2), so a reader never
// sees half a dump and an existing file is replaced whole or not at all. Never throws.
bool writeDumpFile(const std::string& path, capnp::MessageBuilder& message, std::string* error) noexcept;

// A dump opened for reading. The reader returned by dump() points into the mapped file (or the
// caller's bytes): no copy, no parse. Cap'n Proto checks every pointer as it is followed, so on a
// damaged file an accessor may throw kj::Exception; code reading files it did not write catches it
// per file (describeException below makes the one-line message).
class DumpFile {
 public:
  // Maps `path` read-only and checks the header and the message's framing. Returns null with *error
  // set to one line ("<path>: <what is wrong>") for a missing, empty, truncated, foreign or
  // newer-major file. Never throws.
  static std::unique_ptr<DumpFile> open(const std::string& path, std::string* error) noexcept;

  // The same checks over bytes in memory (tests, fuzzing). The bytes are copied when they are not
  // 8-byte aligned; otherwise they must outlive the DumpFile. `name` prefixes error lines.
  static std::unique_ptr<DumpFile> fromBytes(const void* data, size_t size, std::string_view name,
                                             std::string* error) noexcept;

  ~DumpFile();
  DumpFile(const DumpFile&) = delete;
  DumpFile& operator=(const DumpFile&) = delete;

  schema::Dump::Reader dump() const { return root_; }
  uint16_t major() const { return major_; }
  uint16_t minor() const { return minor_; }
  const std::string& name() const { return name_; }
  size_t sizeBytes() const { return size_; }

 private:
  DumpFile() = default;
  bool init(const unsigned char* bytes, size_t size, std::string* error) noexcept;

  std::string name_;
  void* map_ = nullptr;             // mmap'd file, or null
  size_t size_ = 0;
  std::unique_ptr<uint64_t[]> owned_;  // aligned copy for fromBytes, or null
  uint16_t major_ = 0;
  uint16_t minor_ = 0;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  schema::Dump::Reader root_;
};

// One line for an exception thrown while reading a damaged dump (kj::Exception or std::exception).
std::string describeException(std::exception_ptr e);

// The schema's name of an enumerant ("allReduce", "float32", "stall"), or "unknown(N)" for a value
// this build does not know (a newer minor's enumerant). Defined for every enum of dump.capnp.
template <typename Enum>
std::string enumName(Enum value);

// The reverse, for command-line input; false when `name` is not an enumerant of Enum.
template <typename Enum>
bool enumFromName(std::string_view name, Enum* value);

}  // namespace ncclfr
