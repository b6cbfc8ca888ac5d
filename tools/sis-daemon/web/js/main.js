// The dashboard: follows the daemon's live stream (/api/stream), starts runs and comparisons through the API,
// and shows one run at a time (the one under way, or one opened from the history) with its charts, event
// timeline and figures. Everything shown is a value the API returned or a count of what it returned.

import {
  ApiError, getJson, numberOrText, objectText, parseJson, postJson, stringifyJson,
} from './api.js';
import { RunCharts } from './charts.js';
import { renderComparison } from './compare.js';
import { element, integer, NONE, seconds } from './format.js';
import { History } from './history.js';
import { renderKernelFigures, renderRunFigures, runFigures } from './metrics.js';
import { Timeline } from './timeline.js';

const byId = (id) => document.getElementById(id);

const charts = window.uPlot ? new RunCharts(byId('pressure-chart'), byId('counts-chart'), byId('chart-points')) : null;
byId('vendor-missing').hidden = Boolean(charts);
const timeline = new Timeline(byId('timeline'), byId('timeline-kinds'), byId('timeline-count'));
const history = new History(byId('history-table'), byId('history-error'), (id) => openRun(id));

/**
 * A run as the page holds it (`events`: the kernel's event objects, docs/commands.md): `streamed` when its samples and events came from the live stream (the run under
 * way, or one that ended while the page watched), else loaded from the history.
 */
function newRun(id, testType) {
  return { id, testType, row: null, report: null, samples: [], events: [], status: 'running', summary: null, streamed: true };
}

function storedRun(full) {
  const { run } = full;
  return {
    id: run.test_id, testType: run.test_type, row: run, report: full.report, samples: full.samples,
    events: full.events.map((stored) => stored.event), status: run.status, summary: run.summary, streamed: false,
  };
}

/** The run under way, fed by the stream. */
let live = null;
/** The run the run section shows (possibly `live`). */
let shown = null;
/** Stream messages that arrive while the page reloads the state they follow; replayed after. */
let pending = null;
/** Messages the stream reported lost. */
let lagged = 0;

// ---- rendering -------------------------------------------------------------------------------------------------

function configText(row) {
  if (!row) return '';
  const config = Object.entries(row.config ?? {}).filter(([key]) => key !== 'seed')
    .map(([key, value]) => `${key.replaceAll('_', ' ')} ${value}`);
  const duration = row.duration_ms == null ? [] : [`${integer(row.duration_ms)} ms`];
  return [`seed ${row.seed}`, ...duration, ...config].join(', ');
}

function renderHeader(run) {
  const section = byId('run');
  section.dataset.testId = String(run.id);
  section.dataset.status = run.status;
  section.dataset.mode = run === live ? 'live' : run.streamed ? 'streamed' : 'stored';
  const how = run === live ? 'live' : run.streamed ? 'as streamed' : 'replay of its stored samples and events';
  byId('run-title').textContent = `Run #${run.id} · ${run.testType} · ${how}`;
  const figures = runFigures(run.events);
  let state;
  if (run.status === 'running') {
    const duration = run.row?.duration_ms;
    const elapsed = figures.elapsed_ms == null ? NONE : seconds(figures.elapsed_ms);
    const of = duration == null ? '' : ` / ${seconds(duration)}`;
    state = `Active test: ${run.testType} (${elapsed}${of})${figures.percent == null ? '' : `, ${figures.percent} %`}`;
  } else {
    state = `${run.status}${run.summary ? `: ${run.summary}` : ''}`;
  }
  const detail = byId('run-detail');
  detail.replaceChildren(element('span', { text: state, data: { key: 'state' } }));
  if (run.row) detail.append(' · ', element('span', { text: configText(run.row), data: { key: 'config' } }));
  byId('run-exports').hidden = false;
  byId('export-csv').href = `/api/stress/${run.id}/export?format=csv`;
  byId('export-json').href = `/api/stress/${run.id}/export?format=json`;
}

/** Each chaos event's parameters by its index, from a chaos report (`chaos.events[].event`). */
function chaosParameters(report) {
  const events = report?.chaos?.events;
  if (!Array.isArray(events)) return new Map();
  return new Map(events.map((item) => [item.index, item.event]));
}

function renderEvents(run) {
  timeline.show(run.events, chaosParameters(run.report));
  renderRunFigures(byId('run-metrics'), run.events);
  byId('run-metrics-source').textContent = run.streamed
    ? `(counted over the ${run.events.length} events the stream delivered)`
    : `(counted over the ${run.events.length} stored events)`;
}

function renderReport(run) {
  const details = byId('report-details');
  details.hidden = run.report == null;
  byId('report-json').textContent = run.report == null ? '' : stringifyJson(run.report);
}

/** Redraws the whole run section for `shown`. */
function render() {
  if (!shown) return;
  renderHeader(shown);
  if (charts) charts.show(shown.samples);
  renderEvents(shown);
  renderReport(shown);
  history.markShown(shown.id);
}

function show(run) {
  shown = run;
  render();
}

// ---- runs --------------------------------------------------------------------------------------------------------

/** Loads run `id` from the history and shows it (the live one is shown as streamed). */
async function openRun(id) {
  if (live && live.id === id) {
    show(live);
    return;
  }
  try {
    const full = await getJson(`/api/stress/${id}`);
    show(storedRun(full));
    if (full.run.test_type === 'compare') renderComparison(byId('compare-table'), byId('compare-summary'), full);
  } catch (error) {
    byId('run-detail').textContent = `run ${id}: ${error.status} ${error.code}: ${error.message}`;
  }
}

/** Completes a streamed run that ended: its row and report from the history. */
async function completeRun(run) {
  try {
    const full = await getJson(`/api/stress/${run.id}`);
    run.row = full.run;
    run.report = full.report;
    run.status = full.run.status;
    run.summary = full.run.summary;
    if (full.run.test_type === 'compare') renderComparison(byId('compare-table'), byId('compare-summary'), full);
  } catch (error) {
    run.summary = `${run.summary ?? ''} (history: ${error.message})`;
  }
  if (shown === run) render();
}

function onRun(data) {
  if (data.status === 'running') {
    live = newRun(data.test_id, data.test_type);
    show(live);
    const run = live;
    getJson(`/api/stress/${run.id}`).then((full) => {
      run.row = full.run;
      if (shown === run) renderHeader(run);
    }).catch(() => {});
    if (data.test_type === 'compare') {
      byId('compare-summary').textContent = `Run #${data.test_id} (compare) is under way; its table follows when it ends.`;
      byId('compare-summary').dataset.testId = String(data.test_id);
      byId('compare-table').hidden = true;
    }
  } else if (live && live.id === data.test_id) {
    const run = live;
    live = null;
    run.status = data.status;
    run.summary = data.summary ?? null;
    if (shown === run) render();
    completeRun(run);
  }
  history.refresh();
}

function onSample(data) {
  renderKernelFigures(byId('kernel-metrics'), data.sample, data.metrics);
  byId('kernel-metrics-source').textContent = `(sample at kernel uptime ${integer(data.sample.uptime_ms)} ms)`;
  if (data.run_id == null || !live || data.run_id !== live.id) return;
  const last = live.samples[live.samples.length - 1];
  if (last && Number(data.sample.uptime_ms) <= Number(last.uptime_ms)) return;
  live.samples.push(data.sample);
  if (shown === live && charts) charts.show(live.samples);
}

function onEvent(data) {
  if (data.run_id == null || !live || data.run_id !== live.id) return;
  const last = live.events[live.events.length - 1];
  const seq = data.event.seq;
  if (seq != null && last && last.seq != null && Number(seq) <= Number(last.seq)) return;
  live.events.push(data.event);
  if (shown === live) {
    renderHeader(live);
    renderEvents(live);
  }
}

function onKernel(data) {
  byId('kernel-state').textContent = data.running
    ? `running at ${data.address}`
    : `stopped (${data.reason ?? 'no reason given'})`;
}

function handle(name, data) {
  if (pending) {
    pending.push([name, data]);
    return;
  }
  switch (name) {
    case 'run': onRun(data); break;
    case 'sample': onSample(data); break;
    case 'event': onEvent(data); break;
    case 'kernel': onKernel(data); break;
    case 'lagged':
      lagged += Number(data.missed);
      byId('stream-lagged').hidden = false;
      byId('stream-lagged').textContent = `· ${integer(lagged)} stream messages lost (open the run from the history for what was stored)`;
      break;
    default:
  }
}

/** Reloads what the stream does not repeat (the kernel's state, the run under way so far), then replays. */
async function resync() {
  pending = [];
  try {
    const system = await getJson('/api/system');
    byId('kernel-state').textContent = system.kernel
      ? `${system.kernel.running ? 'running' : 'stopped'} at ${system.kernel.address} (QEMU pid ${system.kernel.qemu_pid})`
      : 'not booted yet (it boots at the first run)';
    const current = system.current_run;
    if (current != null && (!live || live.id !== current)) {
      const full = await getJson(`/api/stress/${current}`);
      live = storedRun(full);
      live.streamed = true;
      show(live);
    } else if (current == null && live) {
      const run = live;
      live = null;
      completeRun(run);
    }
  } catch (error) {
    byId('kernel-state').textContent = `unknown (${error.message})`;
  }
  const queue = pending;
  pending = null;
  for (const [name, data] of queue) handle(name, data);
  await history.refresh();
  if (!shown && history.runs.length > 0) openRun(history.runs[0].test_id);
}

function connect() {
  const source = new EventSource('/api/stream');
  source.addEventListener('open', () => {
    byId('stream-state').textContent = 'connected';
    resync();
  });
  source.addEventListener('error', () => {
    byId('stream-state').textContent = 'reconnecting';
  });
  for (const name of ['run', 'sample', 'event', 'kernel', 'lagged']) {
    source.addEventListener(name, (message) => handle(name, parseJson(message.data)));
  }
}

// ---- forms -------------------------------------------------------------------------------------------------------

/** Shows the API's refusal in `line`, naming the field, and marks the field's input in `form`. */
function showError(line, form, error) {
  for (const input of form.querySelectorAll('.invalid')) input.classList.remove('invalid');
  const parts = [
    element('span', { className: 'error-status', text: error.status ? String(error.status) : 'no answer' }), ' ',
    element('code', { className: 'error-code', text: error.code }),
  ];
  if (error.field) {
    parts.push(' ', element('span', { className: 'error-field', text: error.field }));
    const input = form.elements[error.field.replace(/^config\./, '')];
    if (input) input.classList.add('invalid');
  }
  parts.push(': ', element('span', { className: 'error-message', text: error.message }));
  line.replaceChildren(...parts);
  line.hidden = false;
}

function clearError(line, form) {
  line.hidden = true;
  for (const input of form.querySelectorAll('.invalid')) input.classList.remove('invalid');
}

async function submit(form, button, errorLine, path, body, onReply) {
  clearError(errorLine, form);
  button.disabled = true;
  try {
    onReply(await postJson(path, body));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showError(errorLine, form, error);
  } finally {
    button.disabled = false;
  }
}

const startForm = byId('start-form');

/** Shows the inputs the chosen test type takes (the daemon refuses the others). */
function showInputsFor(type) {
  const takes = {
    duration: type !== 'learning',
    fail_rate: type === 'memory' || type === 'chaos',
    episodes: type === 'learning',
    seed: true,
  };
  for (const label of startForm.querySelectorAll('label[data-for]')) label.hidden = !takes[label.dataset.for];
}

startForm.elements.test_type.addEventListener('change', (event) => showInputsFor(event.target.value));
showInputsFor(startForm.elements.test_type.value);

startForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = (name) => startForm.elements[name].value.trim();
  const takes = (name) => !startForm.querySelector(`label[data-for="${name}"]`).hidden;
  const top = [['test_type', JSON.stringify(value('test_type'))]];
  if (takes('duration') && value('duration_ms')) top.push(['duration_ms', numberOrText(value('duration_ms'))]);
  const config = [];
  for (const name of ['seed', 'fail_rate', 'episodes']) {
    if (takes(name) && value(name)) config.push([name, numberOrText(value(name))]);
  }
  if (config.length > 0) top.push(['config', objectText(config)]);
  submit(startForm, byId('start-button'), byId('start-error'), '/api/stress/start', objectText(top), (reply) => {
    const line = byId('start-reply');
    line.textContent = `Started run #${reply.test_id} (seed ${reply.seed}): ${reply.command}`;
    line.dataset.testId = String(reply.test_id);
    line.hidden = false;
  });
});

const compareForm = byId('compare-form');
compareForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = (name) => compareForm.elements[name].value.trim();
  const body = [['test', JSON.stringify(value('test'))]];
  for (const name of ['runs', 'duration_ms', 'seed']) {
    if (value(name)) body.push([name, numberOrText(value(name))]);
  }
  submit(compareForm, byId('compare-button'), byId('compare-error'), '/api/stress/compare', objectText(body), (reply) => {
    byId('compare-summary').textContent = `Run #${reply.test_id} (compare, seed ${reply.seed}) is under way: ${reply.command}`;
    byId('compare-summary').dataset.testId = String(reply.test_id);
  });
});

// For the browser test and the console: what the page drew and holds.
window.sisDashboard = {
  charts,
  timeline,
  history,
  get shown() { return shown; },
  get live() { return live; },
};

connect();
