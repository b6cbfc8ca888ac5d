// How figures are written: thousands separated, units shown, a dash for a figure the API did not give.

/** What is shown for a figure the API answered null (or did not answer). */
export const NONE = '—';

/** An integer (number or BigInt) with thousands separators. */
export function integer(value) {
  if (value === null || value === undefined) return NONE;
  return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

/** A number with at most `digits` decimals, thousands separated. */
export function decimal(value, digits) {
  if (value === null || value === undefined) return NONE;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** Milliseconds as seconds with three decimals (`1.304 s`). */
export function seconds(ms) {
  if (ms === null || ms === undefined) return NONE;
  return `${(Number(ms) / 1000).toFixed(3)} s`;
}

/** Microseconds as milliseconds with three decimals (`10.607 ms`). */
export function microsAsMs(us) {
  if (us === null || us === undefined) return NONE;
  return `${(Number(us) / 1000).toFixed(3)} ms`;
}

/** A p-value: four decimals, or three significant digits in exponent form below 0.001. */
export function pValue(p) {
  if (p === null || p === undefined) return NONE;
  return p >= 0.001 || p === 0 ? p.toFixed(4) : p.toExponential(2);
}

/** A wall-clock time in milliseconds since 1970 as local `YYYY-MM-DD HH:MM:SS`. */
export function wallClock(ms) {
  if (ms === null || ms === undefined) return NONE;
  const date = new Date(Number(ms));
  const two = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} `
    + `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** Creates an element with optional class, text and dataset. */
export function element(tag, { className, text, data, title } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (title) node.title = title;
  for (const [key, value] of Object.entries(data ?? {})) node.dataset[key] = String(value);
  return node;
}
