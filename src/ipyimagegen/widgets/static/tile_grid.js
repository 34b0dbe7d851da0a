// The tile grid: one widget for a page of result tiles, the image viewer over the page and the notices.
//
// State (small JSON) lives in the model's traits; thumbnails cross as binary buffers in custom
// messages and are kept here by tile id, so a change to one tile touches only that tile's DOM and
// adding results never rebuilds the others. The viewer's full picture crosses the same way (a
// message, sent before the details that name it), never in the model's state. The viewer and the
// notices are put on document.body, so they sit over the viewport wherever the grid is scrolled.

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, icon, className, title) {
  const node = make("button", "jupyter-button widget-button " + className);
  node.type = "button";
  if (title) node.title = title;
  if (icon) {
    const glyph = make("i", "fa fa-" + icon);
    glyph.setAttribute("aria-hidden", "true");
    node.appendChild(glyph);
  }
  if (label) node.appendChild(make("span", "ipyimagegen-button-label", label));
  if (!label && title) node.setAttribute("aria-label", title);
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function themeOf(el) {
  // JupyterLab's dark themes set data-jp-theme-light="false" on <body>; Voila's dark template a class.
  const body = document.body;
  const dark = body.dataset.jpThemeLight === "false" || body.classList.contains("theme-dark");
  return dark ? "dark" : "light";
}

function render({ model, el }) {
  el.classList.add("ipyimagegen-tilegrid");
  const pictures = new Map(); // tile id -> {version, url}
  const cards = new Map(); // tile id -> the tile's DOM parts
  let shownIds = new Set();

  const grid = make("div", "ipyimagegen-grid");
  grid.setAttribute("role", "list");
  const empty = make("div", "ipyimagegen-grid-empty");
  const pager = make("div", "ipyimagegen-pager");
  const newer = button("Newer", "chevron-left", "ipyimagegen-page-newer", "Show newer results");
  const older = button("Older", "chevron-right", "ipyimagegen-page-older", "Show older results");
  const where = make("span", "ipyimagegen-page-where");
  pager.append(newer, where, older);
  newer.addEventListener("click", () => model.send({ event: "page", by: -1 }));
  older.addEventListener("click", () => model.send({ event: "page", by: 1 }));
  el.append(grid, empty, pager);

  // -- tiles ------------------------------------------------------------------------------

  function makeCard(tile) {
    const root = make("div", "ipyimagegen-tile");
    root.setAttribute("role", "listitem");
    root.dataset.id = tile.id;
    const slot = make("div", "ipyimagegen-tile-slot");
    const placeholder = make("div", "ipyimagegen-placeholder");
    slot.appendChild(placeholder);
    const badge = make("span", "ipyimagegen-tile-badge"); // GIF, SVG: what the thumbnail stands for
    badge.style.display = "none";
    const prompt = make("div", "ipyimagegen-tile-prompt");
    const caption = make("div", "ipyimagegen-tile-caption");
    const select = make("label", "ipyimagegen-select");
    const box = make("input");
    box.type = "checkbox";
    box.title = "Select";
    select.appendChild(box);
    const label = make("span", "ipyimagegen-tile-label");
    caption.append(select, label);
    const actions = make("div", "ipyimagegen-tile-actions");
    const buttons = new Map();
    for (const action of model.get("actions")) {
      if (action.tile === false) continue; // a viewer-only action
      const node = button(action.label, action.icon, "ipyimagegen-" + action.name, action.tooltip);
      node.dataset.label = action.label;
      node.disabled = true;
      node.addEventListener("click", () => {
        if (action.name === "enlarge") opening = true;
        model.send({ event: "action", id: tile.id, name: action.name });
      });
      actions.appendChild(node);
      buttons.set(action.name, node);
    }
    box.addEventListener("change", () => model.send({ event: "select", id: tile.id, value: box.checked }));
    slot.addEventListener("click", () => {
      const enlarge = buttons.get("enlarge");
      if (enlarge && !enlarge.disabled) enlarge.click();
    });
    root.append(slot, badge, prompt, caption, actions);
    return { root, slot, placeholder, img: null, badge, prompt, box, select, label, buttons, version: -1 };
  }

  function showPicture(card, tile) {
    const picture = pictures.get(tile.id);
    if (!picture || card.version === picture.version) return;
    if (!card.img) {
      card.img = make("img", "ipyimagegen-tile-image");
      card.img.alt = card.prompt.textContent || "a result";
      card.slot.replaceChildren(card.img);
    }
    card.img.src = picture.url;
    card.version = picture.version;
  }

  function updateCard(card, tile) {
    if (!tile.picture && card.img) {
      card.img = null;
      card.version = -1;
      card.slot.replaceChildren(card.placeholder);
    }
    setText(card.placeholder, tile.placeholder || "waiting…");
    showPicture(card, tile);
    setText(card.prompt, tile.prompt || "a variation (no prompt)");
    if (card.img) card.img.alt = card.prompt.textContent;
    card.prompt.classList.toggle("ipyimagegen-no-prompt", !tile.prompt);
    card.prompt.title = tile.prompt || "";
    setText(card.label, tile.label);
    card.label.title = tile.label;
    setText(card.badge, tile.badge || "");
    card.badge.title = tile.badge_title || "";
    card.badge.style.display = tile.badge ? "" : "none";
    card.box.disabled = !tile.selectable;
    card.box.checked = !!tile.selected;
    card.root.classList.toggle("ipyimagegen-tile-waiting", !tile.picture);
    const enabled = new Set(tile.enabled || []);
    const labels = tile.labels || {};
    const danger = new Set(tile.danger || []);
    for (const [name, node] of card.buttons) {
      node.disabled = !enabled.has(name);
      node.classList.toggle("mod-danger", danger.has(name));
      const text = labels[name] || node.dataset.label || "";
      let span = node.querySelector(".ipyimagegen-button-label");
      if (text && !span) {
        span = make("span", "ipyimagegen-button-label");
        node.appendChild(span);
      }
      if (span) setText(span, text);
      if (!node.dataset.label) node.setAttribute("aria-label", text || node.title);
    }
  }

  function renderTiles() {
    const tiles = model.get("tiles");
    const seen = new Set();
    let previous = null;
    for (const tile of tiles) {
      let card = cards.get(tile.id);
      if (!card) {
        card = makeCard(tile);
        cards.set(tile.id, card);
      }
      updateCard(card, tile);
      const wanted = previous ? previous.nextSibling : grid.firstChild;
      if (wanted !== card.root) grid.insertBefore(card.root, wanted);
      previous = card.root;
      seen.add(tile.id);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.root.remove();
        cards.delete(id);
      }
    }
    for (const id of shownIds) {
      // a tile that left the page frees its picture (the kernel sends it again if it comes back)
      const picture = pictures.get(id);
      if (!seen.has(id) && picture) {
        URL.revokeObjectURL(picture.url);
        pictures.delete(id);
      }
    }
    shownIds = seen;
    const missing = tiles
      .filter((tile) => tile.picture && (!pictures.has(tile.id) || pictures.get(tile.id).version < tile.picture))
      .map((tile) => tile.id);
    if (missing.length) model.send({ event: "want", ids: missing });
    setText(empty, tiles.length ? "" : model.get("empty_text"));
    empty.style.display = tiles.length || !model.get("empty_text") ? "none" : "";
  }

  function renderPager() {
    const page = model.get("page");
    pager.style.display = page.pages > 1 ? "" : "none";
    newer.disabled = page.index <= 0;
    older.disabled = page.index >= page.pages - 1;
    setText(where, page.total ? `${page.first}–${page.last} of ${page.total}` : "");
  }

  function takePictures(items, buffers) {
    items.forEach((item, i) => {
      const old = pictures.get(item.id);
      if (old && old.version >= item.version) return;
      if (old) URL.revokeObjectURL(old.url);
      const url = URL.createObjectURL(new Blob([buffers[i]], { type: item.mime }));
      pictures.set(item.id, { version: item.version, url });
      const card = cards.get(item.id);
      if (card) showPicture(card, { id: item.id, prompt: "" });
    });
  }

  // -- the viewer over the page ---------------------------------------------------------------

  let viewer = null;
  let picture = null; // the viewer's full picture: {number, url, data, mime}
  let wanted = null; // the picture number last asked for
  let viewerImage = null;
  let viewerSave = null;
  let beforeUrl = null;
  let showingBefore = false;
  let pendingFlip = null;

  function flipBefore(toggle, image, id) {
    if (!beforeUrl) {
      pendingFlip = () => flipBefore(toggle, image, id);
      model.send({ event: "viewer", do: "before", id });
      return;
    }
    showingBefore = !showingBefore;
    image.src = showingBefore ? beforeUrl : picture ? picture.url : "";
    toggle.querySelector(".ipyimagegen-button-label").textContent = showingBefore ? "After" : "Before";
    viewer.classList.toggle("ipyimagegen-lightbox-showing-before", showingBefore);
  }
  let opening = false;
  let opener = null;

  function closeViewer(tell) {
    if (!viewer) return;
    viewer.remove();
    viewer = null;
    document.removeEventListener("keydown", onKey, true);
    if (picture) URL.revokeObjectURL(picture.url);
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    picture = beforeUrl = wanted = viewerImage = viewerSave = null;
    if (tell) model.send({ event: "viewer", do: "close" });
    if (opener && document.contains(opener)) opener.focus({ preventScroll: true });
    opener = null;
  }

  function onKey(event) {
    if (!viewer) return;
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeViewer(true);
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      const target = event.target;
      if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
      event.preventDefault();
      event.stopPropagation();
      model.send({ event: "viewer", do: "step", by: event.key === "ArrowLeft" ? -1 : 1 });
    } else if (event.key === "b" || event.key === "B") {
      const toggle = viewer.querySelector(".ipyimagegen-lightbox-before");
      const target = event.target;
      if (!toggle || (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA"))) return;
      event.preventDefault();
      toggle.click();
    }
  }

  function download(data, mime, name) {
    const url = URL.createObjectURL(new Blob([data], { type: mime || "application/octet-stream" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  function renderViewer() {
    const state = model.get("viewer");
    if (!state || !state.open) {
      closeViewer(false);
      return;
    }
    const fresh = !viewer;
    if (fresh) {
      opener = opening ? document.activeElement : null;
      viewer = make("div", "ipyimagegen-lightbox ipyimagegen-theme-" + themeOf(el));
      viewer.setAttribute("role", "dialog");
      viewer.setAttribute("aria-modal", "true");
      viewer.tabIndex = -1;
      document.body.appendChild(viewer);
      document.addEventListener("keydown", onKey, true);
    }
    opening = false;
    viewer.setAttribute("aria-label", state.title);
    const backdrop = make("div", "ipyimagegen-lightbox-backdrop");
    backdrop.addEventListener("click", () => closeViewer(true));
    const panel = make("div", "ipyimagegen-lightbox-panel");
    const stage = make("div", "ipyimagegen-lightbox-stage");
    const previous = button("", "chevron-left", "ipyimagegen-lightbox-previous", "Previous result (←)");
    const next = button("", "chevron-right", "ipyimagegen-lightbox-next", "Next result (→)");
    previous.disabled = !state.has_previous;
    next.disabled = !state.has_next;
    previous.addEventListener("click", () => model.send({ event: "viewer", do: "step", by: -1 }));
    next.addEventListener("click", () => model.send({ event: "viewer", do: "step", by: 1 }));
    const image = make("img", "ipyimagegen-preview-image");
    image.alt = state.prompt || state.title;
    if (state.mime === "image/svg+xml" && state.size && state.size[0] > 0 && state.size[1] > 0) {
      // A drawing scales: as large as the viewer allows, in its own shape. It is shown as an image
      // (a blob: URL of type image/svg+xml in an <img>), never put into the page, so a script in it
      // cannot run.
      image.classList.add("ipyimagegen-preview-vector");
      const ratio = state.size[0] / state.size[1];
      image.style.width = `min(calc(100vw - 420px), 1400px, calc((100vh - 56px) * ${ratio}))`;
      image.style.aspectRatio = `${state.size[0]} / ${state.size[1]}`;
    }
    viewerImage = image;
    stage.append(previous, image, next);
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    beforeUrl = null;
    showingBefore = false;
    const side = make("div", "ipyimagegen-lightbox-details");
    const close = button("", "times", "ipyimagegen-lightbox-close", "Close (Esc)");
    close.addEventListener("click", () => closeViewer(true));
    side.append(close, make("h3", "ipyimagegen-lightbox-title", state.title));
    if (state.prompt) side.appendChild(make("p", "ipyimagegen-lightbox-prompt", state.prompt));
    if (state.revised_prompt) {
      const revised = make("details", "ipyimagegen-lightbox-revised");
      revised.append(make("summary", "", "Revised by the model"), make("p", "", state.revised_prompt));
      side.appendChild(revised);
    }
    const facts = make("dl", "ipyimagegen-lightbox-facts");
    for (const [term, value] of state.facts || []) facts.append(make("dt", "", term), make("dd", "", value));
    side.appendChild(facts);
    const actions = make("div", "ipyimagegen-lightbox-actions");
    if (state.has_before) {
      const toggle = button("Before", "exchange", "ipyimagegen-lightbox-before", "Show the picture this edit started from (B)");
      toggle.addEventListener("click", () => flipBefore(toggle, image, state.id));
      actions.appendChild(toggle);
    }
    const save = button("Download", "download", "ipyimagegen-lightbox-download", "Download the full image");
    save.addEventListener("click", () => {
      if (picture) download(picture.data, picture.mime, state.filename);
    });
    viewerSave = save;
    actions.appendChild(save);
    for (const action of model.get("actions")) {
      if (!(state.actions || []).includes(action.name)) continue;
      const node = button(action.label, action.icon, "ipyimagegen-lightbox-" + action.name, action.tooltip);
      node.addEventListener("click", () => {
        if (action.keeps_viewer) node.disabled = true;
        else closeViewer(false);
        model.send({ event: "action", id: state.id, name: action.name, from: "viewer" });
      });
      actions.appendChild(node);
    }
    side.appendChild(actions);
    panel.append(stage, side);
    viewer.replaceChildren(backdrop, panel);
    showViewerPicture();
    if (fresh) viewer.focus({ preventScroll: true });
  }

  function showViewerPicture() {
    // The picture the details name: shown when it is here, asked for once when it is not (a page
    // opened after the viewer was, or a reload).
    const state = model.get("viewer");
    if (!viewer || !state || !state.open) return;
    const here = picture && picture.number === state.picture;
    if (here) viewerImage.src = picture.url;
    else if (wanted !== state.picture) {
      wanted = state.picture;
      model.send({ event: "viewer", do: "want" });
    }
    viewerSave.disabled = !here;
  }

  function takeViewerPicture(message, data) {
    if (picture) URL.revokeObjectURL(picture.url);
    const mime = message.mime || "application/octet-stream";
    picture = { number: message.picture, url: URL.createObjectURL(new Blob([data], { type: mime })), data, mime };
    // The details that name it come next; a page that asked for it shows it now.
    const state = model.get("viewer");
    if (state && state.picture === picture.number && !showingBefore) showViewerPicture();
  }

  // -- notices where the user is looking ----------------------------------------------------

  let toasts = null;
  const timers = new Set();

  function renderNotice() {
    const notice = model.get("notice");
    if (!notice || !notice.html) return;
    if (!toasts || !document.body.contains(toasts)) {
      toasts = make("div", "ipyimagegen-toasts");
      toasts.setAttribute("aria-live", "polite");
      document.body.appendChild(toasts);
    }
    toasts.className = "ipyimagegen-toasts ipyimagegen-theme-" + themeOf(el);
    const toast = make("div", "ipyimagegen-toast ipyimagegen-toast-" + notice.kind);
    toast.setAttribute("role", notice.kind === "error" ? "alert" : "status");
    const text = make("span", "ipyimagegen-toast-text ipyimagegen-" + notice.kind);
    text.innerHTML = notice.html; // built and escaped by the kernel
    const close = button("", "times", "ipyimagegen-toast-close", "Dismiss");
    close.addEventListener("click", () => toast.remove());
    toast.append(text, close);
    while (toasts.children.length >= 3) toasts.firstChild.remove();
    toasts.appendChild(toast);
    const lasts = notice.kind === "error" ? 15000 : 6000;
    const timer = setTimeout(() => {
      toast.remove();
      timers.delete(timer);
    }, lasts);
    timers.add(timer);
  }

  // -- messages from the kernel ---------------------------------------------------------------

  function onMessage(message, buffers) {
    if (!message) return;
    if (message.event === "pictures") takePictures(message.items, buffers);
    else if (message.event === "viewer_picture" && buffers && buffers.length) takeViewerPicture(message, buffers[0]);
    else if (message.event === "file" && buffers && buffers.length) download(buffers[0], message.mime, message.name);
    else if (message.event === "reveal") reveal(message.selector, message.block, message.focus);
    else if (message.event === "before" && buffers && buffers.length && viewer) {
      const state = model.get("viewer");
      if (!state || state.id !== message.id) return;
      if (beforeUrl) URL.revokeObjectURL(beforeUrl);
      beforeUrl = URL.createObjectURL(new Blob([buffers[0]], { type: message.mime }));
      if (pendingFlip) {
        const flip = pendingFlip;
        pendingFlip = null;
        flip();
      }
    }
  }

  function reveal(selector, block, focus) {
    // Bring the studio part an action sent something to into view ("start": its top at the top of
    // the window; "nearest": only if it is not in view), and put the cursor there.
    // ``focus``: a selector inside it to focus, or "" to leave the focus where it is.
    const scope = el.closest(".ipyimagegen-studio") || document;
    requestAnimationFrame(() => {  // after the tiles or tab just changed are laid out
      const found = Array.from(scope.querySelectorAll(selector)).filter((node) => node.offsetParent !== null);
      const target = found[0];
      if (!target) return;
      target.scrollIntoView({ block: block || "center", behavior: block === "start" ? "auto" : "smooth" });
      let focusable = null;
      if (focus) focusable = target.querySelector(focus);
      else if (focus !== "") {
        focusable = target.matches("textarea, input, button, canvas, [tabindex]")
          ? target
          : target.querySelector("textarea, input, canvas, [tabindex]");
      }
      if (focusable) focusable.focus({ preventScroll: true });
    });
  }

  const listeners = [
    ["change:tiles", renderTiles],
    ["change:page", renderPager],
    ["change:viewer", renderViewer],
    ["change:notice", renderNotice],
    ["msg:custom", onMessage],
  ];
  for (const [event, handler] of listeners) model.on(event, handler);
  renderTiles();
  renderPager();
  renderViewer();

  return () => {
    for (const [event, handler] of listeners) model.off(event, handler);
    closeViewer(false);
    if (toasts) toasts.remove();
    for (const timer of timers) clearTimeout(timer);
    for (const picture of pictures.values()) URL.revokeObjectURL(picture.url);
    pictures.clear();
  };
}

export default { render };
