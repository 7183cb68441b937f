# A stand-in for a future minor version of include/ncclfr/dump.capnp: the same layout with a field
# appended to Dump and to Entry, as the evolution rule allows. dump_file_test writes with it and reads
# with today's schema to prove old readers keep working.
@0xd1f0b2a3c4e5f607;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ncclfr::testschema");

struct DumpNext {
  process @0 :AnyPointer;
  info @1 :AnyPointer;
  comms @2 :AnyPointer;
  entries @3 :List(EntryNext);
  stacks @4 :AnyPointer;
  addedInNextMinor @5 :Text;
}

struct EntryNext {
  comm @0 :UInt32;
  op @1 :UInt16;
  state @2 :UInt16;
  dtype @3 :UInt16;
  redOp @4 :UInt16;
  root @5 :Int32 = -1;
  seq @6 :Int64 = -1;
  p2pSeq @7 :Int64 = -1;
  opSeq @8 :UInt32;
  groupId @9 :UInt32;
  count @10 :UInt64;
  stream @11 :UInt64;
  enqueueMonoNs @12 :Int64;
  startMonoNs @13 :Int64;
  endMonoNs @14 :Int64;
  threadId @15 :UInt32;
  result @16 :Int32;
  stackIndex @17 :Int32 = -1;
  callDurationNs @18 :UInt32;
  addedInNextMinor @19 :UInt64;
}
