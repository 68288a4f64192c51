// The Assay API as the page uses it: JSON in and out, the API key from
// session storage as a bearer token, and every failure as a ProblemError
// carrying an RFC 9457 problem.

const KEY_STORAGE = "assay.apiKey";

/** The API key of this tab, or "" when none is set. */
export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

/** Keeps key for this tab only; an empty key forgets it. */
export function setAPIKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage disabled: the key lasts until the page reloads.
  }
}

/** An error response of the API, or a failure to reach it. */
export class ProblemError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || "request failed");
    this.name = "ProblemError";
    this.problem = problem;
    this.status = problem.status || 0;
  }
}

/** A random Idempotency-Key; getRandomValues works outside secure contexts too. */
export function newIdempotencyKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Calls the API and returns the decoded JSON body.
 * @param {string} path e.g. "/v1/rubrics?limit=10"
 * @param {{method?: string, body?: any, idempotencyKey?: string, signal?: AbortSignal}} [opts]
 */
export async function request(path, opts = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  const init = { method: opts.method || "GET", headers, signal: opts.signal, credentials: "omit" };
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;

  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ProblemError({
      title: "Network error",
      status: 0,
      detail: "The server could not be reached. Check your connection and try again.",
    });
  }
  const type = resp.headers.get("Content-Type") || "";
  let body = null;
  if (type.includes("json")) {
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
  }
  if (!resp.ok) {
    const problem = body && typeof body === "object" ? body : {};
    throw new ProblemError({
      type: problem.type || "about:blank",
      title: problem.title || resp.statusText || "Request failed",
      status: problem.status || resp.status,
      detail: problem.detail || `The server answered ${resp.status} ${resp.statusText}.`.trim(),
      errors: Array.isArray(problem.errors) ? problem.errors : [],
      candidates: Array.isArray(problem.candidates) ? problem.candidates : [],
      requestId: resp.headers.get("X-Request-Id") || "",
    });
  }
  return body;
}
