# Issue 7's suite (bench/run_all.sh runs it all):
#   dump_latency          dump latency versus ring size, on the recorder's real dump path (Google
#                         Benchmark, over the null NCCL of recorder_bench.cmake)
#   ncclfr_timing_bench   per-call cost of each NCCLFR_TIMING mode over a real (or sim/) CUDA + NCCL;
#                         built like an example program, so scripts/gpu-validate.sh can carry it to a
#                         GPU machine: no Google Benchmark, no RPATH
# The sim/ job benchmark (bench/sim_job_overhead.sh) needs no build of its own.
set(NCCLFR_DUMP_BENCH_DIR "${CMAKE_CURRENT_LIST_DIR}")

if(NCCLFR_REAL_CUDART AND NCCLFR_REAL_NCCL)
  add_executable(ncclfr_timing_bench "${NCCLFR_DUMP_BENCH_DIR}/timing_modes.cc")
  target_link_libraries(ncclfr_timing_bench PRIVATE ncclfr_cuda_headers "${NCCLFR_REAL_CUDART}" "${NCCLFR_REAL_NCCL}"
                        ${CMAKE_DL_LIBS} ncclfr_warnings)
  set_target_properties(ncclfr_timing_bench PROPERTIES SKIP_BUILD_RPATH ON
                        RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
endif()

# The null NCCL is defined in a file included after this one (the parts are read in name order):
# define dump_latency once every part is read.
function(ncclfr_add_dump_latency_bench)
  if(NOT TARGET ncclfr_bench_null_nccl OR NOT TARGET ncclfr_preload OR NOT TARGET ncclfr_recorder_core)
    message(STATUS "ncclfr: dump_latency not built: it needs the recorder and bench/recorder_null_nccl.cc")
    return()
  endif()
  add_executable(dump_latency "${NCCLFR_DUMP_BENCH_DIR}/dump_latency.cc")
  target_link_libraries(dump_latency PRIVATE ncclfr_bench_null_nccl ncclfr_recorder_core ncclfr_cuda_headers
                        benchmark::benchmark Threads::Threads ${CMAKE_DL_LIBS} ncclfr_warnings)
  target_compile_definitions(dump_latency PRIVATE NCCLFR_BENCH_RECORDER_LIB="$<TARGET_FILE:ncclfr_preload>")
  add_dependencies(dump_latency ncclfr_preload)
  set_target_properties(dump_latency PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
endfunction()
cmake_language(DEFER CALL ncclfr_add_dump_latency_bench)
