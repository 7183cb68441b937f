// `ncclfr db PATH... -o trace.sqlite`: every dump's content as SQLite tables, for ad-hoc SQL.
// The schema is documented in docs/analyzer.md ("ncclfr db"). Loaded in one transaction, indexes
// built after the load (cheaper than maintaining them row by row), written to a temporary file and
// renamed so a reader never sees half a database.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/output_path.h"
#include "commands/progress.h"
#include "ncclfr/analysis/load.h"
#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"

namespace ncclfr::cli {
namespace {

struct DbArgs {
  std::vector<std::string> paths;
  std::string out;
};

const char* kSchema = R"sql(
CREATE TABLE dumps (
  dump_id INTEGER PRIMARY KEY, path TEXT NOT NULL, format_major INTEGER, format_minor INTEGER,
  host TEXT, pid INTEGER, global_rank INTEGER, world_size INTEGER, local_rank INTEGER, rank_source TEXT,
  job_id TEXT, incident_id TEXT, reason TEXT, detail TEXT, process_died INTEGER, trigger_rank INTEGER,
  dump_wall_ns INTEGER, incident_wall_ns INTEGER, clock_wall_ns INTEGER, clock_mono_ns INTEGER,
  timing TEXT, ring_capacity INTEGER, total_entries INTEGER, evicted_entries INTEGER, torn_entries INTEGER,
  nccl_version INTEGER, cuda_driver_version INTEGER, recorder_version TEXT, simulated INTEGER, cmdline TEXT,
  timeout_ns INTEGER);
CREATE TABLE comms (
  comm_row INTEGER PRIMARY KEY, dump_id INTEGER NOT NULL, comm_index INTEGER, comm_id TEXT, parent_id TEXT,
  name TEXT, rank INTEGER, size INTEGER, split_color INTEGER, split_key INTEGER, cuda_device INTEGER,
  state TEXT, created_by TEXT, blocking INTEGER, created_wall_ns INTEGER, init_duration_ns INTEGER,
  destroyed_wall_ns INTEGER, last_async_error INTEGER, last_async_error_wall_ns INTEGER,
  last_enqueued_seq INTEGER, last_started_seq INTEGER, last_completed_seq INTEGER,
  total_entries INTEGER, evicted_entries INTEGER);
CREATE TABLE p2p (
  comm_row INTEGER NOT NULL, peer INTEGER, direction TEXT, last_enqueued_seq INTEGER,
  last_started_seq INTEGER, last_completed_seq INTEGER);
CREATE TABLE entries (
  dump_id INTEGER NOT NULL, idx INTEGER NOT NULL, comm_row INTEGER NOT NULL, op TEXT, state TEXT,
  dtype TEXT, red_op TEXT, root INTEGER, seq INTEGER, p2p_seq INTEGER, op_seq INTEGER, group_id INTEGER,
  count INTEGER, stream INTEGER, enqueue_ns INTEGER, start_ns INTEGER, end_ns INTEGER,
  thread_id INTEGER, result INTEGER, call_duration_ns INTEGER, stack_index INTEGER);
CREATE VIEW entries_by_rank AS
  SELECT d.global_rank, d.host, d.pid, c.comm_id, c.name AS comm_name, c.rank AS comm_rank, e.*
  FROM entries e JOIN comms c USING (comm_row) JOIN dumps d ON d.dump_id = e.dump_id;
)sql";

const char* kIndexes = R"sql(
CREATE INDEX entries_comm_seq ON entries (comm_row, seq);
CREATE INDEX comms_id_rank ON comms (comm_id, rank);
CREATE INDEX comms_dump ON comms (dump_id);
CREATE INDEX dumps_rank ON dumps (global_rank);
CREATE INDEX p2p_comm ON p2p (comm_row);
)sql";

// Enumerant names, looked up once: the entries loop binds them without allocating.
template <typename Enum>
struct Names {
  std::array<std::string, 64> names;
  Names() {
    for (size_t k = 0; k < names.size(); ++k) names[k] = enumName(static_cast<Enum>(k));
  }
  const std::string& operator[](Enum e) const {
    static const std::string big = "unknown";
    auto k = static_cast<size_t>(e);
    return k < names.size() ? names[k] : big;
  }
};

class Db {
 public:
  ~Db() {
    for (auto* s : stmts_) sqlite3_finalize(s);
    if (db_) sqlite3_close(db_);
  }
  bool open(const std::string& path, std::string* error) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      *error = std::string("sqlite: ") + sqlite3_errmsg(db_);
      return false;
    }
    return exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-262144; PRAGMA threads=2;",
                error) &&
           exec(kSchema, error) && exec("BEGIN", error) &&
           prepare(&dump_, "INSERT INTO dumps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   error) &&
           prepare(&comm_, "INSERT INTO comms VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", error) &&
           prepare(&p2p_, "INSERT INTO p2p VALUES (?,?,?,?,?,?)", error) &&
           prepare(&entry_, "INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", error);
  }
  bool exec(const char* sql, std::string* error) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      *error = std::string("sqlite: ") + (msg ? msg : "error");
      sqlite3_free(msg);
      return false;
    }
    return true;
  }
  // Adds one dump; a damaged dump is rolled back to a savepoint so it leaves no partial rows.
  bool add(int64_t dumpId, const DumpFile& f, std::string* error);
  bool finish(std::string* error) {
    if (!exec("COMMIT", error)) return false;
    return exec(kIndexes, error);
  }

 private:
  bool prepare(sqlite3_stmt** s, const char* sql, std::string* error) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, s, nullptr) != SQLITE_OK) {
      *error = std::string("sqlite: ") + sqlite3_errmsg(db_);
      return false;
    }
    stmts_.push_back(*s);
    return true;
  }
  bool step(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE;
  }
  void text(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void staticText(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void text(sqlite3_stmt* s, int i, capnp::Text::Reader v) {
    sqlite3_bind_text(s, i, v.cStr(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void i64(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  // A time that may be "not known" (0): NULL in the table.
  // The dump's clock pair converts; saturated on a damaged clock base.
  void wall(sqlite3_stmt* s, int i, int64_t mono, const std::pair<int64_t, int64_t>& clock) {
    if (mono == 0) {
      sqlite3_bind_null(s, i);
    } else {
      sqlite3_bind_int64(s, i, analysis::wallFromMono(mono, clock.first, clock.second));
    }
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt *dump_ = nullptr, *comm_ = nullptr, *p2p_ = nullptr, *entry_ = nullptr;
  std::vector<sqlite3_stmt*> stmts_;
  int64_t commRow_ = 0;
  Names<schema::Op> ops_;
  Names<schema::EntryState> states_;
  Names<schema::DataType> dtypes_;
  Names<schema::RedOp> redOps_;
};

bool Db::add(int64_t dumpId, const DumpFile& f, std::string* error) {
  if (!exec("SAVEPOINT dump", error)) return false;
  int64_t firstCommRow = commRow_;
  try {
    auto d = f.dump();
    auto p = d.getProcess();
    auto i = d.getInfo();
    const std::pair<int64_t, int64_t> offset{p.getClock().getWallNs(), p.getClock().getMonoNs()};
    auto* s = dump_;
    int c = 1;
    i64(s, c++, dumpId);
    text(s, c++, f.name());
    i64(s, c++, f.major());
    i64(s, c++, f.minor());
    text(s, c++, p.getHost());
    i64(s, c++, p.getPid());
    i64(s, c++, p.getGlobalRank());
    i64(s, c++, p.getWorldSize());
    i64(s, c++, p.getLocalRank());
    text(s, c++, p.getRankSource());
    text(s, c++, p.getJobId());
    text(s, c++, i.getIncidentId());
    text(s, c++, enumName(i.getReason()));
    text(s, c++, i.getDetail());
    i64(s, c++, i.getProcessDied());
    i64(s, c++, i.getTriggerRank());
    i64(s, c++, i.getWallNs());
    i64(s, c++, i.getIncidentWallNs());
    i64(s, c++, p.getClock().getWallNs());
    i64(s, c++, p.getClock().getMonoNs());
    text(s, c++, enumName(p.getTiming()));
    i64(s, c++, p.getRingCapacity());
    i64(s, c++, static_cast<int64_t>(i.getTotalEntries()));
    i64(s, c++, static_cast<int64_t>(i.getEvictedEntries()));
    i64(s, c++, static_cast<int64_t>(i.getTornEntries()));
    i64(s, c++, p.getNcclVersion());
    i64(s, c++, p.getCudaDriverVersion());
    text(s, c++, p.getRecorderVersion());
    i64(s, c++, p.getSimulated());
    text(s, c++, p.getCmdline());
    if (i.getTimeoutNs() > 0) {
      i64(s, c++, i.getTimeoutNs());
    } else {
      sqlite3_bind_null(s, c++);  // not known (format < 1.2, salvaged rings)
    }
    if (!step(s)) throw std::runtime_error(sqlite3_errmsg(db_));

    auto comms = d.getComms();
    for (uint32_t k = 0; k < comms.size(); ++k) {
      auto x = comms[k];
      s = comm_;
      c = 1;
      i64(s, c++, commRow_ + k);
      i64(s, c++, dumpId);
      i64(s, c++, k);
      text(s, c++, analysis::hexId(x.getId()));
      text(s, c++, analysis::hexId(x.getParentId()));
      text(s, c++, x.getName());
      i64(s, c++, x.getRank());
      i64(s, c++, x.getSize());
      i64(s, c++, x.getSplitColor());
      i64(s, c++, x.getSplitKey());
      i64(s, c++, x.getCudaDevice());
      text(s, c++, enumName(x.getState()));
      text(s, c++, enumName(x.getCreatedBy()));
      i64(s, c++, x.getBlocking());
      wall(s, c++, x.getCreatedMonoNs(), offset);
      i64(s, c++, x.getInitDurationNs());
      wall(s, c++, x.getDestroyedMonoNs(), offset);
      i64(s, c++, x.getLastAsyncError());
      wall(s, c++, x.getLastAsyncErrorMonoNs(), offset);
      i64(s, c++, x.getLastEnqueuedSeq());
      i64(s, c++, x.getLastStartedSeq());
      i64(s, c++, x.getLastCompletedSeq());
      i64(s, c++, static_cast<int64_t>(x.getTotalEntries()));
      i64(s, c++, static_cast<int64_t>(x.getEvictedEntries()));
      if (!step(s)) throw std::runtime_error(sqlite3_errmsg(db_));
      for (auto q : x.getP2p()) {
        s = p2p_;
        i64(s, 1, commRow_ + k);
        i64(s, 2, q.getPeer());
        sqlite3_bind_text(s, 3, q.getSend() ? "send" : "recv", -1, SQLITE_STATIC);
        i64(s, 4, q.getLastEnqueuedSeq());
        i64(s, 5, q.getLastStartedSeq());
        i64(s, 6, q.getLastCompletedSeq());
        if (!step(s)) throw std::runtime_error(sqlite3_errmsg(db_));
      }
    }
    const uint32_t ncomms = comms.size();
    commRow_ += ncomms;

    auto entries = d.getEntries();
    s = entry_;
    i64(s, 1, dumpId);
    for (uint32_t k = 0; k < entries.size(); ++k) {
      auto e = entries[k];
      uint32_t ci = e.getComm();
      if (ci >= ncomms) continue;  // names no communicator of this dump
      i64(s, 2, k);
      i64(s, 3, firstCommRow + ci);
      staticText(s, 4, ops_[e.getOp()]);
      staticText(s, 5, states_[e.getState()]);
      staticText(s, 6, dtypes_[e.getDtype()]);
      staticText(s, 7, redOps_[e.getRedOp()]);
      i64(s, 8, e.getRoot());
      i64(s, 9, e.getSeq());
      i64(s, 10, e.getP2pSeq());
      i64(s, 11, e.getOpSeq());
      i64(s, 12, e.getGroupId());
      i64(s, 13, static_cast<int64_t>(e.getCount()));
      i64(s, 14, static_cast<int64_t>(e.getStream()));
      wall(s, 15, e.getEnqueueMonoNs(), offset);
      wall(s, 16, e.getStartMonoNs(), offset);
      wall(s, 17, e.getEndMonoNs(), offset);
      i64(s, 18, e.getThreadId());
      i64(s, 19, e.getResult());
      i64(s, 20, e.getCallDurationNs());
      i64(s, 21, e.getStackIndex());
      if (sqlite3_step(s) != SQLITE_DONE) {
        sqlite3_reset(s);
        throw std::runtime_error(sqlite3_errmsg(db_));
      }
      sqlite3_reset(s);
    }
    return exec("RELEASE dump", error);
  } catch (...) {
    *error = f.name() + ": " + describeException(std::current_exception());
    commRow_ = firstCommRow;
    std::string ignored;
    exec("ROLLBACK TO dump; RELEASE dump", &ignored);
    return false;
  }
}

int runDb(const DbArgs& a) {
  std::vector<analysis::Problem> problems;
  auto files = analysis::findDumpFiles(a.paths, &problems);
  for (const auto& p : problems) std::fprintf(stderr, "ncclfr: %s\n", p.message.c_str());
  if (files.empty()) {
    std::fprintf(stderr, "ncclfr: no dump files (*.ncclfr) found in the given paths\n");
    return kExitBadInput;
  }
  if (!outputAllowed(a.out, a.paths, files, OutputKind::kSqlite)) return kExitBadInput;
  std::string tmp = a.out + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  // Created here rather than by SQLite, whose message ("unable to open database file") names
  // neither the path nor the reason.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "ncclfr: %s\n", cannotWrite(a.out, errno).c_str());
    return kExitBadInput;
  }
  ::close(fd);
  size_t bad = 0, good = 0;
  std::string error;
  {
    Db db;
    if (!db.open(tmp, &error)) {
      std::fprintf(stderr, "ncclfr: %s: %s\n", a.out.c_str(), error.c_str());
      ::unlink(tmp.c_str());
      return kExitBadInput;
    }
    Progress progress("writing " + a.out);
    for (size_t k = 0; k < files.size(); ++k) {
      auto f = DumpFile::open(files[k], &error);
      if (!f || !db.add(static_cast<int64_t>(good), *f, &error)) {
        std::fprintf(stderr, "ncclfr: %s\n", error.c_str());
        ++bad;
      } else {
        ++good;
      }
      if (k % 16 == 0) progress.update(k, files.size());
    }
    progress.finish();
    if (!db.finish(&error)) {
      std::fprintf(stderr, "ncclfr: %s: %s\n", a.out.c_str(), error.c_str());
      ::unlink(tmp.c_str());
      return kExitInternal;
    }
  }
  if (good == 0) {
    // An empty database would pass for a result in a script that checks only that the file exists.
    std::fprintf(stderr, "ncclfr: none of the %zu dumps could be read: %s not written\n", bad, a.out.c_str());
    ::unlink(tmp.c_str());
    return kExitBadInput;
  }
  if (::rename(tmp.c_str(), a.out.c_str()) != 0) {
    std::fprintf(stderr, "ncclfr: %s\n", cannotWrite(a.out, errno).c_str());
    ::unlink(tmp.c_str());
    return kExitBadInput;
  }
  std::printf("wrote %s: %zu dumps%s\n", a.out.c_str(), good,
              bad ? (", " + std::to_string(bad) + " unreadable (listed above)").c_str() : "");
  return bad ? kExitProblem : kExitOk;
}

void addDb(CLI::App& app, int* exitCode) {
  auto args = std::make_shared<DbArgs>();
  auto* cmd = app.add_subcommand("db", "Write every dump into a SQLite database (tables dumps, comms, p2p, entries)");
  cmd->add_option("paths", args->paths, "Dump files or folders (searched recursively for *.ncclfr)")->required();
  cmd->add_option("-o,--out", args->out, "The database file to write (an existing SQLite database or empty file is replaced)")->required();
  cmd->callback([args, exitCode] { *exitCode = runDb(*args); });
}

NCCLFR_COMMAND(50, addDb);

}  // namespace
}  // namespace ncclfr::cli
