// atdarchive serve: sortable tables and the blame cell panel. No network, no libraries.
"use strict";

function cellText(row, i) {
  const cell = row.children[i];
  return cell ? cell.textContent.trim() : "";
}

function asNumber(text) {
  const n = Number(text.replace(/,/g, ""));
  return text !== "" && Number.isFinite(n) ? n : null;
}

function sortBy(table, th) {
  const i = Array.prototype.indexOf.call(th.parentNode.children, th);
  const body = table.tBodies[0];
  const ascending = !th.classList.contains("asc");
  th.parentNode.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
  th.classList.add(ascending ? "asc" : "desc");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellText(a, i), y = cellText(b, i);
    const nx = asNumber(x), ny = asNumber(y);
    const order = nx !== null && ny !== null ? nx - ny : x.localeCompare(y);
    return ascending ? order : -order;
  });
  rows.forEach((r) => body.appendChild(r));
}

function showCell(td) {
  const panel = document.getElementById("cell-panel");
  const table = document.getElementById("blame");
  if (!panel || !table) return;
  document.querySelectorAll("td.cell.selected").forEach((c) => c.classList.remove("selected"));
  td.classList.add("selected");
  const column = table.tHead.rows[0].cells[td.cellIndex].textContent;
  const swatch = document.querySelectorAll("#legend .swatch")[Number(td.dataset.r)];
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  set("panel-row", td.parentNode.dataset.label);
  set("panel-column", column);
  set("panel-value", td.textContent);
  set("panel-previous", td.dataset.p !== undefined ? td.dataset.p : "— (first published here)");
  set("panel-revisions", td.dataset.n || "0");
  set("panel-release", swatch ? swatch.dataset.release : "—");
  if (swatch) document.getElementById("panel-release").setAttribute("href", swatch.dataset.url);
  set("panel-source", td.dataset.s || "—");
  const row = td.parentNode.dataset.key;
  const url = table.dataset.cellUrl + "?" + row + "&column=" + encodeURIComponent(column);
  document.getElementById("panel-history").setAttribute("href", url);
  panel.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("thead th").forEach((th) => {
      th.addEventListener("click", () => sortBy(table, th));
    });
  });
  const blame = document.getElementById("blame");
  if (blame) {
    blame.addEventListener("click", (event) => {
      const td = event.target.closest("td.cell");
      if (td) showCell(td);
    });
  }
});
