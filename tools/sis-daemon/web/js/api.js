// The daemon's HTTP API as the page uses it: JSON in and out, integers beyond 2^53 (seeds) kept exact, and a
// refusal turned into an ApiError that carries the API's own status, code, field and message.

/** A refused or failed request: what the API answered (status 0: it did not answer). */
export class ApiError extends Error {
  constructor(status, code, field, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/**
 * Parses JSON keeping integers that a double cannot hold (64-bit seeds) as BigInt, from their source text
 * (JSON.parse source access); where the browser lacks it, they are parsed as numbers.
 */
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value)
        && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

/** JSON text of a value that may hold BigInts (written as their digits). */
export function stringifyJson(value) {
  return JSON.stringify(value, (key, item) => {
    if (typeof item !== 'bigint') return item;
    return JSON.rawJSON ? JSON.rawJSON(item.toString()) : item.toString();
  }, 2);
}

async function request(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, 'no-answer', null, `the daemon did not answer: ${error.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? parseJson(text) : null;
  } catch {
    throw new ApiError(response.status, 'not-json', null, `the answer is not JSON: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(response.status, error.code ?? 'unknown', error.field ?? null, error.message ?? text);
  }
  return body;
}

/** GET `path` as JSON. */
export function getJson(path) {
  return request(path, { headers: { Accept: 'application/json' } });
}

/** POST a JSON text to `path`. */
export function postJson(path, bodyText) {
  return request(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: bodyText });
}

/**
 * A form field's text as a JSON value: digits are written as a JSON number with the very digits typed (a 64-bit
 * seed survives), anything else as a JSON string, which the API refuses naming the field.
 */
export function numberOrText(text) {
  return /^-?(0|[1-9]\d*)$/.test(text) ? text : JSON.stringify(text);
}

/** A JSON object text from `[key, valueText]` pairs. */
export function objectText(entries) {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
}
