// The run's charts (uPlot): the workload pool's memory pressure over the run, and its OOM events and the
// meta-agent's interventions so far. Each point is one sample the daemon stored or relayed (every ~250 ms).

/* global uPlot */

const HEIGHT = 240;

function widthOf(container) {
  return Math.max(320, container.clientWidth || 600);
}

function chart(container, series, axisLabel, range) {
  const options = {
    width: widthOf(container),
    height: HEIGHT,
    scales: { x: { time: false }, y: range ? { range } : { range: (self, min, max) => [0, Math.max(1, max)] } },
    series: [{ label: 't (s)', value: (self, value) => (value == null ? '—' : value.toFixed(3)) }, ...series],
    axes: [{ label: 'seconds since the run started' }, { label: axisLabel }],
    legend: { live: true },
  };
  return new uPlot(options, [[], ...series.map(() => [])], container);
}

/** The two charts of the run shown. */
export class RunCharts {
  constructor(pressureContainer, countsContainer, pointsLabel) {
    this.pointsLabel = pointsLabel;
    this.pressure = chart(pressureContainer, [
      { label: 'pressure (‰)', stroke: '#2563eb', width: 2, fill: 'rgba(37,99,235,0.10)' },
    ], '‰', [0, 1000]);
    this.counts = chart(countsContainer, [
      { label: 'OOM events', stroke: '#b3261e', width: 2 },
      { label: 'interventions', stroke: '#1f7a3a', width: 2 },
    ], 'count');
    const resize = () => {
      this.pressure.setSize({ width: widthOf(pressureContainer), height: HEIGHT });
      this.counts.setSize({ width: widthOf(countsContainer), height: HEIGHT });
    };
    window.addEventListener('resize', resize);
  }

  /** Plots `samples` (`{t_ms, pressure_per_mille, oom_events, interventions, ...}` in time order). */
  show(samples) {
    const times = samples.map((sample) => Number(sample.t_ms) / 1000);
    const column = (key) => samples.map((sample) => (sample[key] == null ? null : Number(sample[key])));
    this.pressure.setData([times, column('pressure_per_mille')]);
    this.counts.setData([times, column('oom_events'), column('interventions')]);
    this.pointsLabel.textContent = String(samples.length);
  }
}
