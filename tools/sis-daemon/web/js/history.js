// The history table: `GET /api/stress/history` newest first, sortable by any column, a click opens the run.

import { getJson } from './api.js';
import { element, integer, NONE, wallClock } from './format.js';

/** How many runs the table lists. */
const LIMIT = 200;

function tookMs(run) {
  return run.finished_ms == null ? null : Number(run.finished_ms) - Number(run.timestamp_ms);
}

function sortValue(run, key) {
  if (key === 'took_ms') return tookMs(run);
  if (key === 'seed') return BigInt(run.seed);
  return run[key];
}

function compareValues(left, right) {
  if (left == null && right == null) return 0;
  if (left == null) return 1;
  if (right == null) return -1;
  if (typeof left === 'string') return left.localeCompare(right);
  return left < right ? -1 : left > right ? 1 : 0;
}

function exportLinks(id) {
  const td = element('td', { data: { key: 'export' } });
  for (const format of ['csv', 'json']) {
    const link = element('a', { text: format.toUpperCase(), data: { format } });
    link.href = `/api/stress/${id}/export?format=${format}`;
    link.setAttribute('download', '');
    link.addEventListener('click', (event) => event.stopPropagation());
    td.append(link, ' ');
  }
  return td;
}

/** The table, its sort order and the run it marks as shown. */
export class History {
  constructor(table, errorLine, open) {
    this.table = table;
    this.errorLine = errorLine;
    this.open = open;
    this.runs = [];
    this.sort = { key: 'test_id', direction: -1 };
    this.shownId = null;
    for (const header of table.tHead.querySelectorAll('th[data-sort]')) {
      header.addEventListener('click', () => {
        const key = header.dataset.sort;
        this.sort = { key, direction: this.sort.key === key ? -this.sort.direction : 1 };
        this.render();
      });
    }
  }

  /** Reloads the runs from the API. */
  async refresh() {
    try {
      const { runs } = await getJson(`/api/stress/history?limit=${LIMIT}`);
      this.runs = runs;
      this.errorLine.hidden = true;
    } catch (error) {
      this.errorLine.textContent = `history: ${error.status} ${error.code}: ${error.message}`;
      this.errorLine.hidden = false;
    }
    this.render();
  }

  /** Marks run `id` as the one shown above. */
  markShown(id) {
    this.shownId = id;
    this.render();
  }

  render() {
    const { key, direction } = this.sort;
    const runs = this.runs.slice().sort((a, b) => direction * compareValues(sortValue(a, key), sortValue(b, key)));
    for (const header of this.table.tHead.querySelectorAll('th[data-sort]')) {
      if (header.dataset.sort === key) header.setAttribute('aria-sort', direction > 0 ? 'ascending' : 'descending');
      else header.removeAttribute('aria-sort');
    }
    this.table.tBodies[0].replaceChildren(...runs.map((run) => {
      const took = tookMs(run);
      const tr = element('tr', { data: { testId: run.test_id }, className: run.test_id === this.shownId ? 'shown' : '' });
      tr.append(
        element('td', { text: String(run.test_id), data: { key: 'test_id' } }),
        element('td', { text: run.test_type, data: { key: 'test_type' } }),
        element('td', { text: run.seed, data: { key: 'seed' } }),
        element('td', { text: run.duration_ms == null ? NONE : integer(run.duration_ms), data: { key: 'duration_ms' } }),
        element('td', { text: run.status, data: { key: 'status' }, className: `status-${run.status}` }),
        element('td', { text: run.summary ?? NONE, data: { key: 'summary' } }),
        element('td', { text: wallClock(run.timestamp_ms), data: { key: 'timestamp_ms' } }),
        element('td', { text: took == null ? NONE : (took / 1000).toFixed(3), data: { key: 'took_ms' } }),
        exportLinks(run.test_id),
      );
      tr.addEventListener('click', () => this.open(run.test_id));
      return tr;
    }));
  }
}
