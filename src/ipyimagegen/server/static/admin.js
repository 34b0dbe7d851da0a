// The workshop host's page: the room live, revoke and top up, pause and resume every call.
// The admin token stays in this tab's sessionStorage and goes as a Bearer header; every name is
// put in the page with textContent, never as HTML.
"use strict";

const KEY = "ipyimagegen-admin-token";
const $ = (id) => document.getElementById(id);
let timer = null;

function token() { return sessionStorage.getItem(KEY) || ""; }

async function call(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
  return body;
}

function showProblem(text) {
  $("problem").textContent = text;
  $("problem").hidden = !text;
}

function when(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toLocaleTimeString();
}

function dollars(value) { return value == null ? "–" : `$${Number(value).toFixed(2)}`; }

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function participantRow(p) {
  const row = document.createElement("tr");
  row.dataset.token = p.id;
  cell(row, p.name, "name");
  cell(row, p.status, "status status-" + p.status.replace(/\s+/g, "-"));
  cell(row, String(p.images));
  const budget = [p.budget != null ? `${p.budget} images` : null, p.budget_usd != null ? dollars(p.budget_usd) : null]
    .filter(Boolean).join(", ") || "no limit";
  cell(row, budget, "budget");
  cell(row, dollars(p.spent_usd));
  cell(row, String(p.errors));
  cell(row, String(p.rejected));
  cell(row, when(p.last_used));
  const topUp = cell(row, "");
  const revokeCell = cell(row, "");
  if (p.active) {
    const images = document.createElement("input");
    images.type = "number"; images.min = "0"; images.value = "10"; images.title = "Images to add";
    images.setAttribute("aria-label", `Images to add for ${p.name}`);
    const usd = document.createElement("input");
    usd.type = "number"; usd.min = "0"; usd.step = "0.5"; usd.value = "1"; usd.title = "Dollars to add";
    usd.setAttribute("aria-label", `Dollars to add for ${p.name}`);
    const add = document.createElement("button");
    add.type = "button"; add.textContent = "Top up"; add.className = "top-up";
    add.addEventListener("click", async () => {
      try {
        await call(`/admin/api/tokens/${encodeURIComponent(p.id)}/topup`, {
          method: "POST",
          body: JSON.stringify({ images: Number(images.value) || 0, usd: p.budget_usd != null ? Number(usd.value) || 0 : 0 }),
        });
        await refresh();
      } catch (error) { showProblem(error.message); }
    });
    const unit = (text) => { const span = document.createElement("span"); span.className = "unit"; span.textContent = text; return span; };
    topUp.append(images, unit("images"));
    if (p.budget_usd != null) topUp.append(unit("$"), usd);
    topUp.append(" ", add);
    const revoke = document.createElement("button");
    revoke.type = "button"; revoke.textContent = "Revoke"; revoke.className = "danger revoke";
    revoke.addEventListener("click", async () => {
      if (!window.confirm(`Revoke ${p.name}'s token? Their next call is refused.`)) return;
      try {
        await call(`/admin/api/tokens/${encodeURIComponent(p.id)}/revoke`, { method: "POST", body: "{}" });
        await refresh();
      } catch (error) { showProblem(error.message); }
    });
    revokeCell.appendChild(revoke);
  }
  return row;
}

function show(room) {
  const t = room.totals;
  $("participants").textContent = String(t.participants);
  $("images").textContent = String(t.images);
  $("spent").textContent = dollars(t.spent_usd);
  $("errors").textContent = String(t.errors);
  $("rejected").textContent = String(t.rejected);
  $("queue").textContent = `${room.queue.running} / ${room.queue.waiting}`;
  const w = room.workshop;
  const parts = [];
  parts.push(w.budget_images != null ? `${w.images} of ${w.budget_images} images` : `${w.images} images (no limit)`);
  parts.push(w.budget_usd != null ? `${dollars(w.spent_usd)} of ${dollars(w.budget_usd)}` : `${dollars(w.spent_usd)} (no dollar limit)`);
  $("budget").textContent = `The room's budget: ${parts.join(", ")}.`;
  const pause = $("pause");
  pause.textContent = w.paused ? "Resume all calls" : "Pause all calls";
  pause.classList.toggle("paused", w.paused);
  pause.dataset.paused = w.paused ? "yes" : "no";
  $("paused-note").hidden = !w.paused;
  const body = $("participants-table");
  body.replaceChildren(...room.participants.map(participantRow));
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function refresh() {
  try {
    show(await call("/admin/api/room"));
    showProblem("");
  } catch (error) {
    showProblem(error.message);
  }
}

function signedIn(yes) {
  $("sign-in").hidden = yes;
  $("room").hidden = !yes;
  $("sign-out").hidden = !yes;
  if (timer) clearInterval(timer);
  timer = yes ? setInterval(refresh, 2000) : null;
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("admin-token").value.trim());
    $("admin-token").value = "";
    try {
      show(await call("/admin/api/room"));
      showProblem("");
      signedIn(true);
    } catch (error) {
      sessionStorage.removeItem(KEY);
      showProblem(error.message);
    }
  });
  $("sign-out").addEventListener("click", () => { sessionStorage.removeItem(KEY); signedIn(false); });
  $("pause").addEventListener("click", async () => {
    const paused = $("pause").dataset.paused === "yes";
    try {
      await call(`/admin/api/${paused ? "resume" : "pause"}`, { method: "POST", body: "{}" });
      await refresh();
    } catch (error) { showProblem(error.message); }
  });
  if (token()) { signedIn(true); refresh(); }
});
