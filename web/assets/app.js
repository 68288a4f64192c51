// The practice page: pick a question from the bank, answer it, see the
// grading, answer a follow-up, look back at past evaluations.

import { apiKey, newIdempotencyKey, ProblemError, request, setAPIKey } from "./api.js";
import { h, truncate, uid } from "./dom.js";
import { highlighted } from "./highlight.js";

const $ = (id) => document.getElementById(id);

const PAGE_SIZE = 10;

const BANDS = {
  strong: "Strong",
  meets: "Meets the bar",
  partial: "Partial",
  insufficient: "Insufficient",
};

const FLAGS = {
  keyword_list: "Reads like a list of terms: the criteria it touches are capped at level 1.",
  short_answer: "Short answer (under 40 words): levels are capped at 2.",
  prompt_injection_suspected: "Sentences addressed to the grader were ignored.",
  unverified_evidence: "Some quotes could not be verified against the answer.",
};

const KEY_POINT_STATUS = { covered: "Covered", partial: "Partly", missing: "Missing" };

const state = {
  /** The picked rubric summary: {id, title, question, level, tags}. */
  rubric: null,
  /** The follow-up being answered: {evaluationId, index, question, criterionName, rubricTitle}. */
  followUp: null,
  bankCursor: "",
  /** Counts bank requests, so that a slow answer cannot replace a newer list. */
  bankSeq: 0,
  historyCursor: "",
  /** Evaluations seen, by id, for the interview thread. */
  evals: new Map(),
  busy: false,
  /** Actions to run again once the user gives an API key. */
  waitingForKey: [],
  /** Whether the last key given was refused. */
  keyRefused: false,
  /** The body and Idempotency-Key of a submission that got no response, so that resending it is safe. */
  unanswered: null,
};

// ---- helpers -------------------------------------------------------------

function bandLabel(band) {
  return BANDS[band] || band || "";
}

function formatScore(score) {
  return typeof score?.overall === "number" ? score.overall.toFixed(1) : "–";
}

function setStatus(el, text, busy = false) {
  el.replaceChildren();
  if (busy) el.append(h("span", { class: "spinner", "aria-hidden": "true" }));
  if (text) el.append(text);
  el.classList.toggle("busy", busy);
}

/** Shows a problem (its title, detail and field errors) in el. */
function showProblem(el, problem) {
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  el.replaceChildren(
    h("p", { class: "problem-title" }, problem.title || "Something went wrong", problem.status ? ` (${problem.status})` : ""),
    problem.detail ? h("p", { class: "problem-detail" }, problem.detail) : null,
    errors.length
      ? h(
          "ul",
          { class: "problem-fields" },
          errors.map((fe) =>
            h("li", {}, h("code", {}, (fe.pointer || "").replace(/^\//, "") || fe.parameter || "request"), ": ", fe.detail || ""),
          ),
        )
      : null,
    problem.requestId && problem.status >= 500 ? h("p", { class: "hint" }, "Request id: ", h("code", {}, problem.requestId)) : null,
  );
  el.hidden = false;
}

function clearProblem(el) {
  el.hidden = true;
  el.replaceChildren();
}

/** Runs action; a 401 asks for a key and runs it again after, any other problem goes to el. */
async function guarded(action, el) {
  try {
    clearProblem(el);
    await action();
  } catch (err) {
    if (err instanceof ProblemError && err.status === 401) {
      askForKey(err.problem, () => guarded(action, el));
      return;
    }
    showProblem(el, err instanceof ProblemError ? err.problem : { title: "Unexpected error", detail: String(err?.message || err) });
  }
}

// ---- API key -------------------------------------------------------------

function askForKey(problem, retry) {
  state.waitingForKey.push(retry);
  const section = $("key-section");
  if (apiKey() !== "") {
    // The key was sent and refused: forget it.
    setAPIKey("");
    updateKeyStatus();
    state.keyRefused = true;
  }
  $("key-reason").textContent = (state.keyRefused ? "The key was refused: " : "") + (problem.detail || problem.title);
  if (section.hidden) {
    section.hidden = false;
    $("key-input").focus();
  }
}

function saveKey(ev) {
  ev.preventDefault();
  const input = $("key-input");
  const key = input.value.trim();
  if (!key) {
    input.focus();
    return;
  }
  setAPIKey(key);
  state.keyRefused = false;
  input.value = "";
  $("key-section").hidden = true;
  updateKeyStatus();
  for (const retry of state.waitingForKey.splice(0)) retry();
}

function updateKeyStatus() {
  $("key-status").hidden = apiKey() === "";
}

// ---- question bank -------------------------------------------------------

function bankItem(r, similarity) {
  const meta = [r.level, ...(r.tags || [])].filter(Boolean).join(" · ");
  const selected = state.rubric && state.rubric.id === r.id && !state.followUp;
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: "bank-item",
        "aria-current": selected ? "true" : null,
        dataset: { rubricId: r.id },
        onclick: () => pick(r),
      },
      h("span", { class: "bank-title" }, r.title),
      h("span", { class: "bank-question" }, r.question),
      meta || typeof similarity === "number"
        ? h("span", { class: "bank-meta" }, meta, typeof similarity === "number" ? `${meta ? " · " : ""}match ${Math.round(similarity * 100)}%` : "")
        : null,
    ),
  );
}

async function browse(reset) {
  const list = $("bank-list");
  const status = $("bank-status");
  if (reset) state.bankCursor = "";
  const seq = ++state.bankSeq;
  await guarded(async () => {
    setStatus(status, "Loading questions…", true);
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.bankCursor) params.set("cursor", state.bankCursor);
    let page;
    try {
      page = await request("/v1/rubrics?" + params);
    } finally {
      if (seq === state.bankSeq) setStatus(status, "");
    }
    if (seq !== state.bankSeq) return;
    if (reset) list.replaceChildren();
    const first = list.children.length;
    for (const r of page.items || []) list.append(bankItem(r));
    state.bankCursor = page.next_cursor || "";
    $("bank-more").hidden = !state.bankCursor;
    setStatus(status, list.children.length ? `${list.children.length} questions shown.` : "The question bank is empty.");
    if (!reset) list.children[first]?.querySelector("button")?.focus();
  }, $("bank-error"));
}

async function search(q) {
  const list = $("bank-list");
  const status = $("bank-status");
  const seq = ++state.bankSeq;
  await guarded(async () => {
    setStatus(status, "Searching…", true);
    let res;
    try {
      res = await request("/v1/rubrics/search?" + new URLSearchParams({ q, k: "8" }));
    } finally {
      if (seq === state.bankSeq) setStatus(status, "");
    }
    if (seq !== state.bankSeq) return;
    const items = res.items || [];
    list.replaceChildren(...items.map((hit) => bankItem(hit.rubric, hit.similarity)));
    state.bankCursor = "";
    $("bank-more").hidden = true;
    setStatus(status, items.length ? `${items.length} questions match “${q}”.` : `No question matches “${q}”.`);
  }, $("bank-error"));
}

function pick(r) {
  state.rubric = r;
  state.followUp = null;
  for (const b of $("bank-list").querySelectorAll("button.bank-item")) {
    if (b.dataset.rubricId === r.id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  renderPicked();
  clearProblem($("grade-error"));
  $("answer-input").focus();
}

function renderPicked() {
  const fu = state.followUp;
  const r = state.rubric;
  $("picked-none").hidden = Boolean(fu || r);
  $("picked").hidden = !(fu || r);
  $("leave-follow-up").hidden = !(fu && r);
  if (fu) {
    $("picked-meta").textContent = `Follow-up on ${fu.criterionName} · ${fu.rubricTitle}`;
    $("picked-question").textContent = fu.question;
    $("submit-answer").textContent = "Grade my follow-up answer";
  } else if (r) {
    $("picked-meta").textContent = [r.title, r.level].filter(Boolean).join(" · ");
    $("picked-question").textContent = r.question;
    $("submit-answer").textContent = "Grade my answer";
  }
}

// ---- grading -------------------------------------------------------------

function setBusy(busy) {
  state.busy = busy;
  const form = $("answer-form");
  form.setAttribute("aria-busy", String(busy));
  const btn = $("submit-answer");
  btn.setAttribute("aria-disabled", String(busy));
  btn.classList.toggle("is-busy", busy);
  if (busy) setStatus($("grade-status"), "Grading… this can take a few seconds with an LLM grader.", true);
}

async function submitAnswer(ev) {
  ev?.preventDefault();
  if (state.busy) return;
  const errEl = $("grade-error");
  const input = $("answer-input");
  clearProblem(errEl);
  input.removeAttribute("aria-invalid");
  if (!state.rubric && !state.followUp) {
    showProblem(errEl, { title: "Pick a question first", detail: "Search or browse the question bank, then pick the question you are answering." });
    $("search-input").focus();
    return;
  }
  const body = state.followUp
    ? { answer: input.value, follow_up_of: { evaluation_id: state.followUp.evaluationId, index: state.followUp.index } }
    : { answer: input.value, rubric_id: state.rubric.id };
  const sent = JSON.stringify(body);
  // Resending a submission that got no answer reuses its key, so a grading
  // that did complete is returned rather than made twice.
  const idempotencyKey = state.unanswered?.body === sent ? state.unanswered.key : newIdempotencyKey();
  setBusy(true);
  let e;
  try {
    e = await request("/v1/evaluations", { method: "POST", body, idempotencyKey });
    state.unanswered = null;
  } catch (err) {
    setBusy(false);
    setStatus($("grade-status"), "");
    const problem = err instanceof ProblemError ? err.problem : { title: "Unexpected error", detail: String(err?.message || err) };
    state.unanswered = problem.status === 0 ? { body: sent, key: idempotencyKey } : null;
    if (problem.status === 401) {
      askForKey(problem, () => submitAnswer());
      return;
    }
    showProblem(errEl, problem);
    if ((problem.errors || []).some((fe) => fe.pointer === "/answer")) {
      input.setAttribute("aria-invalid", "true");
    }
    return;
  }
  setBusy(false);
  state.evals.set(e.id, e);
  setStatus($("grade-status"), `Graded: ${formatScore(e.score)} out of 100, ${bandLabel(e.score?.band).toLowerCase()}. The result follows.`);
  await showEvaluation(e, true);
  history(true);
}

function answerFollowUp(e, index) {
  const fu = e.follow_ups[index];
  const crit = (e.criteria || []).find((c) => c.id === fu.criterion);
  state.followUp = {
    evaluationId: e.id,
    index,
    question: fu.question,
    criterionName: crit?.name || fu.criterion,
    rubricTitle: e.rubric?.title || "",
  };
  renderPicked();
  clearProblem($("grade-error"));
  const input = $("answer-input");
  input.value = "";
  input.removeAttribute("aria-invalid");
  updateCount();
  setStatus($("grade-status"), "Answer the follow-up question above.");
  input.focus();
}

// ---- the result ----------------------------------------------------------

/** The evaluations from the first question to e, fetching parents not seen yet. */
async function threadOf(e) {
  const chain = [e];
  const seen = new Set([e.id]);
  let cur = e;
  while (cur.follow_up_of && chain.length < 20) {
    const id = cur.follow_up_of.evaluation_id;
    if (seen.has(id)) break;
    seen.add(id);
    let parent = state.evals.get(id);
    if (!parent) {
      try {
        parent = await request("/v1/evaluations/" + encodeURIComponent(id));
      } catch {
        break;
      }
      state.evals.set(id, parent);
    }
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

async function showEvaluation(e, focus) {
  const chain = await threadOf(e);
  $("result").replaceChildren(renderEvaluation(e, chain));
  $("result-section").hidden = false;
  if (focus) $("result-heading").focus();
}

function renderEvaluation(e, chain) {
  const frag = document.createDocumentFragment();
  const band = e.score?.band || "";
  const grader = [e.grader?.kind, e.grader?.model].filter(Boolean).join(" ");
  const when = e.created_at ? new Date(e.created_at) : null;

  frag.append(
    h(
      "div",
      { class: "summary" },
      h(
        "div",
        { class: `score-box band-${band}` },
        h("p", { class: "score" }, h("span", { class: "score-value" }, formatScore(e.score)), h("span", { class: "score-max" }, " / 100")),
        h("p", { class: "band" }, bandLabel(band)),
      ),
      h(
        "div",
        { class: "summary-text" },
        h("p", { class: "eyebrow" }, e.rubric?.title || "", e.rubric?.version ? ` · version ${e.rubric.version}` : ""),
        h(
          "p",
          { class: "hint" },
          grader ? `Graded by ${grader}` : "Graded",
          when ? h("span", {}, " on ", h("time", { datetime: e.created_at }, when.toLocaleString())) : null,
          e.cached ? " (reused an identical earlier grading)" : "",
          ".",
        ),
        (e.flags || []).length
          ? h("ul", { class: "flags", "aria-label": "Flags" }, e.flags.map((f) => h("li", {}, FLAGS[f] || f)))
          : null,
      ),
    ),
  );

  if (chain.length > 1) frag.append(renderThread(e, chain));

  frag.append(
    h("h3", {}, e.follow_up_of ? "Follow-up question" : "Question"),
    h("p", { class: "question" }, e.question || ""),
    h("h3", {}, "Your answer"),
    h(
      "p",
      { class: "hint legend" },
      h("mark", {}, "Highlighted"),
      " text is what the grader quoted as evidence",
      (e.misconceptions || []).some((m) => m.evidence) ? h("span", {}, "; ", h("mark", { class: "misconception" }, "red"), " marks a misconception") : "",
      ".",
    ),
    h("div", { class: "answer-text" }, highlighted(e.answer || "", evidenceRanges(e))),
  );

  frag.append(h("h3", {}, "Criteria"), h("ol", { class: "criteria" }, (e.criteria || []).map(renderCriterion)));

  frag.append(h("h3", {}, "Missing points"));
  frag.append(
    (e.missing_points || []).length
      ? h("ul", { class: "plain-list missing" }, e.missing_points.map((p) => h("li", {}, p)))
      : h("p", { class: "hint" }, "None: the answer made every key point of the rubric."),
  );

  frag.append(h("h3", {}, "Misconceptions"));
  frag.append(
    (e.misconceptions || []).length
      ? h(
          "ul",
          { class: "plain-list misconceptions" },
          e.misconceptions.map((m) =>
            h(
              "li",
              {},
              h("p", { class: "claim" }, m.claim),
              m.why ? h("p", {}, m.why) : null,
              m.evidence ? h("blockquote", {}, m.evidence.quote) : null,
            ),
          ),
        )
      : h("p", { class: "hint" }, "None found."),
  );

  if (e.feedback) frag.append(h("h3", {}, "Feedback"), h("p", { class: "feedback" }, e.feedback));

  frag.append(h("h3", {}, "Follow-up questions"));
  frag.append(
    (e.follow_ups || []).length
      ? h(
          "ol",
          { class: "follow-ups" },
          e.follow_ups.map((fu, i) => {
            const qid = uid("fu");
            return h(
              "li",
              { class: "follow-up" },
              h("p", { class: "question", id: qid }, fu.question),
              fu.why ? h("p", { class: "hint" }, fu.why) : null,
              h(
                "button",
                { type: "button", class: "secondary answer-follow-up", "aria-describedby": qid, onclick: () => answerFollowUp(e, i) },
                "Answer this follow-up",
              ),
            );
          }),
        )
      : h("p", { class: "hint" }, "No follow-up questions."),
  );
  return frag;
}

function evidenceRanges(e) {
  const ranges = [];
  for (const c of e.criteria || []) {
    for (const ev of c.evidence || []) {
      ranges.push({ start: ev.start, end: ev.end, quote: ev.quote, label: `Evidence for ${c.name || c.id}`, kind: "evidence" });
    }
  }
  for (const m of e.misconceptions || []) {
    if (m.evidence) {
      ranges.push({ start: m.evidence.start, end: m.evidence.end, quote: m.evidence.quote, label: `Misconception: ${m.claim}`, kind: "misconception" });
    }
  }
  return ranges;
}

function renderCriterion(c) {
  const max = c.max_level || 4;
  const covered = (c.key_points || []).filter((k) => k.status === "covered").length;
  return h(
    "li",
    { class: "criterion" },
    h(
      "div",
      { class: "criterion-head" },
      h("h4", {}, c.name || c.id),
      h("p", { class: `level level-${c.level}` }, `Level ${c.level} of ${max}`),
    ),
    h(
      "div",
      { class: "level-bar", "aria-hidden": "true" },
      Array.from({ length: max }, (_, i) => h("span", { class: i < c.level ? "on" : "" })),
    ),
    c.comment ? h("p", { class: "comment" }, c.comment) : null,
    (c.evidence || []).length
      ? h("div", { class: "evidence" }, h("p", { class: "label" }, "Evidence"), c.evidence.map((ev) => h("blockquote", {}, ev.quote)))
      : null,
    (c.key_points || []).length
      ? h(
          "details",
          { class: "key-points" },
          h("summary", {}, `Key points: ${covered} of ${c.key_points.length} covered`),
          h(
            "ul",
            {},
            c.key_points.map((k) =>
              h("li", {}, h("span", { class: `kp kp-${k.status}` }, KEY_POINT_STATUS[k.status] || k.status), " ", k.point),
            ),
          ),
        )
      : null,
  );
}

function renderThread(current, chain) {
  return h(
    "section",
    { class: "thread", "aria-labelledby": "thread-heading" },
    h("h3", { id: "thread-heading" }, "Interview thread"),
    h(
      "ol",
      { class: "thread-list" },
      chain.map((item, i) => {
        const isCurrent = item.id === current.id;
        const question = item.follow_up_of ? item.follow_up_of.question : item.question;
        const topic = item.follow_up_of ? (item.criteria?.[0]?.name || item.follow_up_of.criterion) : item.rubric?.title;
        return h(
          "li",
          { class: "turn" + (isCurrent ? " current" : ""), "aria-current": isCurrent ? "step" : null },
          h("p", { class: "who" }, i === 0 ? "Question" : `Follow-up ${i}`, topic ? ` · ${topic}` : ""),
          h("p", { class: "turn-question" }, question || ""),
          h("p", { class: "who" }, "Your answer"),
          h("p", { class: "turn-answer" }, truncate(item.answer, 220)),
          h(
            "p",
            { class: "turn-score" },
            h("span", { class: `pill band-${item.score?.band || ""}` }, `${formatScore(item.score)} · ${bandLabel(item.score?.band)}`),
            isCurrent
              ? h("span", { class: "hint" }, " shown below")
              : h("button", { type: "button", class: "link-button", onclick: () => showEvaluation(item, true) }, "Show this answer"),
          ),
        );
      }),
    ),
  );
}

// ---- past evaluations ----------------------------------------------------

function historyItem(e) {
  const when = e.created_at ? new Date(e.created_at) : null;
  return h(
    "li",
    {},
    h(
      "button",
      { type: "button", class: "history-item", onclick: () => showEvaluation(e, true) },
      h("span", { class: "history-title" }, e.follow_up_of ? "Follow-up · " : "", e.rubric?.title || "Evaluation"),
      h("span", { class: `pill band-${e.score?.band || ""}` }, `${formatScore(e.score)} · ${bandLabel(e.score?.band)}`),
      h("span", { class: "history-question" }, truncate(e.question || "", 140)),
      when ? h("time", { class: "hint", datetime: e.created_at }, when.toLocaleString()) : null,
    ),
  );
}

async function history(reset) {
  const list = $("history-list");
  const status = $("history-status");
  if (reset) state.historyCursor = "";
  await guarded(async () => {
    setStatus(status, "Loading past evaluations…", true);
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.historyCursor) params.set("cursor", state.historyCursor);
    let page;
    try {
      page = await request("/v1/evaluations?" + params);
    } finally {
      setStatus(status, "");
    }
    if (reset) list.replaceChildren();
    const first = list.children.length;
    for (const e of page.items || []) {
      state.evals.set(e.id, e);
      list.append(historyItem(e));
    }
    state.historyCursor = page.next_cursor || "";
    $("history-more").hidden = !state.historyCursor;
    if (!list.children.length) setStatus(status, "No evaluations yet: grade an answer and it appears here.");
    if (!reset) list.children[first]?.querySelector("button")?.focus();
  }, $("history-error"));
}

// ---- start ---------------------------------------------------------------

function updateCount() {
  const n = Array.from($("answer-input").value).length;
  $("answer-count").textContent = n === 1 ? "1 character" : `${n} characters`;
}

function start() {
  $("key-form").addEventListener("submit", saveKey);
  $("forget-key").addEventListener("click", () => {
    setAPIKey("");
    updateKeyStatus();
    $("search-input").focus();
  });
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("search-input").value.trim();
    if (q) search(q);
    else browse(true);
  });
  $("browse-all").addEventListener("click", () => {
    $("search-input").value = "";
    browse(true);
  });
  $("bank-more").addEventListener("click", () => browse(false));
  $("history-more").addEventListener("click", () => history(false));
  $("answer-form").addEventListener("submit", submitAnswer);
  $("answer-input").addEventListener("input", updateCount);
  $("leave-follow-up").addEventListener("click", () => {
    state.followUp = null;
    renderPicked();
    setStatus($("grade-status"), "");
    $("answer-input").focus();
  });
  updateKeyStatus();
  updateCount();
  browse(true);
  history(true);
  document.body.dataset.ready = "true";
}

start();
