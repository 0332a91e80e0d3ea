// cptqa page, the pieces: one function draws one thing (an answer code, a passage, a
// document), so that each can grow (a badge per code or passage: see `badges`).
// Corpus text is written with textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const codeHref = (code) => "#code=" + encodeURIComponent(code);
const docHref = (documentId, chunkId) => "#" + new URLSearchParams(
  chunkId ? { doc: documentId, chunk: chunkId } : { doc: documentId }).toString();
const documentOf = (chunkId) => chunkId.slice(0, Math.max(0, chunkId.lastIndexOf("#")));

// A text cut short by the server (an evidence sentence, a descriptor) ends with an ellipsis.
function withEllipsis(text) {
  const trimmed = text.trim().replace(/\s*\.\.\.$/, "");
  return /[.!?:;)"'”’…]$/.test(trimmed) ? trimmed : trimmed + "…";
}

// What the evidence says of a code, in words a coder reads as a verdict.
const VERDICTS = {
  "defined": "described here",
  "excluded": "excluded here: not to be reported for this",
  "bundled": "not separately reportable (bundled)",
  "add-on": "an add-on code: reported with its primary procedure",
  "primary": "a primary procedure code",
  "deleted": "deleted: not a current code",
  "mentioned": "mentioned",
};
const verdict = (role) => VERDICTS[role] || role;

// The badges of an answer code or a passage: its verdict, and the current rules (a code's
// status and dated evidence, a passage's year and dated advice: history.js).
function badges(item, kind) {
  const list = el("span", { class: "badges" });
  if (kind === "code" && item.role && item.role !== "defined" && item.role !== "mentioned") {
    list.append(el("span", { class: `badge role-${item.role}` }, verdict(item.role)));
  }
  list.append(...(kind === "code" ? codeStatusBadges(item) : passageDateBadges(item)));
  return list;
}

// --- code highlighting ---------------------------------------------------------------------

// `text` (starting at document offset `offset`) with each code mention linked to its page.
function highlighted(text, offset, codes, emphasis, tag = "p") {
  const mentions = codes
    .map((c) => ({ ...c, from: c.start - offset, to: c.end - offset }))
    .filter((c) => c.from >= 0 && c.to <= text.length && c.from < c.to)
    .sort((a, b) => a.from - b.from);
  const out = el(tag, { class: "passage-text" });
  let at = 0;
  for (const mention of mentions) {
    if (mention.from < at) continue;  // overlapping mentions: keep the first
    out.append(text.slice(at, mention.from));
    const isTop = mention.code === emphasis.top;
    const label = `${mention.code}: ${mention.system} code, ${verdict(mention.role)}` +
      (isTop ? "; the answer's first code" : emphasis.answer.has(mention.code) ?
        "; one of the answer's codes" : "");
    out.append(el("a", { class: "code-ref", href: codeHref(mention.code), title: label },
      el("mark", { class: isTop ? "code top" : "code", "data-code": mention.code },
        text.slice(mention.from, mention.to))));
    at = mention.to;
  }
  out.append(text.slice(at));
  return out;
}

// "Why this?": the ranking model's features for one passage or code, largest parts first.
function whyDetails(explanation, score) {
  if (!explanation) return null;
  const rows = explanation.features.map((f) =>
    el("tr", { class: f.contribution >= 0 ? "up" : "down" },
      el("th", { scope: "row" }, f.name.replaceAll("_", " ")),
      el("td", {}, Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(3)),
      el("td", {}, (f.contribution >= 0 ? "+" : "−") + Math.abs(f.contribution).toFixed(3))));
  return el("details", { class: "why" },
    el("summary", {}, "Why this?"),
    el("p", { class: "meta" }, `Scored ${score.toFixed(3)} by the ${explanation.scorer} model: ` +
      `base ${explanation.base.toFixed(3)} plus each feature's part.`),
    el("table", {},
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "feature"), el("th", { scope: "col" }, "value"),
        el("th", { scope: "col" }, "part of score"))),
      el("tbody", {}, ...rows)));
}

// --- one answer code -----------------------------------------------------------------------

// Where an evidence sentence can be read: its passage on this page, else its document.
function evidenceLink(evidence, shown) {
  const passage = shown.find((p) => p.chunk_id === evidence.chunk_id);
  const title = evidence.title || documentOf(evidence.chunk_id);
  if (passage) {
    return el("a", { href: `#passage-${passage.rank}`, "data-passage": passage.rank },
      `${title}, passage ${passage.rank} below`);
  }
  return el("a", { href: docHref(documentOf(evidence.chunk_id), evidence.chunk_id),
    class: "to-document" }, `${title} (not among the passages shown: read it in its document)`);
}

function renderAnswerCode(code, shown, lead) {
  const evidence = code.evidence.slice(0, lead ? 1 : 2).map((e) =>
    el("blockquote", {},
      el("p", { class: "evidence" }, withEllipsis(e.text)),
      el("p", { class: "meta" }, "— ", evidenceLink(e, shown))));
  const heading = el(lead ? "p" : "div", { class: "code-head" },
    el("a", { class: "code-link", href: codeHref(code.code),
      title: `What the corpus says about ${code.code}` }, code.code),
    code.descriptor ? el("span", { class: "descriptor" }, code.descriptor) : null,
    badges(code, "code"));
  return el(lead ? "div" : "li", { class: lead ? "lead-code" : "other-code", "data-code": code.code },
    heading, evidence, whyDetails(code.explanation, code.score));
}

// --- one passage ---------------------------------------------------------------------------

function pagesOf(passage) {
  if (!passage.page) return null;
  const last = passage.last_page && passage.last_page !== passage.page ? `–${passage.last_page}` : "";
  return ` · page ${passage.page}${last}`;
}

function renderPassage(passage, idPrefix, emphasis) {
  const title = passage.title || passage.document;
  return el("li", { id: `${idPrefix}${passage.rank}`, "data-chunk": passage.chunk_id },
    el("p", { class: "meta" },
      el("span", { class: "visually-hidden" }, `Passage ${passage.rank}: `),
      `${passage.rank}. `,
      el("a", { class: "doc", href: docHref(passage.document, passage.chunk_id),
        title: `Read this passage in its document (${passage.document})` }, title),
      pagesOf(passage), badges(passage, "passage")),
    passage.context && passage.context !== title ? el("p", { class: "meta" }, passage.context) : null,
    highlighted(passage.text, passage.start, passage.codes, emphasis),
    whyDetails(passage.explanation, passage.score));
}

// --- one document, with one passage marked -------------------------------------------------

function renderDocument(doc, chunkId) {
  const target = doc.passages.find((p) => p.chunk_id === chunkId);
  const codes = doc.passages.flatMap((p) => p.codes);
  const emphasis = { top: "", answer: new Set() };
  const body = el("div", { class: "document-text" });
  const cut = target ? [[0, target.start], [target.start, target.end], [target.end, doc.text.length]]
    : [[0, doc.text.length]];
  cut.forEach(([from, to], i) => {
    const part = highlighted(doc.text.slice(from, to), from, codes, emphasis, "span");
    if (target && i === 1) {
      body.append(el("mark", { class: "passage-here", id: "passage-here", tabindex: "-1" }, part));
    } else {
      body.append(part);
    }
  });
  return { body, target };
}
