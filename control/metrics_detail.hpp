// SPDX-License-Identifier: Apache-2.0
// What the exporter's families share (control/metrics.cpp, the fleet's in
// control/metrics_fleet.cpp, the adaptive boundary's in
// control/metrics_adaptive.cpp): prometheus-cpp's types and the two builders.
#pragma once

#include <prometheus/metric_family.h>

#include <initializer_list>
#include <utility>
#include <vector>

#include "control/metrics.hpp"

namespace sluice::metrics_detail {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

inline MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

inline void add(MetricFamily& f, double value, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

// One unlabelled gauge family per {name, help, value}.
struct Gauge {
  const char* name;
  const char* help;
  double value;
};
inline void add_gauges(std::initializer_list<Gauge> gauges, std::vector<MetricFamily>* out) {
  for (const Gauge& g : gauges) {
    MetricFamily f = family(g.name, g.help, MetricType::Gauge);
    add(f, g.value);
    out->push_back(std::move(f));
  }
}

// The sluice_fleet_* families of a fleet member (control/metrics_fleet.cpp).
void fleet_families(const FleetFigures& f, std::vector<MetricFamily>* out);

// The sluice_adaptive_* families, and sluice_backend_* from the dataplane's
// backend signal when it was read (control/metrics_adaptive.cpp).
void adaptive_families(const AdaptiveFigures& a, const sl_backend_signal* sig,
                       std::vector<MetricFamily>* out);

}  // namespace sluice::metrics_detail
