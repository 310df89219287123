# How netvigil's own targets are declared: the warnings they compile with,
# one library per folder (netvigil_library), a library of named files for a
# pure part split from a folder that needs gRPC or PostgreSQL
# (netvigil_library_files), and the check that the pure libraries stay pure
# (netvigil_check_pure).

# Warnings: every target this tree defines compiles with them; the generated
# protobuf code turns them off (proto/CMakeLists.txt) and its headers are
# SYSTEM includes, so only our own code is held to them. NETVIGIL_WERROR
# (on in CI: tests/run.sh, .ci/run) makes them errors through CMake's
# COMPILE_WARNING_AS_ERROR; `cmake --compile-no-warning-as-error` overrides
# it for one local build.
#
# -Wno-unused-parameter: an override or a callback that ignores an argument
# keeps its name, which documents the interface (Google style).
# -Wthread-safety (clang only): checks every ABSL_GUARDED_BY /
# ABSL_EXCLUSIVE_LOCKS_REQUIRED annotation against the absl::Mutex locking;
# gcc ignores the annotations.
set(NETVIGIL_WARNINGS -Wall -Wextra -Wno-unused-parameter
  -Wnon-virtual-dtor -Wformat=2 -Wvla
  $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>)
add_compile_options(${NETVIGIL_WARNINGS})
set(CMAKE_COMPILE_WARNING_AS_ERROR ${NETVIGIL_WERROR})

# Every library says once where its includes are found: from the top of the
# tree, so an include reads "common/clock.h" wherever it is written. The
# targets that link it (binaries, tests) inherit that.
function(_netvigil_add_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;DEPS")
  if(arg_SOURCES)
    add_library(${name} STATIC ${arg_SOURCES})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} PUBLIC ${arg_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${arg_DEPS})
  endif()
endfunction()

# netvigil_library(NAME DIR DEPS... [EXCLUDE FILE...]): one library per
# folder, from every .cc in DIR except binaries (*_main.cc), tests (*_test.cc),
# fuzz harnesses (*_fuzz.cc) and the files EXCLUDE names (relative to DIR:
# a pure part that netvigil_library_files makes a library of its own).
# Globbing keeps the build files out of the way when a file is added.
function(netvigil_library name dir)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "EXCLUDE")
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "_(main|test|fuzz)\\.cc$")
  foreach(file ${arg_EXCLUDE})
    list(FIND srcs ${dir}/${file} found)
    if(found EQUAL -1)
      message(FATAL_ERROR "netvigil_library(${name}): EXCLUDE ${file}: "
        "no such file in ${dir}")
    endif()
    list(REMOVE_ITEM srcs ${dir}/${file})
  endforeach()
  _netvigil_add_library(${name} SOURCES ${srcs} DEPS ${arg_UNPARSED_ARGUMENTS})
endfunction()

# netvigil_library_files(NAME SOURCES FILE... DEPS DEP...): a library of the
# named files, for a pure part of a folder whose library needs gRPC or
# PostgreSQL (the folder's netvigil_library EXCLUDEs them and links this).
function(netvigil_library_files name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;DEPS")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "netvigil_library_files(${name}): no SOURCES")
  endif()
  _netvigil_add_library(${name} SOURCES ${arg_SOURCES} DEPS ${arg_DEPS})
endfunction()

# What a pure library must never link, directly or through another library.
set(NETVIGIL_IMPURE gRPC::grpc gRPC::grpc++ gRPC::grpc++_reflection
  PkgConfig::PQXX PkgConfig::PQ netvigil_proto_grpc netvigil_common_grpc)

# Collects into the global property netvigil_closure_<root> every library
# `target` links, transitively, and for each the library that linked it; generator expressions other than
# $<LINK_ONLY:x> are skipped (none of ours names gRPC or PostgreSQL in one).
function(_netvigil_walk root target parent)
  get_property(seen GLOBAL PROPERTY netvigil_closure_${root})
  if(target IN_LIST seen)
    return()
  endif()
  set_property(GLOBAL APPEND PROPERTY netvigil_closure_${root} ${target})
  set_property(GLOBAL PROPERTY netvigil_parent_${root}_${target} ${parent})
  if(NOT TARGET ${target})
    return()
  endif()
  get_target_property(type ${target} TYPE)
  set(links)
  get_target_property(iface ${target} INTERFACE_LINK_LIBRARIES)
  if(iface)
    list(APPEND links ${iface})
  endif()
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(imported ${target} IMPORTED)
    if(NOT imported)
      get_target_property(direct ${target} LINK_LIBRARIES)
      if(direct)
        list(APPEND links ${direct})
      endif()
    endif()
  endif()
  foreach(link ${links})
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" link "${link}")
    if(link MATCHES "^\\$<" OR link MATCHES "^-")
      continue()
    endif()
    _netvigil_walk(${root} ${link} ${target})
  endforeach()
endfunction()

# netvigil_check_pure(TARGET...): the pure libraries (messages, parsers,
# rules, validation, formatting) link neither gRPC nor PostgreSQL, so tests
# and fuzz harnesses link them whole. Checked twice: here, at configure time,
# over what each library declares it links (the error names the chain
# of links); and at build time by pure_link_<lib> (tests/CMakeLists.txt), a
# binary that links every object of the library with --whole-archive, so a
# file that calls gRPC or libpqxx without declaring it fails the link.
function(netvigil_check_pure)
  foreach(lib ${ARGN})
    if(NOT TARGET ${lib})
      message(FATAL_ERROR "netvigil_check_pure: no target ${lib}")
    endif()
    set_property(GLOBAL PROPERTY netvigil_closure_${lib})
    _netvigil_walk(${lib} ${lib} "")
    get_property(closure GLOBAL PROPERTY netvigil_closure_${lib})
    foreach(bad ${NETVIGIL_IMPURE})
      if(bad IN_LIST closure)
        set(chain ${bad})
        set(at ${bad})
        while(NOT at STREQUAL lib)
          get_property(at GLOBAL PROPERTY netvigil_parent_${lib}_${at})
          string(PREPEND chain "${at} -> ")
        endwhile()
        message(FATAL_ERROR "${lib} is meant to be pure but links ${bad}: "
          "${chain}. Move the code that needs it into a library of its own "
          "(netvigil_library EXCLUDE + netvigil_library_files).")
      endif()
    endforeach()
  endforeach()
endfunction()
