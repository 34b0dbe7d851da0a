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
  $("participants-word").textContent = t.participants === 1 ? "participant" : "participants";
  $("images").textContent = String(t.images);
  $("spent").textContent = dollars(t.spent_usd);
  $("errors").textContent = String(t.errors);
  $("rejected").textContent = String(t.rejected);
  $("queue").textContent = `${room.queue.running} / ${room.queue.waiting}`;
  const servers = room.servers || [];
  $("servers").hidden = servers.length < 2;
  $("servers").textContent = `${servers.length} servers share this room: ` +
    servers.map((s) => `${s.name} (${s.running} running, ${s.waiting} waiting)`).join(", ") +
    `; ${room.reserved_images} images reserved for calls in flight.`;
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

// The class wall: each picture is fetched once (with the Bearer header, so as an object URL) and
// its card kept while the picture stays on the wall.
const wallCards = new Map();

async function pictureUrl(id) {
  const response = await fetch(`/admin/api/wall/${encodeURIComponent(id)}`, { headers: { Authorization: `Bearer ${token()}` } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

function wallCard(post) {
  const card = document.createElement("figure");
  card.className = "post";
  card.dataset.post = post.id;
  card.setAttribute("role", "listitem");
  const img = document.createElement("img");
  img.alt = post.prompt ? `${post.name}: ${post.prompt}` : `Shared by ${post.name}`;
  img.width = post.width; img.height = post.height;
  pictureUrl(post.id).then((url) => { img.src = url; card.dataset.url = url; }).catch(() => card.classList.add("missing"));
  const caption = document.createElement("figcaption");
  const who = document.createElement("span");
  who.className = "who"; who.textContent = post.name;
  const at = document.createElement("span");
  at.className = "when"; at.textContent = when(post.created);
  const prompt = document.createElement("p");
  prompt.className = "prompt"; prompt.textContent = post.prompt; prompt.title = post.prompt;
  const remove = document.createElement("button");
  remove.type = "button"; remove.className = "danger remove"; remove.textContent = "Take down";
  remove.setAttribute("aria-label", `Take down ${post.name}'s picture`);
  remove.addEventListener("click", async () => {
    if (!window.confirm(`Take ${post.name}'s picture off the wall?`)) return;
    try {
      await call(`/admin/api/wall/${encodeURIComponent(post.id)}/remove`, { method: "POST", body: "{}" });
      await refreshWall();
    } catch (error) { showProblem(error.message); }
  });
  caption.append(who, at, remove);
  card.append(img, caption, prompt);
  return card;
}

function showWall(wall) {
  $("wall-section").hidden = !wall.enabled;
  const seen = new Set(wall.posts.map((post) => post.id));
  for (const [id, card] of wallCards) {
    if (seen.has(id)) continue;
    if (card.dataset.url) URL.revokeObjectURL(card.dataset.url);
    wallCards.delete(id);
  }
  const cards = wall.posts.map((post) => {
    if (!wallCards.has(post.id)) wallCards.set(post.id, wallCard(post));
    return wallCards.get(post.id);
  });
  $("wall").replaceChildren(...cards);
  $("wall-empty").hidden = cards.length > 0;
  $("wall-count").textContent = cards.length ? `${cards.length} picture${cards.length === 1 ? "" : "s"}, newest first` : "";
}

async function refreshWall() { showWall(await call("/admin/api/wall")); }

async function refresh() {
  try {
    show(await call("/admin/api/room"));
    await refreshWall();
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
      await refreshWall();
      showProblem("");
      signedIn(true);
    } catch (error) {
      sessionStorage.removeItem(KEY);
      showProblem(error.message);
    }
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showWall({ enabled: false, posts: [] });
    signedIn(false);
  });
  $("wall-full").addEventListener("click", () => {
    const wall = $("wall-section");
    if (document.fullscreenElement) document.exitFullscreen();
    else if (wall.requestFullscreen) wall.requestFullscreen().catch((error) => showProblem(error.message));
  });
  document.addEventListener("fullscreenchange", () => {
    $("wall-full").textContent = document.fullscreenElement ? "Leave full screen" : "Show full screen";
  });
  $("pause").addEventListener("click", async () => {
    const paused = $("pause").dataset.paused === "yes";
    try {
      await call(`/admin/api/${paused ? "resume" : "pause"}`, { method: "POST", body: "{}" });
      await refresh();
    } catch (error) { showProblem(error.message); }
  });
  if (token()) { signedIn(true); refresh(); }
});
