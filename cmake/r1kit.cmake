# Shared helpers: warnings, the one precompiled header for LibTorch targets, tests.

function(r1kit_warnings target)
  # -Wno-missing-field-initializers: GCC 12 flags C++20 designated initializers that leave
  # members to their default member initializers (`{.learning_rate = 1e-3}`), which is their
  # whole point here (option pieces with a stage's own defaults).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
endfunction()

# The LibTorch targets share ONE precompiled header (STYLE.md: compile time). The first
# torch target that calls this owns the PCH; every later one re-uses it (REUSE_FROM), so
# LibTorch's headers are parsed once per build, not once per target. Executables get an
# owner of their own: they compile with -fPIE, libraries with -fPIC, and GCC rejects a PCH
# made with the other flag (-Winvalid-pch) and silently parses everything again.
set(R1KIT_PCH_OWNER_LIB "" CACHE INTERNAL "")
set(R1KIT_PCH_OWNER_EXE "" CACHE INTERNAL "")
function(r1kit_torch_pch target)
  get_target_property(_type ${target} TYPE)
  set(_slot R1KIT_PCH_OWNER_LIB)
  if(_type STREQUAL "EXECUTABLE")
    set(_slot R1KIT_PCH_OWNER_EXE)
  endif()
  if("${${_slot}}" STREQUAL "")
    target_precompile_headers(${target} PRIVATE "${PROJECT_SOURCE_DIR}/cmake/torch_pch.h")
    set(${_slot} ${target} CACHE INTERNAL "")
  else()
    target_precompile_headers(${target} REUSE_FROM ${${_slot}})
  endif()
endfunction()

# r1kit_add_test(NAME name SOURCES a.cpp ... LIBS lib ... LABELS fast|slow|parity ... [GPU_CASES])
# GPU_CASES: the binary also holds CUDA cases, named *Cuda* (each starts with
# `if (!torch::cuda::is_available()) GTEST_SKIP();`). CTest labels are per entry, so they run
# as a second entry of the same binary, name_gpu, labelled gpu (reported as skipped when the
# cases skip: no CUDA device), and `name` runs all the others.
function(r1kit_add_test)
  cmake_parse_arguments(T "GPU_CASES" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    R1KIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    R1KIT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  r1kit_warnings(${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  if(NOT T_GPU_CASES)
    add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  else()
    add_test(NAME ${T_NAME} COMMAND ${T_NAME} --gtest_filter=-*Cuda* WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
    add_test(NAME ${T_NAME}_gpu COMMAND ${T_NAME} --gtest_filter=*Cuda* WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
    set_tests_properties(${T_NAME}_gpu PROPERTIES LABELS gpu TIMEOUT ${T_TIMEOUT}
                         SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
