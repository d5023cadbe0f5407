// SPDX-License-Identifier: Apache-2.0
// The --listen address of sluice-backend: "A.B.C.D:PORT" or "[V6]:PORT".
#pragma once

#include <sys/socket.h>

#include <string>

namespace sluice {

// Parses "A.B.C.D:PORT" or "[V6]:PORT" (numeric hosts only: a lab tool
// should not depend on DNS).
bool parse_listen(const std::string& listen, sockaddr_storage* addr, socklen_t* len,
                  std::string* error);

}  // namespace sluice
