# swlaunch for CMake projects: makes swlaunch the C/C++ compiler launcher when it is installed,
# and does nothing (quietly) when it is not, or when SWLAUNCH_DISABLE is set.
#
# Use it without touching the project (CMake 3.24 or later):
#   cmake -DCMAKE_PROJECT_TOP_LEVEL_INCLUDES=/usr/local/share/swlaunch/cmake/swlaunch.cmake ..
# or from a CMakeLists.txt, before the targets:
#   include(/usr/local/share/swlaunch/cmake/swlaunch.cmake OPTIONAL)
# A launcher the user already chose (CMAKE_<LANG>_COMPILER_LAUNCHER) is left alone.
if(SWLAUNCH_DISABLE OR DEFINED ENV{SWLAUNCH_DISABLE})
  return()
endif()
find_program(SWLAUNCH_PROGRAM swlaunch HINTS "${CMAKE_CURRENT_LIST_DIR}/../../../bin")
if(NOT SWLAUNCH_PROGRAM)
  return()
endif()
foreach(_swlaunch_lang C CXX OBJC OBJCXX)
  if(NOT CMAKE_${_swlaunch_lang}_COMPILER_LAUNCHER)
    set(CMAKE_${_swlaunch_lang}_COMPILER_LAUNCHER "${SWLAUNCH_PROGRAM}")
  endif()
endforeach()
unset(_swlaunch_lang)
