# The ncclfr dump: one file per process per incident, written by the recorder (libncclfr.so), by
# `ncclfr salvage` from a dead process's shared-memory ring, and by `ncclfr synth`; read by every
# analyzer, viewer and export command. It is the only format that crosses the process boundary.
#
# A dump file is a 16-byte header (see dump_file.h: magic "NCCLFRD", major, minor) followed by one
# UNPACKED Cap'n Proto message whose root is `Dump`, so readers mmap the file and read it in place.
#
# Evolving this schema (docs/dump-format.md says the same, with examples):
#   * A new field gets the next free ordinal (@N) at the end of its struct; existing ordinals, names'
#     meanings and types never change. A new enumerant goes at the end of its enum. Bump the MINOR
#     version in dump_file.h. Old readers skip what they do not know; new readers see zero/default in
#     fields that old writers never set, so every field's default must mean "not recorded".
#   * Anything that would change the meaning of an existing field is a MAJOR version bump. Readers
#     refuse a major version newer than their own with a one-line message naming both versions, and
#     keep reading every older major they have ever known.
#
# Conventions:
#   * Times are nanoseconds. Fields named *MonoNs are CLOCK_MONOTONIC of the host that recorded them;
#     0 means "not known". Process.clock pairs the two clocks (wall = mono + clock.wallNs - clock.monoNs)
#     so that dumps from different hosts can be placed on one wall-clock axis.
#   * GPU times (Entry.startMonoNs/endMonoNs) are already converted by the recorder to the host's
#     monotonic clock, so one axis serves host and device times.
#   * Sequence numbers start at 0. The "last ..." counters are -1 when nothing has happened yet.
#   * NCCL enum values (dtype, reduction op, ncclResult_t) keep NCCL's numeric values, so the
#     enumerants below are declared in NCCL's order.

@0xf28e3e45d6934bb3;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ncclfr::schema");

struct Dump {
  process @0 :Process;
  info @1 :DumpInfo;
  # Every communicator this process ever created, live or not, in creation order. Entries refer to a
  # communicator by its index in this list (two communicators of one process can share an id: the
  # ranks that ncclCommInitAll creates in one process all have the same NCCL commHash).
  comms @2 :List(Comm);
  # Every recorded call still in the ring, oldest first (ring order, which is each thread's call
  # order). Evicted calls are counted in Comm.evictedEntries and DumpInfo.evictedEntries.
  entries @3 :List(Entry);
  # Call stacks, deduplicated; Entry.stackIndex points here. Empty unless NCCLFR_STACKS was set.
  stacks @4 :List(Stack);
}

struct Process {
  host @0 :Text;
  pid @1 :UInt32;
  # Wall-clock time at which the process started (from /proc/self/stat), in ns since the Unix epoch.
  startWallNs @2 :Int64;
  # Global rank and world size as the launcher set them; -1 when no variable named one.
  globalRank @3 :Int32 = -1;
  worldSize @4 :Int32 = -1;
  localRank @5 :Int32 = -1;
  # Which environment variable the rank came from ("NCCLFR_RANK", "RANK", "SLURM_PROCID", ...).
  rankSource @6 :Text;
  jobId @7 :Text;
  jobIdSource @8 :Text;
  # NCCL_VERSION_CODE of the loaded libnccl (22809 for 2.28.9); 0 when unknown.
  ncclVersion @9 :Int32;
  # cuDriverGetVersion(), e.g. 13000; 0 when no CUDA driver was found.
  cudaDriverVersion @10 :Int32;
  # ncclfr's version, e.g. "0.1.0".
  recorderVersion @11 :Text;
  # The two clocks read back to back at dump time.
  clock @12 :ClockBase;
  # /proc/self/cmdline with NULs turned into spaces, truncated to 4 KiB.
  cmdline @13 :Text;
  # What the recorder measured (NCCLFR_TIMING): it tells the analyzer whether a missing start time
  # means "not started" or "not measured".
  timing @14 :TimingMode;
  # Ring capacity in entries (NCCLFR_BUFFER).
  ringCapacity @15 :UInt32;
  # Loaded modules, for offline symbolization of Stack.frames (only when stacks were recorded).
  modules @16 :List(Module);
  # True when the process was a sim/ job (libcudart/libnccl stand-ins), so a report can say so.
  simulated @17 :Bool;
}

struct ClockBase {
  wallNs @0 :Int64;   # CLOCK_REALTIME
  monoNs @1 :Int64;   # CLOCK_MONOTONIC, read right after wallNs
}

struct Module {
  path @0 :Text;
  base @1 :UInt64;
  buildId @2 :Text;   # hex of the GNU build-id note, "" if none
}

enum TimingMode {
  full @0;       # CUDA events before and after each launch: start and end known
  endOnly @1;    # an event after each launch: end known, start never recorded
  hostOnly @2;   # no CUDA events: completion is not known from the GPU
}

struct DumpInfo {
  reason @0 :DumpReason;
  # Free text for people: the signal's name, the NCCL error string, the stalled call, ...
  detail @1 :Text;
  wallNs @2 :Int64;
  monoNs @3 :Int64;
  # The incident this dump belongs to: every rank's dump for one hang carries the same id, and a
  # later hang of the same job gets a new one. Ids sort in time order (they start with the UTC time
  # of the first detection, "20261121T203400.123Z-r17").
  incidentId @4 :Text;
  # Wall-clock time at which the incident was first detected, by any rank.
  incidentWallNs @5 :Int64;
  # Global rank whose detection started the incident (-1 when unknown, e.g. a person's trigger).
  triggerRank @6 :Int32 = -1;
  # True for a dump written by `ncclfr salvage` from the ring of a process that was no longer alive
  # (reason = salvaged); false when the process was alive (hung) at salvage time.
  processDied @7 :Bool;
  # Host and pid of the process that wrote this file when that is not the recorded process itself
  # (salvage); 0/"" otherwise.
  writerHost @8 :Text;
  writerPid @9 :UInt32;
  # Ring accounting: calls ever appended, calls evicted by wrap-around, and entries found torn
  # (half-written when the process stopped) and therefore left out.
  totalEntries @10 :UInt64;
  evictedEntries @11 :UInt64;
  tornEntries @12 :UInt64;
  # Ring position of the newest evicted entry (-1 when nothing was evicted), PyTorch's "last dropped
  # record": every entry of this dump is newer.
  lastEvictedIndex @13 :Int64 = -1;
  # (1.2) The recorder's stall timeout (NCCLFR_TIMEOUT) in ns when this dump was written, so a
  # reader can judge how long a wait is too long for this job. 0 = not known: dumps older than 1.2,
  # and salvaged rings, whose shared-memory header does not hold it.
  timeoutNs @14 :Int64;
}

enum DumpReason {
  unknown @0;
  stall @1;          # a call stayed pending longer than NCCLFR_TIMEOUT
  ncclError @2;      # ncclCommGetAsyncError (or a call's return code) reported an error
  abort @3;          # the application called ncclCommAbort or ncclCommRevoke
  signal @4;         # SIGTERM or NCCLFR_DUMP_SIGNAL
  peerRequest @5;    # another rank of the job dumped and asked everyone to
  onDemand @6;       # a person ran `ncclfr trigger`
  exit @7;           # NCCLFR_DUMP_ON_EXIT at exit or at the last communicator's destruction
  salvaged @8;       # `ncclfr salvage` turned a left-over shared-memory ring into this dump
}

struct Comm {
  # NCCL's own commHash: a hash of the ncclUniqueId for a new communicator, of (parent hash, split
  # count, color) for a split. Equal on every rank of the communicator.
  id @0 :UInt64;
  parentId @1 :UInt64;      # 0 for a communicator not derived from another
  # ncclCommSplit's color and key; ncclCommShrink has no color (splitColor = -1).
  splitColor @2 :Int32 = -1;
  splitKey @3 :Int32 = -1;
  rank @4 :Int32;
  size @5 :Int32;
  cudaDevice @6 :Int32 = -1;
  createdMonoNs @7 :Int64;
  # Host time from the init call's entry to the communicator being usable; 0 while still initializing.
  initDurationNs @8 :Int64;
  state @9 :CommState;
  # The last error ncclCommGetAsyncError (or a failed call) reported, as ncclResult_t; 0 = ncclSuccess.
  lastAsyncError @10 :Int32;
  lastAsyncErrorMonoNs @11 :Int64;
  # Exact whatever the ring evicted: the highest collective sequence number enqueued, started on the
  # GPU, completed on the GPU. -1 = none. Started/completed stay -1 in timing modes that cannot see
  # them (see Process.timing).
  lastEnqueuedSeq @12 :Int64 = -1;
  lastStartedSeq @13 :Int64 = -1;
  lastCompletedSeq @14 :Int64 = -1;
  # Calls of this communicator that the ring no longer holds.
  evictedEntries @15 :UInt64;
  # Calls ever recorded for this communicator (collectives and point-to-point).
  totalEntries @16 :UInt64;
  blocking @17 :Bool = true;
  name @18 :Text;           # config.commName, if the application set one
  createdBy @19 :CommOrigin;
  # Exact per-peer point-to-point counters (same meaning as the collective ones), one per peer and
  # direction that this rank ever used.
  p2p @20 :List(P2PCounter);
  destroyedMonoNs @21 :Int64;
}

enum CommState {
  initializing @0;  # init called, not finished (non-blocking communicators)
  live @1;
  finalized @2;
  destroyed @3;
  aborted @4;
  revoked @5;
  initFailed @6;
}

enum CommOrigin {
  unknown @0;
  initRank @1;
  initRankConfig @2;
  initAll @3;
  initRankScalable @4;
  split @5;
  shrink @6;
}

struct P2PCounter {
  peer @0 :Int32;
  send @1 :Bool;            # true: this rank sends to peer; false: receives from peer
  lastEnqueuedSeq @2 :Int64 = -1;
  lastStartedSeq @3 :Int64 = -1;
  lastCompletedSeq @4 :Int64 = -1;
}

struct Entry {
  # Index into Dump.comms.
  comm @0 :UInt32;
  op @1 :Op;
  state @2 :EntryState;
  dtype @3 :DataType;
  redOp @4 :RedOp;
  # Root for broadcast/reduce/gather/scatter, peer for send/recv, -1 otherwise.
  root @5 :Int32 = -1;
  # Collective sequence number: counts every collective of the communicator in call order (PyTorch
  # FR's collective_seq_id). For send/recv it is the number of the last collective issued before
  # (-1 if none), which places point-to-point traffic between collectives.
  seq @6 :Int64 = -1;
  # Send/recv only: counts per (communicator, peer, direction), so the n-th send from A to B matches
  # the n-th receive on B from A. -1 for collectives.
  p2pSeq @7 :Int64 = -1;
  # NCCL's own view (RAS, profiler): counts per collective type. The n-th allReduce has opSeq n.
  opSeq @8 :UInt32;
  # Calls between one outermost ncclGroupStart/ncclGroupEnd share a non-zero group id; 0 = no group.
  groupId @9 :UInt32;
  # Elements (NCCL's count argument).
  count @10 :UInt64;
  # cudaStream_t as a number (0 is the legacy default stream).
  stream @11 :UInt64;
  # Host time the application called NCCL.
  enqueueMonoNs @12 :Int64;
  # GPU time the operation started and ended on its stream, converted to host monotonic ns; 0 = not
  # known (not yet, or not measured: see Process.timing).
  startMonoNs @13 :Int64;
  endMonoNs @14 :Int64;
  # The thread that made the call (gettid()).
  threadId @15 :UInt32;
  # What the NCCL call returned (ncclResult_t); 7 (ncclInProgress) is normal for non-blocking comms.
  result @16 :Int32;
  # Index into Dump.stacks, -1 = no stack recorded.
  stackIndex @17 :Int32 = -1;
  # Host time the NCCL call took to return (enqueue cost, or the whole call for blocking ops).
  callDurationNs @18 :UInt32;
}

enum Op {
  unknown @0;
  allReduce @1;
  broadcast @2;      # ncclBroadcast and ncclBcast
  reduce @3;
  allGather @4;
  reduceScatter @5;
  allToAll @6;
  gather @7;
  scatter @8;
  send @9;
  recv @10;
}

enum EntryState {
  scheduled @0;      # enqueued by the host, not started on the GPU (or start not measurable)
  started @1;        # the GPU began it, it has not finished
  completed @2;
  error @3;          # the call returned an error, or its communicator failed while it was pending
  captured @4;       # issued during CUDA-graph capture: it runs whenever the graph is launched
  # (1.1) Issued, but the recorder could attach no GPU events to it although Process.timing asked
  # for them (event pool exhausted, too many contexts, a driver error): its start and end stay
  # unknown whatever the GPU does, so "not started" must not be read from it.
  untracked @5;
}

# ncclDataType_t, in NCCL's numeric order.
enum DataType {
  int8 @0;
  uint8 @1;
  int32 @2;
  uint32 @3;
  int64 @4;
  uint64 @5;
  float16 @6;
  float32 @7;
  float64 @8;
  bfloat16 @9;
  float8e4m3 @10;
  float8e5m2 @11;
}

# ncclRedOp_t, in NCCL's numeric order; `custom` stands for any op made by ncclRedOpCreatePreMulSum.
enum RedOp {
  sum @0;
  prod @1;
  max @2;
  min @3;
  avg @4;
  custom @5;
}

struct Stack {
  frames @0 :List(UInt64);   # return addresses, innermost first
  symbols @1 :List(Text);    # optional, one per frame when the recorder could name them cheaply
}
