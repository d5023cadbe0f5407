// SPDX-License-Identifier: Apache-2.0
// Text labels of verdicts and reasons, from the one X-macro list in
// dataplane/model/reasons.h: counters, replay output, status and Prometheus
// all name them the same way, and a new reason needs no edit here.
#pragma once

#include <cstdint>

#include "dataplane/model/reasons.h"

namespace sluice {

inline const char* verdict_label(uint32_t verdict) {
  switch (verdict) {
#define SL_VERDICT_CASE(name, num, label) \
  case num:                               \
    return label;
    SL_VERDICTS(SL_VERDICT_CASE)
#undef SL_VERDICT_CASE
  }
  return "unknown";
}

inline const char* reason_label(uint32_t reason) {
  switch (reason) {
#define SL_REASON_CASE(name, num, label, doc) \
  case num:                                   \
    return label;
    SL_REASONS(SL_REASON_CASE)
#undef SL_REASON_CASE
  }
  return "unknown";
}

}  // namespace sluice
