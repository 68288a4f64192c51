// h builds an element. Text, from the API or the user, only ever goes in
// as text nodes or textContent: the page never parses a string as HTML.

/**
 * @param {string} tag
 * @param {Record<string, any>} [props] "class", "text", "on<event>" handlers,
 *   "dataset", or attributes (true for a bare attribute; null/false to skip)
 * @param {...(Node|string|number|null|undefined|false|Array)} children
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Shortens s to at most n code points, with an ellipsis. */
export function truncate(s, n) {
  const cps = Array.from(s || "");
  return cps.length <= n ? cps.join("") : cps.slice(0, n - 1).join("").trimEnd() + "…";
}

let ids = 0;
/** A fresh element id with the given prefix. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}
