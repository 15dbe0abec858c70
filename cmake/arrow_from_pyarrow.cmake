# Apache Arrow C++ (Arrow + Parquet) from the pyarrow wheel in the project's .venv, the way
# LibTorch comes from the torch wheel: the wheel ships the headers (pyarrow.get_include()) and
# libarrow.so.<SO> / libparquet.so.<SO> beside pyarrow/__init__.py. No system Arrow, no
# arrow-config.cmake (the wheel has none). Defines, when found:
#   R1KIT_ARROW_FOUND   TRUE
#   r1kit::arrow        imported shared library (headers as SYSTEM: Arrow's own warnings
#   r1kit::parquet      are not ours), linked by full path; CMake puts their folder on the
#                       build RPATH, so binaries run without LD_LIBRARY_PATH.
# ABI: the wheel's libraries export std::__cxx11 strings (nm -DC libarrow.so.2600 | grep
# __cxx11), i.e. the new libstdc++ ABI, as do torch 2.11's wheels and g++'s default; a build
# forced to -D_GLIBCXX_USE_CXX11_ABI=0 (an old LibTorch) could not link them, so it goes
# without Arrow. The wheel needs GLIBCXX_3.4.22 at most (g++ 12's libstdc++ has 3.4.30).

option(R1KIT_WITH_ARROW "Read Parquet through pyarrow's Arrow C++ when .venv has pyarrow" ON)
set(R1KIT_ARROW_FOUND FALSE)

if(R1KIT_WITH_ARROW)
  set(_r1kit_py "${PROJECT_SOURCE_DIR}/.venv/bin/python3")
  set(_r1kit_arrow_why "")
  if(NOT EXISTS "${_r1kit_py}")
    set(_r1kit_arrow_why "no ${_r1kit_py}")
  elseif(CMAKE_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    set(_r1kit_arrow_why "this build uses the old libstdc++ ABI; pyarrow's libraries use the new one")
  else()
    # One line out: include dir;library dir;SO version.
    execute_process(
      COMMAND "${_r1kit_py}" -c
        "import pyarrow as pa; print(';'.join([pa.get_include(), pa.get_library_dirs()[0], pa.cpp_build_info.so_version]), end='')"
      OUTPUT_VARIABLE _r1kit_arrow_info RESULT_VARIABLE _r1kit_arrow_rc ERROR_QUIET)
    if(NOT _r1kit_arrow_rc EQUAL 0)
      set(_r1kit_arrow_why "pyarrow is not installed in .venv")
    else()
      list(GET _r1kit_arrow_info 0 _r1kit_arrow_inc)
      list(GET _r1kit_arrow_info 1 _r1kit_arrow_libdir)
      list(GET _r1kit_arrow_info 2 _r1kit_arrow_so)
      set(_r1kit_libarrow "${_r1kit_arrow_libdir}/libarrow.so.${_r1kit_arrow_so}")
      set(_r1kit_libparquet "${_r1kit_arrow_libdir}/libparquet.so.${_r1kit_arrow_so}")
      if(NOT EXISTS "${_r1kit_arrow_inc}/parquet/arrow/reader.h" OR NOT EXISTS "${_r1kit_libarrow}"
         OR NOT EXISTS "${_r1kit_libparquet}")
        set(_r1kit_arrow_why "pyarrow in .venv lacks parquet/arrow/reader.h, ${_r1kit_libarrow} or ${_r1kit_libparquet}")
      endif()
    endif()
  endif()

  if(_r1kit_arrow_why STREQUAL "")
    add_library(r1kit::arrow SHARED IMPORTED)
    set_target_properties(r1kit::arrow PROPERTIES
      IMPORTED_LOCATION "${_r1kit_libarrow}"
      IMPORTED_SONAME "libarrow.so.${_r1kit_arrow_so}"
      INTERFACE_INCLUDE_DIRECTORIES "${_r1kit_arrow_inc}")
    add_library(r1kit::parquet SHARED IMPORTED)
    set_target_properties(r1kit::parquet PROPERTIES
      IMPORTED_LOCATION "${_r1kit_libparquet}"
      IMPORTED_SONAME "libparquet.so.${_r1kit_arrow_so}"
      INTERFACE_LINK_LIBRARIES r1kit::arrow)
    set(R1KIT_ARROW_FOUND TRUE)
    message(STATUS "r1kit Parquet: Arrow C++ from pyarrow (${_r1kit_libparquet})")
  else()
    message(STATUS "r1kit Parquet: off, ${_r1kit_arrow_why} (Parquet files then error; JSONL works)")
  endif()
else()
  message(STATUS "r1kit Parquet: off (R1KIT_WITH_ARROW=OFF)")
endif()
