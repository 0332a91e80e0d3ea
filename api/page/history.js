// cptqa page: code history badges (current rules). Self-contained: render.js's `badges` adds
// codeStatusBadges(code) to each answer code (and the code page) and passageDateBadges(passage)
// to each passage; app.js adds codeHistoryList(info) to the code page. Text only, never HTML.
"use strict";

function historyEl(tag, cls, text, title) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (title) node.title = title;
  node.textContent = text;
  return node;
}

// "deleted 2017 → 62322, 62323", "revised 2020", "renumbered 2007 → 77003".
function changeWords(change) {
  const when = change.year ? `${change.change} ${change.year}` : change.change;
  if (!change.replacements || !change.replacements.length) return when;
  const ends = change.change === "deleted" || change.change === "renumbered";
  return ends ? `${when} → ${change.replacements.join(", ")}`
    : `${when} (part now ${change.replacements.join(", ")})`;
}

function deciding(code) {
  const changes = code.history || [];
  const table = changes.filter((c) => c.source !== "corpus");
  return table.length ? table : changes;
}

// The badges of an answer code (or a looked-up code): what happened to it, and when its
// evidence predates a change. None for a current code with undated evidence.
function codeStatusBadges(code) {
  const badges = [];
  const changes = deciding(code);
  if (code.status === "deleted") {
    const ended = changes.filter((c) => c.change === "deleted" || c.change === "renumbered");
    const last = ended[ended.length - 1];
    badges.push(historyEl("span", "badge badge-deleted",
      last ? changeWords(last) : "deleted", "No longer a valid code: a claim with it is denied"));
  } else if (code.status === "unassigned") {
    const added = changes.find((c) => c.change === "added");
    badges.push(historyEl("span", "badge badge-deleted",
      added ? `not in use until ${added.year}` : "not in use then",
      "The code did not exist in the year of service"));
  } else if (code.status === "revised") {
    const revised = changes.filter((c) => c.change === "revised");
    const last = revised[revised.length - 1];
    badges.push(historyEl("span", "badge badge-revised", last ? changeWords(last) : "revised",
      last && last.note ? last.note : "Its descriptor changed; older advice may not hold"));
  }
  if (code.dated) {
    badges.push(historyEl("span", "badge badge-dated",
      `${code.dated.year} advice, before the ${code.dated.change.year} change`,
      `Evidence dated “${code.dated.words}”; ${code.dated.change.code} ` +
      `${changeWords(code.dated.change)}`));
  }
  if (code.current_rule) {
    badges.push(historyEl("span", "badge badge-rule", "current rule", code.current_rule));
  }
  return badges;
}

// The badge of a passage: its year, and when it predates changes to codes it cites.
function passageDateBadges(passage) {
  if (!passage.date) return [];
  const changes = passage.dated || [];
  if (!changes.length) {
    return [historyEl("span", "badge badge-year", `${passage.date.year}`,
      `Dated by “${passage.date.words}”`)];
  }
  const years = [...new Set(changes.map((c) => c.year))].sort();
  return [historyEl("span", "badge badge-dated",
    `${passage.date.year} advice, before the ${years.join(" and ")} change` +
    (years.length > 1 ? "s" : ""),
    changes.map((c) => `${c.code} ${changeWords(c)}`).join("; "))];
}

// The code page's history: every known change with its source; a corpus fact names its file.
function codeHistoryList(info) {
  const section = historyEl("section", "code-history", "");
  section.id = "code-history";
  section.append(historyEl("h3", "", "Code history"));
  const list = historyEl("ul", "history", "");
  const changes = info.history || [];
  if (!changes.length) list.append(historyEl("li", "", "No change known to cptqa."));
  for (const c of changes) {
    const item = historyEl("li", "", `${changeWords(c)}`);
    const from = c.source === "corpus"
      ? ` · the corpus says “${c.text}” (${c.document})` : ` · ${c.source}`;
    item.append(historyEl("span", "meta", (c.note ? ` · ${c.note}` : "") + from));
    list.append(item);
  }
  section.append(list);
  return section;
}
