# sluice_bpf_object(NAME SOURCE [SKELETON NAME2] [DEFINES D...])
# Compiles SOURCE with clang -target bpf into bpf/NAME/SKELETON.bpf.o and
# generates the libbpf skeleton SKELETON.skel.h with bpftool (at build time,
# never committed); SKELETON defaults to NAME. Header dependencies are tracked
# through a depfile. Defines the INTERFACE target NAME_skel whose include
# directory holds the skeleton, and NAME_BPF_OBJECT (the object's path) in
# the caller's scope. DEFINES are passed as -D (tests build a second layout).
find_program(SLUICE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(SLUICE_BPF_CLANG NAMES clang clang-14 REQUIRED)

function(sluice_bpf_object name source)
  cmake_parse_arguments(arg "" "SKELETON" "DEFINES" ${ARGN})
  set(skel_name ${name})
  if(arg_SKELETON)
    set(skel_name ${arg_SKELETON})
  endif()
  set(defines)
  foreach(d IN LISTS arg_DEFINES)
    list(APPEND defines -D${d})
  endforeach()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name})
  set(obj ${out_dir}/${skel_name}.bpf.o)
  set(skel ${out_dir}/${skel_name}.skel.h)
  file(MAKE_DIRECTORY ${out_dir})
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SLUICE_BPF_CLANG} -target bpf -O2 -g -Wall -Werror -std=gnu11
            -D__TARGET_ARCH_x86 ${defines}
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
    COMMAND ${SLUICE_BPFTOOL} gen skeleton ${obj} name ${skel_name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_bpf DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_bpf)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
  set(${name}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
