# CUDA backend: language, target GPUs, toolkit libraries and NCCL. Included from the top-level
# CMakeLists.txt only when LATTICE_WITH_CUDA is ON; the kernels target lives in kernels/cuda/.
#
# Targets: sm_80 (A100) and sm_90a (H100/H200, arch-specific features) as real cubins only, no PTX:
# two cubins per kernel keep the CI compile short. Never link CUDA::cuda_driver (libcuda): a binary that
# does will not even start on a machine without a driver, and CI builds and skips tests on such machines.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90a-real)
endif()
enable_language(CUDA)
# C++20 like the rest (engine/core/error.h uses __VA_OPT__ and [[unlikely]]). CMake 3.25 does not know the
# flag of nvcc's CUDA20 dialect (nvcc >= 12 has it), so it is named here.
set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

find_package(CUDAToolkit 12.0 REQUIRED)

# NCCL ships with some toolkits (/usr/local/cuda) and as a system package on others.
find_path(LATTICE_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{NCCL_HOME}/include)
find_library(LATTICE_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} $ENV{NCCL_HOME}/lib)
if(LATTICE_NCCL_INCLUDE_DIR AND LATTICE_NCCL_LIBRARY)
  set(LATTICE_NCCL_FOUND ON)
  add_library(lattice_nccl INTERFACE IMPORTED)
  target_include_directories(lattice_nccl INTERFACE ${LATTICE_NCCL_INCLUDE_DIR})
  target_link_libraries(lattice_nccl INTERFACE ${LATTICE_NCCL_LIBRARY})
else()
  set(LATTICE_NCCL_FOUND OFF)
endif()

message(STATUS "Lattice CUDA: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, "
               "NCCL ${LATTICE_NCCL_FOUND} (${LATTICE_NCCL_LIBRARY})")
