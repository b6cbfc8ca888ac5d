// The event timeline: a run's kernel events (docs/commands.md, eventctl), newest first, with the kinds to show
// chosen by checkboxes. Every line is one event as the stream or the history delivered it.

import { element, integer, microsAsMs, NONE, seconds } from './format.js';

/** The kinds the kernel publishes, with the label each is shown under. */
export const KINDS = [
  ['stress.started', 'started'],
  ['stress.progress', 'progress'],
  ['chaos.event', 'chaos'],
  ['memory.oom', 'OOM'],
  ['autonomy.intervention', 'intervention'],
  ['stress.finished', 'finished'],
  ['events.missed', 'missed'],
];
const LABELS = new Map(KINDS);

function directiveText(directive) {
  if (!directive || typeof directive !== 'object') return String(directive ?? NONE);
  const rest = Object.entries(directive).filter(([key]) => key !== 'directive')
    .map(([key, value]) => `${key} ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  return [directive.directive, ...rest].join(' ');
}

/** A chaos event's parameters from its report (`{type, mib: 5}`) in words: `mib 5`. */
function parametersText(parameters) {
  if (!parameters) return '';
  const words = Object.entries(parameters).filter(([key]) => key !== 'type')
    .map(([key, value]) => `${key.replaceAll('_', ' ')} ${value}`);
  return words.length > 0 ? ` · ${words.join(', ')}` : '';
}

/** One event in words (a chaos event with its `parameters` from the report, when known), and its outcome. */
export function describe(event, parameters) {
  switch (event.kind) {
    case 'stress.started':
      return { text: `${event.test} started, ${event.duration_ms == null ? 'no fixed duration' : `${integer(event.duration_ms)} ms`}` };
    case 'stress.progress':
      return { text: `${event.percent == null ? NONE : `${event.percent} %`} after ${integer(event.elapsed_ms)} ms` };
    case 'chaos.event':
      return event.recovered
        ? {
          text: `#${event.index} ${event.event}: recovered in ${microsAsMs(event.recovery_us)}${parametersText(parameters)}`,
          outcome: 'recovered',
        }
        : {
          text: `#${event.index} ${event.event}: FAILED (${event.failure ?? 'no failure named'}`
            + `${event.fault ? `; fault armed: ${event.fault}` : ''})${parametersText(parameters)}`,
          outcome: 'failed',
        };
    case 'memory.oom':
      return {
        text: `${integer(event.new_oom_events)} new OOM events (${integer(event.oom_events)} in the run), `
          + `last allocation refused ${integer(event.bytes)} B`,
        outcome: 'failed',
      };
    case 'autonomy.intervention':
      return {
        text: `decision ${event.decision} (${event.subsystem}): ${directiveText(event.directive)}, `
          + `confidence ${event.confidence_per_mille} ‰`,
      };
    case 'stress.finished':
      return {
        text: `${event.status}${event.error ? ` (${event.error})` : ''} after ${integer(event.elapsed_ms)} ms`,
        outcome: event.status === 'passed' ? 'recovered' : 'failed',
      };
    case 'events.missed':
      return { text: `${integer(event.count)} kernel events missed`, outcome: 'failed' };
    default:
      return { text: JSON.stringify(event) };
  }
}

/** The timeline list, its kind filter and its count. */
export class Timeline {
  constructor(list, kinds, count) {
    this.list = list;
    this.count = count;
    this.events = [];
    this.chaosParameters = new Map();
    this.shown = new Set(KINDS.map(([kind]) => kind));
    for (const [kind, label] of KINDS) {
      const box = element('input', { data: { kind } });
      box.type = 'checkbox';
      box.checked = true;
      box.name = 'kind';
      box.value = kind;
      box.addEventListener('change', () => {
        if (box.checked) this.shown.add(kind); else this.shown.delete(kind);
        this.render();
      });
      const wrapper = element('label');
      wrapper.append(box, label);
      kinds.append(wrapper);
    }
  }

  /** Shows `events` (in sequence order); `chaosParameters` maps a chaos event's index to its parameters. */
  show(events, chaosParameters) {
    this.events = events;
    this.chaosParameters = chaosParameters ?? new Map();
    this.render();
  }

  render() {
    const started = this.events.find((event) => event.kind === 'stress.started');
    const origin = started ? started.at_ms : this.events[0]?.at_ms ?? 0;
    const visible = this.events.filter((event) => this.shown.has(event.kind) || !LABELS.has(event.kind));
    const items = visible.slice().reverse().map((event) => {
      const parameters = event.kind === 'chaos.event' ? this.chaosParameters.get(event.index) : undefined;
      const { text, outcome } = describe(event, parameters);
      const item = element('li', { data: { seq: event.seq ?? '', kind: event.kind } });
      item.append(
        element('span', { className: 'at', text: `+${seconds(Number(event.at_ms ?? origin) - Number(origin))}` }),
        element('span', { className: 'kind', text: LABELS.get(event.kind) ?? event.kind }),
        element('span', { className: `text ${outcome ?? ''}`, text }),
      );
      return item;
    });
    this.list.replaceChildren(...items);
    this.count.textContent = `(${visible.length} shown of ${this.events.length})`;
    this.count.dataset.shown = String(visible.length);
  }
}
