// cptqa page: calls the JSON API of the server that served it and draws the reply.
// The address holds the view, so Back works and a search or a code page can be linked:
//   #q=<question>&k=<n>   a search        #code=<code>   what the corpus says about a code
// Corpus text is written with textContent only, never as HTML.
"use strict";

const KEY_STORAGE = "cptqa.apiKey";
const $ = (id) => document.getElementById(id);

let lastSearch = "";   // the hash of the last search, for "Back to the results"
let topCode = "";      // the answer's first code: highlighted strongest in the passages
let answerCodes = new Set();

// --- small DOM builder -----------------------------------------------------------------------

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

function codeHref(code) {
  return "#code=" + encodeURIComponent(code);
}

function documentOf(chunkId) {
  const cut = chunkId.lastIndexOf("#");
  return cut < 0 ? chunkId : chunkId.slice(0, cut);
}

// --- talking to the server -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, type, message, suggestions) {
    super(message);
    this.status = status;
    this.type = type;
    this.suggestions = suggestions || [];
  }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers["Authorization"] = "Bearer " + key;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "unreachable",
      "Could not reach the cptqa server. Is `cptqa serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const detail = (data && data.error) || {};
    throw new ApiError(response.status, detail.type || "http_error",
      detail.message || `The server answered ${response.status}.`, detail.suggestions);
  }
  return data;
}

// --- status and errors -----------------------------------------------------------------------

function setStatus(text) {
  $("status").textContent = text;
}

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

function showError(err, retry) {
  if (err.status === 401) {
    askForKey(err.message, retry);
  }
  const heading = {
    401: "This server needs an API key.",
    404: "Not found.",
    413: "That request is too large.",
    422: "That can't be searched as it is.",
    429: "Too many requests.",
    503: "The index is not ready.",
    0: "The server can't be reached.",
  }[err.status] || "Something went wrong.";
  const box = $("error");
  box.replaceChildren(el("p", {}, el("strong", {}, heading)), el("p", {}, err.message));
  box.hidden = false;
  setStatus("");
}

function askForKey(message, retry) {
  const form = $("key-form");
  $("key-why").textContent = message && message.includes("wrong")
    ? "That API key is wrong. Enter the key this server was started with."
    : "This server needs an API key.";
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    form.hidden = true;
    retry();
  };
  $("api-key").focus();
}

// --- code highlighting -----------------------------------------------------------------------

// The passage text with each code mention wrapped in a link to the code's page. Mention offsets
// are into the document, the passage starts at `passage.start`.
function highlightedText(passage) {
  const text = passage.text;
  const mentions = passage.codes
    .map((c) => ({ ...c, from: c.start - passage.start, to: c.end - passage.start }))
    .filter((c) => c.from >= 0 && c.to <= text.length && c.from < c.to)
    .sort((a, b) => a.from - b.from);
  const out = el("p", { class: "passage-text" });
  let at = 0;
  for (const mention of mentions) {
    if (mention.from < at) continue;  // overlapping mentions: keep the first
    out.append(text.slice(at, mention.from));
    const isTop = mention.code === topCode;
    const isAnswer = answerCodes.has(mention.code);
    const label = `${mention.code}: ${mention.system} code, ${mention.role}` +
      (isTop ? ", the answer's first code" : isAnswer ? ", one of the answer's codes" : "");
    out.append(el("a", { class: "code-ref", href: codeHref(mention.code), title: label },
      el("mark", { class: isTop ? "code top" : "code", "data-code": mention.code },
        text.slice(mention.from, mention.to))));
    at = mention.to;
  }
  out.append(text.slice(at));
  return out;
}

// "Why this?": the ranking model's features for one passage or code, largest parts first.
function whyDetails(explanation) {
  if (!explanation) return null;
  const rows = explanation.features.map((f) =>
    el("tr", { class: f.contribution >= 0 ? "up" : "down" },
      el("th", { scope: "row" }, f.name.replaceAll("_", " ")),
      el("td", {}, Number.isInteger(f.value) ? String(f.value) : f.value.toFixed(3)),
      el("td", {}, (f.contribution >= 0 ? "+" : "−") + Math.abs(f.contribution).toFixed(3))));
  return el("details", { class: "why" },
    el("summary", {}, "Why this?"),
    el("p", { class: "meta" }, `Scored by the ${explanation.scorer} model: base ` +
      `${explanation.base.toFixed(3)} plus each feature's part.`),
    el("table", {},
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "feature"), el("th", { scope: "col" }, "value"),
        el("th", { scope: "col" }, "part of score"))),
      el("tbody", {}, ...rows)));
}

function passageItem(passage, idPrefix, scored) {
  const facts = [
    el("span", { class: "doc" }, passage.document),
    passage.page ? ` · page ${passage.page}` +
      (passage.last_page && passage.last_page !== passage.page ? `–${passage.last_page}` : "") : null,
    ` · characters ${passage.start}–${passage.end}`,
    scored ? ` · score ${passage.score.toFixed(3)}` : null,
  ];
  return el("li", { id: `${idPrefix}${passage.rank}` },
    el("p", { class: "meta" }, el("span", { class: "visually-hidden" }, `Passage ${passage.rank}: `),
      `${passage.rank}. `, ...facts, passageDateBadge(passage)),
    passage.context ? el("p", { class: "meta" }, passage.context) : null,
    highlightedText(passage),
    whyDetails(passage.explanation));
}

// --- search view -----------------------------------------------------------------------------

async function runSearch(question, k) {
  showView("search");
  $("question").value = question;
  if ([...$("k").options].some((o) => o.value === String(k))) $("k").value = String(k);
  clearError();
  $("search-view").hidden = true;
  setStatus("Searching…");
  let reply;
  try {
    reply = await api("POST", "/v1/query", { question, k, explain: true });
  } catch (err) {
    showError(err, () => runSearch(question, k));
    return;
  }
  $("key-form").hidden = true;
  renderSearch(reply);
}

function renderSearch(reply) {
  answerCodes = new Set(reply.codes.map((c) => c.code));
  topCode = reply.codes.length ? reply.codes[0].code : "";
  const passages = $("passages");
  passages.replaceChildren(...reply.results.map((p) => passageItem(p, "passage-", true)));
  const codes = $("answer-codes");
  codes.replaceChildren(...reply.codes.map(answerCodeItem(reply.results)));
  $("answer").hidden = reply.codes.length === 0;
  $("search-view").hidden = reply.results.length === 0;
  if (reply.results.length === 0) {
    setStatus("");
    const box = $("error");
    box.replaceChildren(
      el("p", {}, el("strong", {}, "No passages found.")),
      el("p", {}, `Nothing in the corpus answers “${reply.question}”. ` +
        "Try other words, a code, or check that the corpus covers this topic."));
    box.hidden = false;
    return;
  }
  const n = reply.results.length;
  const c = reply.codes.length;
  setStatus(`${n} passage${n === 1 ? "" : "s"} and ${c} answer code${c === 1 ? "" : "s"} ` +
    `in ${Math.round(reply.took_ms)} ms.`);
}

function answerCodeItem(results) {
  return (code) => {
    const evidence = code.evidence.map((e) => {
      const passage = results.find((p) => p.chunk_id === e.chunk_id);
      return el("blockquote", {},
        el("p", { class: "passage-text" }, e.text),
        el("p", { class: "meta" }, "from ", el("span", { class: "doc" }, documentOf(e.chunk_id)),
          passage ? [" · ", el("a", { href: `#passage-${passage.rank}`, "data-passage": passage.rank },
            `passage ${passage.rank}`)] : null));
    });
    return el("li", {},
      el("div", { class: "code-head" },
        el("a", { class: "code-link", href: codeHref(code.code) }, code.code),
        el("span", { class: "meta" },
          `${code.system} ${code.category} · ${code.role} · score ${code.score.toFixed(2)}`),
        codeStatusBadge(code)),
      evidence,
      whyDetails(code.explanation));
  };
}

// --- code view -------------------------------------------------------------------------------

async function runCode(code) {
  showView("code");
  clearError();
  $("code-title").textContent = code;
  for (const id of ["code-facts", "descriptors", "related", "code-passages"]) {
    $(id).replaceChildren();
  }
  if ($("code-history")) $("code-history").remove();
  $("back").setAttribute("href", lastSearch || "#");
  $("back").textContent = lastSearch ? "← Back to the results" : "← New search";
  setStatus(`Looking up ${code}…`);
  let info;
  try {
    info = await api("GET", "/v1/codes/" + encodeURIComponent(code));
  } catch (err) {
    showError(err, () => runCode(code));
    if (err.suggestions.length) {
      $("error").append(el("p", {}, "Did you mean: "),
        el("ul", { class: "suggestions" },
          err.suggestions.map((s) => el("li", {}, el("a", { href: codeHref(s) }, s)))));
    }
    $("code-title").focus();
    return;
  }
  $("key-form").hidden = true;
  renderCode(info);
  setStatus("");
  $("code-title").focus();
}

function renderCode(info) {
  $("code-title").textContent = `${info.code}`;
  const roles = Object.entries(info.roles).map(([role, n]) => `${role} ${n}`).join(", ");
  const files = info.documents.length;
  $("code-facts").textContent = [
    `${info.system} ${info.category}` + (info.section ? `, ${info.section}` : ""),
    `mentioned ${info.mentions} time${info.mentions === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}`,
    roles ? `roles: ${roles}` : "",
  ].filter(Boolean).join(" · ");
  const badge = codeStatusBadge(info);
  if (badge) $("code-facts").append(" ", badge);
  if ($("code-history")) $("code-history").remove();
  $("code-facts").after(codeHistoryList(info));
  const descriptors = info.descriptors.length
    ? info.descriptors.map((d) => el("li", {},
        el("blockquote", {}, el("p", { class: "passage-text" }, d.text)),
        el("p", { class: "meta" }, "from ", el("span", { class: "doc" }, d.document))))
    : [el("li", {}, "The corpus gives no descriptor for this code; see the passages below.")];
  $("descriptors").replaceChildren(...descriptors);
  const related = info.related.length
    ? info.related.map((r) => el("li", {}, el("a", { href: codeHref(r.code),
        title: `mentioned together in ${r.passages} passage${r.passages === 1 ? "" : "s"}` }, r.code)))
    : [el("li", {}, "None.")];
  $("related").replaceChildren(...related);
  answerCodes = new Set([info.code]);
  topCode = info.code;
  $("code-passages").replaceChildren(
    ...info.passages.map((p) => passageItem(p, "code-passage-", false)));
}

// --- routing ---------------------------------------------------------------------------------

function showView(name) {
  $("code-view").hidden = name !== "code";
  if (name !== "search") $("search-view").hidden = true;
}

function route() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("code")) {
    runCode(params.get("code"));
  } else if (params.has("q")) {
    lastSearch = location.hash;
    runSearch(params.get("q"), Number(params.get("k")) || 5);
  } else {
    showView("search");
    clearError();
    setStatus("");
  }
}

function searchHash(question, k) {
  return "#" + new URLSearchParams({ q: question, k: String(k) }).toString();
}

function onSubmit(event) {
  event.preventDefault();
  const hash = searchHash($("question").value, $("k").value);
  if (location.hash === hash) {
    route();  // the same search again: no hashchange event
  } else {
    location.hash = hash;
  }
}

function onKey(event) {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    event.preventDefault();
    $("question").focus();
    $("question").select();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("submit", onSubmit);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  route();
  if (!location.hash) $("question").focus();
});
