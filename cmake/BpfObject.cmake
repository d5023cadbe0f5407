# sluice_bpf_object(NAME SOURCE)
# Compiles SOURCE with clang -target bpf into NAME.bpf.o and generates the
# libbpf skeleton NAME.skel.h with bpftool (at build time, never committed).
# Header dependencies are tracked through a depfile. Defines the INTERFACE
# target NAME_skel whose include directory holds the skeleton.
find_program(SLUICE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(SLUICE_BPF_CLANG NAMES clang clang-14 REQUIRED)

function(sluice_bpf_object name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(MAKE_DIRECTORY ${out_dir})
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SLUICE_BPF_CLANG} -target bpf -O2 -g -Wall -Werror -std=gnu11
            -D__TARGET_ARCH_x86
            -I${PROJECT_SOURCE_DIR}/dataplane/model -I${PROJECT_SOURCE_DIR}/bpf
            -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -MD -MF ${obj}.d
            -c ${source} -o ${obj}
    DEPENDS ${source}
    DEPFILE ${obj}.d
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${SLUICE_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_bpf DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_bpf)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
  set(${name}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
