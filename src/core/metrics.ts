/**
 * Metrics through prom-client, with one {@link Registry} per fabric or process, injected, so
 * tests never share global state. `registry.metrics()` renders the Prometheus text format.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** Creates an empty registry. */
export function createMetricsRegistry(): Registry {
  return new Registry();
}

/** Returns the counter named `name` in `registry`, creating it on first use. */
export function counter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[] = [],
): Counter {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Returns the gauge named `name` in `registry`, creating it on first use. */
export function gauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[] = [],
): Gauge {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Gauge) return existing;
  return new Gauge({ name, help, labelNames, registers: [registry] });
}

/** Returns the histogram named `name` in `registry`, creating it on first use. */
export function histogram(
  registry: Registry,
  name: string,
  help: string,
  buckets: number[],
  labelNames: string[] = [],
): Histogram {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Histogram) return existing;
  return new Histogram({ name, help, buckets, labelNames, registers: [registry] });
}
