// The metrics panel: the run's figures counted from its events, and the kernel's figures from the latest
// sample the stream delivered. Each figure is a value the API gave, or a count of events it gave.

import { decimal, element, integer, NONE } from './format.js';

function fill(list, rows) {
  list.replaceChildren(...rows.flatMap(([key, label, value]) => [
    element('dt', { text: label }),
    element('dd', { text: value, data: { key } }),
  ]));
}

/** Counts over a run's events: chaos outcomes, OOM events, interventions, progress. */
export function runFigures(events) {
  const figures = {
    events: events.length, chaos_judged: 0, chaos_recovered: 0, chaos_failed: 0, oom_events: 0, oom_reported: false,
    interventions: 0, missed: 0, percent: null, elapsed_ms: null, finished: null,
  };
  for (const event of events) {
    switch (event.kind) {
      case 'chaos.event':
        figures.chaos_judged += 1;
        if (event.recovered) figures.chaos_recovered += 1; else figures.chaos_failed += 1;
        break;
      case 'memory.oom':
        figures.oom_events += Number(event.new_oom_events ?? 0);
        figures.oom_reported = true;
        break;
      case 'autonomy.intervention':
        figures.interventions += 1;
        break;
      case 'events.missed':
        figures.missed += Number(event.count ?? 0);
        break;
      case 'stress.progress':
        figures.percent = event.percent;
        figures.elapsed_ms = event.elapsed_ms;
        break;
      case 'stress.finished':
        figures.finished = event;
        figures.elapsed_ms = event.elapsed_ms;
        break;
      default:
    }
  }
  return figures;
}

/** Fills the run panel from `events`. */
export function renderRunFigures(list, events) {
  const figures = runFigures(events);
  fill(list, [
    ['events', 'events', integer(figures.events)],
    ['percent', 'progress', figures.percent == null ? NONE : `${figures.percent} %`],
    ['elapsed_ms', 'elapsed (kernel)', figures.elapsed_ms == null ? NONE : `${integer(figures.elapsed_ms)} ms`],
    ['chaos_recovered', 'chaos events recovered', integer(figures.chaos_recovered)],
    ['chaos_failed', 'chaos events failed', integer(figures.chaos_failed)],
    ['oom_events', 'OOM events (memory.oom)',
      figures.oom_reported ? integer(figures.oom_events) : `${NONE} (no memory.oom event)`],
    ['interventions', 'autonomy interventions', integer(figures.interventions)],
    ['missed', 'events missed', integer(figures.missed)],
  ]);
  return figures;
}

/** Fills the kernel panel from a stream `sample` message (`{sample, metrics}`). */
export function renderKernelFigures(list, sample, metrics) {
  const port = metrics?.workload?.port;
  const attached = port?.attached === true;
  const memory = metrics?.memory;
  const autonomy = metrics?.autonomy;
  fill(list, [
    ['uptime_ms', 'kernel uptime', `${integer(sample.uptime_ms)} ms`],
    ['heap_used_bytes', 'heap in use', sample.heap_used_bytes == null ? NONE : `${integer(sample.heap_used_bytes)} B`],
    ['frames_free', 'page frames free',
      memory ? `${integer(memory.frames_free)} of ${integer(memory.frames_total)}` : NONE],
    ['pressure_per_mille', 'pool pressure',
      sample.pressure_per_mille == null ? `${NONE} (no workload attached)` : `${integer(sample.pressure_per_mille)} ‰`],
    ['oom_events', 'pool OOM events', sample.oom_events == null ? NONE : integer(sample.oom_events)],
    ['throttle_per_mille', 'pool throttle', attached ? `${integer(port.throttle_per_mille)} ‰` : NONE],
    ['autonomy', 'autonomy',
      autonomy ? `${autonomy.enabled ? 'on' : 'off'}, strategy ${autonomy.strategy}, policy ${autonomy.policy}` : NONE],
    ['interventions', 'interventions (autoctl)', integer(sample.interventions)],
    ['utilization_ppm', 'real-time utilization',
      metrics?.scheduler ? `${decimal(Number(metrics.scheduler.utilization_ppm) / 10_000, 2)} %` : NONE],
    ['threads', 'threads', metrics?.threads?.threads ? integer(metrics.threads.threads.length) : NONE],
  ]);
}
