// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/table_sets.hpp"

#include <bpf/bpf.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf/shared_state.h"
#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/set_shape.hpp"

namespace sluice::xdp_sets {

uint32_t source_sets(uint64_t source_table_size) {
  return sets_for(source_table_size, SL_SOURCE_WAYS);
}

uint64_t source_ways(uint64_t source_table_size) {
  return uint64_t{source_sets(source_table_size)} * SL_SOURCE_WAYS;
}

uint32_t flow_sets(uint64_t flow_table_size) {
  return sets_for(flow_partition_size(flow_table_size), SL_FLOW_WAYS);
}

uint64_t flow_ways(uint64_t flow_table_size) {
  return uint64_t{flow_sets(flow_table_size)} * SL_FLOW_WAYS * SL_PRIORITIES;
}

bool salt(const std::string& pin_dir, uint64_t* out, std::string* error) {
  *out = 0;
  const uint32_t key = 0;
  if (!pin_dir.empty()) {
    const int fd = bpf_obj_get((pin_dir + "/sl_table_salt").c_str());
    if (fd >= 0) {
      const int rc = bpf_map_lookup_elem(fd, &key, out);
      const int err = errno;
      close(fd);
      if (rc != 0) {
        *error = "cannot read the tables' salt in " + pin_dir + ": " + std::strerror(err);
        return false;
      }
    }
  }
  while (*out == 0)
    if (::getrandom(out, sizeof(*out), 0) != static_cast<ssize_t>(sizeof(*out))) {
      *error = std::string("getrandom (the tables' salt): ") + std::strerror(errno);
      return false;
    }
  return true;
}

bool keep_salt(int fd, uint64_t salt, std::string* error) {
  const uint32_t key = 0;
  if (bpf_map_update_elem(fd, &key, &salt, BPF_ANY) == 0) return true;
  *error = std::string("cannot keep the tables' salt: ") + std::strerror(errno);
  return false;
}

}  // namespace sluice::xdp_sets
