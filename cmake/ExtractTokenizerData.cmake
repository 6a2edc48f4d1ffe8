# Unpacks the tokenizer's rank tables from the repository (data/tokenizer) into a build
# folder and checks each file against data/tokenizer/SHA256SUMS; any mismatch stops the
# build. Run by src/tokens/CMakeLists.txt as: cmake -DARCHIVE=... -DSUMS=... -DOUT=... -P
foreach(var ARCHIVE SUMS OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "ExtractTokenizerData.cmake: -D${var}= is required")
  endif()
endforeach()

file(MAKE_DIRECTORY "${OUT}")
file(ARCHIVE_EXTRACT INPUT "${ARCHIVE}" DESTINATION "${OUT}")
file(STRINGS "${SUMS}" lines)
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^([0-9a-f]+)  (.+)$")
    message(FATAL_ERROR "${SUMS}: malformed line '${line}'")
  endif()
  set(want "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(NOT EXISTS "${OUT}/${name}")
    message(FATAL_ERROR "${ARCHIVE} lacks ${name}")
  endif()
  file(SHA256 "${OUT}/${name}" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "${OUT}/${name}: sha256 ${got}, expected ${want} (${SUMS}). "
                        "Refusing to build with different tokenizer data.")
  endif()
  # The archive stores mtime 0: give the files the build's time so that they are newer
  # than the archive and the build does not unpack them again on every run.
  file(TOUCH "${OUT}/${name}")
endforeach()
