# Fuzzes one target for a bounded time: cmake -DFUZZER=binary -DSEEDS=seed-folder
# -DWORK=working-folder -DSECONDS=n -P run_fuzzer.cmake
# The working corpus starts as a copy of the seeds (libFuzzer adds the inputs that
# reach new code to its first folder, which must not be tests/). A crash is written
# to WORK/crashes/ and fails the test; libFuzzer's final stats (number of executions)
# end the output.
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake needs -D${var}=...")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/crashes)
file(GLOB seed_files ${SEEDS}/*)
file(COPY ${seed_files} DESTINATION ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -print_final_stats=1 -timeout=30 -rss_limit_mb=4096
          -artifact_prefix=${WORK}/crashes/ ${WORK}/corpus
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "fuzzing ${FUZZER} failed (${result}): the crashing input is in ${WORK}/crashes/")
endif()
