// Loading dumps: finding the files, reading them in parallel into the model (model.h), choosing one
// job and one incident, and merging the dumps of a process seen twice.
//
//   auto files = findDumpFiles(paths, &problems);
//   auto loaded = loadDumps(files, {});
//   Job job; std::string error;
//   if (!selectJob(std::move(loaded), {}, &job, &error)) { print error; exit 2; }
//   Verdict v = analyze(job);                                  // analyze.h
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ncclfr/analysis/model.h"

namespace ncclfr::analysis {

// Expands files and folders (recursively, following no symlinked folders) into the dump files they
// hold, sorted. Files given by name are taken whatever they are called; inside folders only names
// ending in ".ncclfr" count. A path that does not exist becomes a Problem.
std::vector<std::string> findDumpFiles(const std::vector<std::string>& paths, std::vector<Problem>* problems);

struct LoadOptions {
  // Reader threads (the files are independent). 0 = hardware concurrency, at most 2 by default.
  unsigned threads = 2;
  // Called now and then from one reader thread with (files done, files total); may be empty.
  std::function<void(size_t, size_t)> progress;
};

struct LoadedDumps {
  std::vector<ProcessDump> dumps;  // one per readable file, in file order
  std::vector<Problem> problems;   // one per unreadable file
};

// Reads every file (mmap, zero-copy, touching counters and only the entries the model keeps).
// Never throws for bad input: a damaged file becomes one Problem and the rest is read.
LoadedDumps loadDumps(const std::vector<std::string>& files, const LoadOptions& options);

// Reads one dump from memory (tests, fuzzing). Returns false with *problem set for a bad one.
bool loadDumpBytes(const void* data, size_t size, const std::string& name, ProcessDump* out, Problem* problem);

struct SelectOptions {
  std::string job;       // required when the dumps hold several jobs
  // Default: see selectJob.
  std::string incident;
};

// One job at one incident, with each process once.
struct Job {
  std::string jobId;
  std::string incidentId;
  std::vector<std::string> otherIncidents;  // of the same job, not analyzed (sorted, oldest first)
  // Sorted by global rank, then host and pid for processes without one.
  std::vector<ProcessDump> processes;
  // Files that could not be read at all: their ranks are lost, so a verdict is "incomplete".
  std::vector<Problem> unreadable;
  // Things a person should know about the input (merges, dumps set aside, guesses made).
  std::vector<std::string> notes;
  // The world size the processes report (the largest), or -1.
  int32_t worldSize = -1;
};

// Several jobs and no SelectOptions::job: false, *error lists them ("dumps of 2 jobs: a (8 dumps),
// b (4 dumps); pick one with --job"). An unknown job or incident: false, *error says which exist.
//
// Incidents: SelectOptions::incident picks exactly one. By default incidents detected within 30 s of
// each other form one burst (a cascade: one rank's error makes its peers detect incidents of their
// own; a job killed after a hang makes ranks dump again on SIGTERM), and the latest burst that at
// least half as many dumps belong to as to the largest burst is analyzed, each process by its dump
// from the burst's earliest incident. Incidents further apart are never mixed. A salvaged ring
// (reason salvaged) is no incident of its own: it joins the analyzed incident.
//
// The same process (host, pid, rank) seen twice is merged: the more complete dump (more calls
// recorded, then more progress, then later) is kept, and a salvaged copy's "process died" is kept.
bool selectJob(LoadedDumps&& loaded, const SelectOptions& options, Job* job, std::string* error);

}  // namespace ncclfr::analysis
