# Every dependency of sluice, in one place. All come from Debian packages that
# scripts/install-deps installs; nothing is vendored or downloaded at build time.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
pkg_check_modules(PCAP REQUIRED IMPORTED_TARGET libpcap)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)

if(SLUICE_BUILD_TESTS)
  find_package(GTest REQUIRED)
  find_package(benchmark REQUIRED)
endif()

# libFuzzer comes with clang (libclang-rt-14-dev); fuzz targets are built only
# when the C++ compiler is clang.
set(SLUICE_HAVE_LIBFUZZER OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(SLUICE_HAVE_LIBFUZZER ON)
endif()

find_program(SLUICE_CLANG NAMES clang clang-14)

if(SLUICE_WITH_XDP)
  pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET GLOBAL libbpf)
endif()

# Prometheus exporter: prometheus-cpp's metric model and text serializer;
# cpp-httplib serves /metrics (control/metrics.cpp says why not civetweb).
find_package(prometheus-cpp CONFIG REQUIRED)
