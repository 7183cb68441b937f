# The recorder's hot-path overhead: bench/recorder_overhead.cc over a "null" NCCL that returns at
# once (bench/recorder_null_nccl.cc), with and without libncclfr.so in front of it.
if(NOT TARGET ncclfr_preload)
  return()
endif()
add_library(ncclfr_bench_null_nccl SHARED "${CMAKE_CURRENT_LIST_DIR}/recorder_null_nccl.cc")
set_target_properties(ncclfr_bench_null_nccl PROPERTIES OUTPUT_NAME nccl SOVERSION 2
                      LIBRARY_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/null-nccl")
target_link_libraries(ncclfr_bench_null_nccl PRIVATE ncclfr_cuda_headers ncclfr_warnings)

add_executable(recorder_overhead "${CMAKE_CURRENT_LIST_DIR}/recorder_overhead.cc")
target_link_libraries(recorder_overhead PRIVATE ncclfr_bench_null_nccl ncclfr_cuda_headers benchmark::benchmark
                      Threads::Threads ncclfr_warnings)
target_compile_definitions(recorder_overhead PRIVATE NCCLFR_BENCH_RECORDER_LIB="$<TARGET_FILE:ncclfr_preload>")
add_dependencies(recorder_overhead ncclfr_preload)
set_target_properties(recorder_overhead PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
