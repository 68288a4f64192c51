// Evidence highlighting. The API counts offsets in Unicode code points
// (runes), but JavaScript strings index UTF-16 code units, so an emoji or
// any character outside the Basic Multilingual Plane would shift every
// later quote by one. Array.from splits a string into code points, which
// makes the API's offsets usable as they are.

/**
 * Cuts text into segments at the boundaries of ranges; each segment lists
 * the ranges covering it. A range whose text is not its quote (or that lies
 * outside the text) is dropped rather than highlighted in the wrong place.
 * @param {string} text
 * @param {{start: number, end: number, quote?: string, label: string, kind?: string}[]} ranges
 * @returns {{text: string, ranges: object[]}[]}
 */
export function segments(text, ranges) {
  const cps = Array.from(text);
  const n = cps.length;
  const valid = ranges.filter(
    (r) =>
      Number.isInteger(r.start) &&
      Number.isInteger(r.end) &&
      r.start >= 0 &&
      r.start < r.end &&
      r.end <= n &&
      (r.quote === undefined || cps.slice(r.start, r.end).join("") === r.quote),
  );
  const cuts = new Set([0, n]);
  for (const r of valid) {
    cuts.add(r.start);
    cuts.add(r.end);
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i];
    const e = points[i + 1];
    const covering = valid.filter((r) => r.start <= s && e <= r.end);
    const prev = out[out.length - 1];
    if (prev && sameRanges(prev.ranges, covering)) {
      prev.text += cps.slice(s, e).join("");
    } else {
      out.push({ text: cps.slice(s, e).join(""), ranges: covering });
    }
  }
  return out;
}

function sameRanges(a, b) {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * Builds the answer with its evidence in <mark> elements, from text nodes
 * only: nothing the API or the user wrote is ever parsed as HTML.
 * @returns {DocumentFragment}
 */
export function highlighted(text, ranges) {
  const frag = document.createDocumentFragment();
  for (const seg of segments(text, ranges)) {
    if (seg.ranges.length === 0) {
      frag.append(document.createTextNode(seg.text));
      continue;
    }
    const mark = document.createElement("mark");
    mark.textContent = seg.text;
    const labels = [...new Set(seg.ranges.map((r) => r.label))];
    mark.title = labels.join("; ");
    if (seg.ranges.some((r) => r.kind === "misconception")) mark.className = "misconception";
    frag.append(mark);
  }
  return frag;
}
