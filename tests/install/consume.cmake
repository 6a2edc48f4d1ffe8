# Installs BUILD_DIR into PREFIX, then builds EXAMPLES against it and runs them.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${PREFIX}" "${CONSUMER_DIR}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}")
foreach(must include/floodgate/tokens/estimate.hpp include/floodgate/engine/engine.hpp include/floodgate/engine/client.hpp
             include/floodgate/version.hpp lib/cmake/floodgate/floodgateConfig.cmake)
  if(NOT EXISTS "${PREFIX}/${must}")
    message(FATAL_ERROR "the install lacks ${must}")
  endif()
endforeach()
if(EXISTS "${PREFIX}/include/floodgate/sim")
  message(FATAL_ERROR "the simulator's headers were installed with the client library")
endif()
if(EXISTS "${PREFIX}/include/floodgate/audio_media" OR EXISTS "${PREFIX}/include/floodgate/audio/probe.hpp")
  message(FATAL_ERROR "the headers of floodgate::audio_media (FFmpeg, not installed) were installed")
endif()
# Every installed header includes only installed headers of floodgate.
file(GLOB_RECURSE installed_headers "${PREFIX}/include/floodgate/*.hpp")
foreach(header IN LISTS installed_headers)
  file(STRINGS "${header}" includes REGEX "^#include \"floodgate/")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" included "${line}")
    if(NOT EXISTS "${PREFIX}/include/${included}")
      message(FATAL_ERROR "the installed ${header} includes ${included}, which is not installed")
    endif()
  endforeach()
endforeach()
# Neither the simulator nor the gateway (Boost.Beast, OpenSSL) is in floodgate::floodgate.
file(GLOB_RECURSE server_libs "${PREFIX}/lib/libfloodgate_sim*" "${PREFIX}/lib/libfloodgate_gateway*")
file(GLOB targets_files "${PREFIX}/lib/cmake/floodgate/floodgateTargets*.cmake")
set(targets_text "")
foreach(f IN LISTS targets_files)
  file(READ "${f}" text)
  string(APPEND targets_text "${text}")
endforeach()
if(server_libs OR targets_text MATCHES "floodgate_sim|floodgate_gateway|Boost|OpenSSL")
  message(FATAL_ERROR "the installed package carries the simulator or the gateway: ${server_libs}")
endif()

run(${CMAKE_COMMAND} -S "${EXAMPLES}" -B "${CONSUMER_DIR}" -G "${GENERATOR}"
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${CONSUMER_DIR}")

# "Hello" in a user message: 3 (message) + 1 (role) + 1 (content) + 3 (priming) = 8.
run("${CONSUMER_DIR}/count_tokens"
    [[{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],"max_tokens":5}]])
if(NOT run_out STREQUAL "prompt_tokens=8 worst_case_tokens=13\n")
  message(FATAL_ERROR "count_tokens printed '${run_out}', expected prompt_tokens=8 worst_case_tokens=13")
endif()
set(tokens_out "${run_out}")

# 1,000 requests from memory through engine::Client, against the simulator.
run(bash "${CMAKE_CURRENT_LIST_DIR}/run_embed.sh" "${FLOODGATE_BIN}" "${CONSUMER_DIR}/embed" "${CONSUMER_DIR}/embed-run")
message(STATUS "installed package OK: ${tokens_out}${run_out}")
