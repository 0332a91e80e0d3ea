// cptqa page: calls the JSON API of the server that served it and draws the reply with the
// pieces in render.js. The address holds the view, so Back works and any view can be linked:
//   #q=<question>&k=<n>   a search          #code=<code>   what the corpus says about a code
//   #doc=<id>&chunk=<passage id>   a document, with that passage marked
"use strict";

const KEY_STORAGE = "cptqa.apiKey";
let lastSearch = "";   // the hash of the last search, for "Back to the results"

// --- talking to the server -----------------------------------------------------------------

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
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "unreachable",
      "Could not reach the cptqa server. Is it still running? Start it with: cptqa serve");
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

// --- status and errors ---------------------------------------------------------------------

function setStatus(text) { $("status").textContent = text; }

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

// A message from the server starts with a lower-case word; on the page it is a sentence.
const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1) +
  (/[.!?]$/.test(text) ? "" : ".");

function showError(err, retry) {
  if (err.status === 401) askForKey(err.message, retry);
  const heading = {
    401: "This server needs an API key.",
    404: "Not found.",
    413: "That request is too large.",
    422: "That can't be searched as it is.",
    429: "Too many requests.",
    503: "The index is not ready.",
    0: "The server can't be reached.",
  }[err.status] || "Something went wrong.";
  $("error").replaceChildren(el("p", {}, el("strong", {}, heading)),
    el("p", {}, sentence(err.message)));
  $("error").hidden = false;
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

// --- search view ---------------------------------------------------------------------------

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
  const emphasis = {
    top: reply.codes.length ? reply.codes[0].code : "",
    answer: new Set(reply.codes.map((c) => c.code)),
  };
  const [lead, ...others] = reply.codes;
  $("lead-code").replaceChildren(lead ? renderAnswerCode(lead, reply.results, true) : "");
  $("other-codes").replaceChildren(...others.map((c) => renderAnswerCode(c, reply.results, false)));
  $("answer").hidden = !lead;
  $("others").hidden = others.length === 0;
  $("passages").replaceChildren(
    ...reply.results.map((p) => renderPassage(p, "passage-", emphasis)));
  $("search-view").hidden = reply.results.length === 0;
  if (reply.results.length === 0) {
    setStatus("");
    $("error").replaceChildren(
      el("p", {}, el("strong", {}, "No passages found.")),
      el("p", {}, `Nothing in the corpus answers “${reply.question}”. ` +
        "Try other words, a code, or check that the corpus covers this topic."));
    $("error").hidden = false;
    return;
  }
  const n = reply.results.length;
  setStatus(`${n} passage${n === 1 ? "" : "s"}, best first, and ${reply.codes.length} ` +
    `answer code${reply.codes.length === 1 ? "" : "s"}.`);
}

// --- code view -----------------------------------------------------------------------------

function backLink(id) {
  $(id).setAttribute("href", lastSearch || "#");
  $(id).textContent = lastSearch ? "← Back to the results" : "← New search";
}

async function runCode(code) {
  showView("code");
  clearError();
  $("code-title").textContent = code;
  $("code-body").hidden = true;  // no headings until there is something under them
  backLink("back");
  setStatus(`Looking up ${code}…`);
  let info;
  try {
    info = await api("GET", "/v1/codes/" + encodeURIComponent(code));
  } catch (err) {
    showError(err, () => runCode(code));
    if (err.suggestions.length) {
      $("error").append(el("p", {}, "Codes the corpus does mention, one character away:"),
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
  $("code-title").textContent = info.code;
  const files = info.documents.length;
  $("code-facts").textContent = [
    `${info.system} ${info.category}` + (info.section ? `, ${info.section}` : ""),
    `mentioned ${info.mentions} time${info.mentions === 1 ? "" : "s"} in ${files} ` +
      `document${files === 1 ? "" : "s"}`,
  ].join(" · ");
  $("code-facts").append(" ", badges(info, "code"));
  if ($("code-history")) $("code-history").remove();
  $("code-facts").after(codeHistoryList(info));
  const hint = $("code-hint");
  hint.hidden = info.suggestions.length === 0;
  hint.replaceChildren(el("p", {}, info.note), el("p", {}, "Perhaps: ",
    ...info.suggestions.flatMap((s, i) => [i ? ", " : "", el("a", { href: codeHref(s) }, s)])));
  const section = (id, items) => {
    $(id).closest("section").hidden = items.length === 0;
    $(id).replaceChildren(...items);
  };
  section("descriptors", info.descriptors.map((d) => el("li", {},
    el("blockquote", {}, el("p", { class: "passage-text" }, withEllipsis(d.text))),
    el("p", { class: "meta" }, "— ", el("a", { href: docHref(d.document, d.chunk_id) },
      d.title || d.document)))));
  section("related", info.related.map((r) => el("li", {}, el("a", { href: codeHref(r.code),
    title: `mentioned together in ${r.passages} passage${r.passages === 1 ? "" : "s"}` }, r.code))));
  const emphasis = { top: info.code, answer: new Set([info.code]) };
  section("code-passages", info.passages.map((p) => renderPassage(p, "code-passage-", emphasis)));
  $("code-body").hidden = false;
}

// --- document view -------------------------------------------------------------------------

async function runDocument(documentId, chunkId) {
  showView("doc");
  clearError();
  $("doc-title").textContent = "";
  $("doc-body").replaceChildren();
  backLink("doc-back");
  setStatus("Opening the document…");
  let doc;
  try {
    doc = await api("GET", "/v1/documents/" + documentId.split("/").map(encodeURIComponent).join("/"));
  } catch (err) {
    showError(err, () => runDocument(documentId, chunkId));
    return;
  }
  $("doc-title").textContent = doc.title;
  const { body, target } = renderDocument(doc, chunkId);
  $("doc-facts").textContent = `${doc.id} · ${doc.passages.length} passages` +
    (target ? (target.page ? ` · the marked passage starts on page ${target.page}` : "") : "");
  $("doc-body").replaceChildren(body);
  setStatus(target ? "The passage is marked in its document." : "");
  const mark = $("passage-here");
  if (mark) {
    mark.scrollIntoView({ block: "center" });
    mark.focus({ preventScroll: true });
  } else {
    $("doc-title").focus();
  }
}

// --- routing -------------------------------------------------------------------------------

function showView(name) {
  $("code-view").hidden = name !== "code";
  $("doc-view").hidden = name !== "doc";
  if (name !== "search") $("search-view").hidden = true;
}

function route() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("code")) {
    runCode(params.get("code"));
  } else if (params.has("doc")) {
    runDocument(params.get("doc"), params.get("chunk"));
  } else if (params.has("q")) {
    lastSearch = location.hash;
    runSearch(params.get("q"), Number(params.get("k")) || 5);
  } else {
    showView("search");
    clearError();
    setStatus("");
  }
}

function onSubmit(event) {
  event.preventDefault();
  const hash = "#" + new URLSearchParams({ q: $("question").value, k: $("k").value }).toString();
  if (location.hash === hash) route();  // the same search again: no hashchange event
  else location.hash = hash;
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
