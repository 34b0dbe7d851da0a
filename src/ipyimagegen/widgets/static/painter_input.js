// The mask painter's input layer: it lies over the painter's ipycanvas view (the same grid cell)
// and takes what ipycanvas's own events cannot give: pointer capture, buttons, pen pressure,
// modifier keys, Ctrl/⌘+wheel zoom around the pointer, space- and middle-drag panning, key-up and
// HiDPI. ipycanvas draws the picture and the mask, from the kernel.
//
// A stroke is drawn here at once and its points go to the kernel in small batches (continuous
// picture pixels). The kernel paints them into its mask, draws them into ipycanvas's mask layer,
// and ends the batch with a "stamp": a 4x1 ipycanvas canvas whose pixels say which stroke and how
// many of its points were drawn, which view, and the batch's number. When that stamp has reached this page's canvas
// model, ipycanvas has drawn the batch, and this layer drops its own drawing of those points.
// A zoom or pan shows at once as a CSS transform of the ipycanvas element, from the view
// ipycanvas last drew to the one wanted, until ipycanvas has drawn the new view.

const MASK_COLOUR = "rgb(255, 0, 255)";
const ERASE_COLOUR = "rgba(255, 255, 255, 0.75)";
const FLUSH_MS = 25;
const HOVER_MS = 30;
const VIEW_MS = 30;
const MIN_ZOOM = 0.02;
const MAX_ZOOM = 32;

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function smallButton(label, title, className) {
  const node = make("button", "ipyimagegen-zoom-button " + className, label);
  node.type = "button";
  node.title = title;
  node.setAttribute("aria-label", title);
  return node;
}

function typingSomewhere() {
  const active = document.activeElement;
  return !!active && (active.tagName === "TEXTAREA" || active.isContentEditable
    || (active.tagName === "INPUT" && active.type !== "checkbox" && active.type !== "range"));
}

// The stamp's three numbers, read from its PNG as ipycanvas synced it.
async function readStamp(bytes) {
  const blob = new Blob([bytes], { type: "image/png" });
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const canvas = document.createElement("canvas");
  canvas.width = 4;
  canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close?.();
  const d = ctx.getImageData(0, 0, 4, 1).data;
  const value = (i) => (d[4 * i] << 16) | (d[4 * i + 1] << 8) | d[4 * i + 2];
  return { stroke: value(0), points: value(1), view: value(2) };
}

function throttled(ms, send) {
  let timer = null;
  let last = 0;
  let wanted = null;
  const fire = () => {
    timer = null;
    last = performance.now();
    const value = wanted;
    wanted = null;
    send(value);
  };
  const post = (value, now = false) => {
    wanted = value;
    if (now) {
      if (timer !== null) clearTimeout(timer);
      fire();
    } else if (timer === null) {
      timer = setTimeout(fire, Math.max(0, ms - (performance.now() - last)));
    }
  };
  post.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return post;
}

async function render({ model, el }) {
  el.classList.add("ipyimagegen-painter-input");
  const box = make("div", "ipyimagegen-painter-box");
  box.tabIndex = 0;
  box.setAttribute("role", "application");
  box.setAttribute("aria-label", "Mask painter: paint the area to regenerate");
  const surface = make("canvas", "ipyimagegen-painter-layer ipyimagegen-mask-canvas");
  const hint = make("div", "ipyimagegen-painter-hint");
  const bar = make("div", "ipyimagegen-zoom-bar");
  const zoomOut = smallButton("−", "Zoom out", "ipyimagegen-zoom-out");
  const fitButton = smallButton("Fit", "Fit the picture in the view (F)", "ipyimagegen-zoom-fit");
  const actualButton = smallButton("100%", "One picture pixel per screen pixel (1)", "ipyimagegen-zoom-100");
  const zoomIn = smallButton("+", "Zoom in", "ipyimagegen-zoom-in");
  const zoomLabel = make("span", "ipyimagegen-zoom-label");
  bar.append(zoomOut, fitButton, actualButton, zoomIn, zoomLabel);
  const compareBar = make("div", "ipyimagegen-compare-bar");
  const compareLabel = make("label", "ipyimagegen-compare-toggle");
  const compareBox = make("input");
  compareBox.type = "checkbox";
  compareLabel.append(compareBox, document.createTextNode(" Before / after"));
  const compareSlider = make("input", "ipyimagegen-compare-slider");
  compareSlider.type = "range";
  compareSlider.min = "0";
  compareSlider.max = "1000";
  compareSlider.value = "500";
  compareSlider.title = "Drag: the picture before on the left, the result on the right";
  compareBar.append(compareLabel, compareSlider);
  box.append(surface, hint, bar, compareBar);
  el.append(box);
  const ctx = surface.getContext("2d");

  // -- state --------------------------------------------------------------------------------
  let width = 0; // the picture, in picture pixels (0: none)
  let height = 0;
  let pictureVersion = -1;
  let view = { scale: 1, tx: 0, ty: 0, fit: true };
  let boxSize = { w: 1, h: 1 };
  let dpr = window.devicePixelRatio || 1;
  // Each page numbers its views from a point of its own: two pages of one painter never confuse
  // each other's views in the stamp.
  const pageId = Math.random().toString(36).slice(2, 10);
  let viewVersion = Math.floor(Math.random() * 0x7fffff);
  const views = new Map(); // version -> the view sent with it (scale, tx, ty, width)
  let drawn = null; // the view ipycanvas last drew
  let pointer = null; // {x, y} in box CSS pixels
  let gesture = null; // {kind: stroke|rect|pan|move, ...}
  let spaceDown = false;
  let strokeId = 0;
  let pending = []; // strokes and rectangles drawn here that ipycanvas has not drawn yet
  let outbox = null; // {id, tool, points, pressures, sent}
  let flushTimer = null;

  // -- geometry -----------------------------------------------------------------------------
  const toPicture = (x, y) => [(x - view.tx) / view.scale, (y - view.ty) / view.scale];
  const fitScale = () => (width && height ? Math.min(boxSize.w / width, boxSize.h / height) : 1);
  // The brush's size is in this page's pixels when the picture fits the view (as the kernel takes it).
  const radius = () => Math.max(0.71, model.get("brush_size") / 2 / fitScale());

  function canvasElement() {
    const parent = el.parentElement;
    const node = parent ? parent.querySelector(":scope > .ipyimagegen-painter-canvas") : null;
    // ipycanvas makes its canvas a tab stop that swallows every key, Tab included: keys belong to
    // this layer, so the canvas is taken out of the tab order (a keyboard user is not trapped).
    if (node && node.tabIndex !== -1) node.tabIndex = -1;
    return node;
  }

  // The painter may take no more of the height than the part of the page that scrolls shows (the
  // window in Voila, the notebook's panel in JupyterLab): the stage's CSS reads it from here.
  function scrollBox(node) {
    for (let n = node.parentElement; n; n = n.parentElement) {
      const overflow = getComputedStyle(n).overflowY;
      if ((overflow === "auto" || overflow === "scroll") && n.clientHeight > 0 && n.scrollHeight > n.clientHeight + 1) return n;
    }
    return null;
  }

  function fitWindow() {
    const stage = el.parentElement;
    if (!stage) return;
    const scroller = scrollBox(stage);
    const height = scroller ? scroller.clientHeight : window.innerHeight;
    const value = `${Math.round(height)}px`;
    if (stage.style.getPropertyValue("--ipyimagegen-window") !== value) stage.style.setProperty("--ipyimagegen-window", value);
  }

  function layoutBox() {
    const [fitW, fitH] = model.get("box");
    box.style.maxWidth = `${fitW}px`;
    box.style.aspectRatio = `${fitW} / ${fitH}`;
    const rect = box.getBoundingClientRect();
    const w = Math.max(1, rect.width);
    const h = Math.max(1, rect.height || (w * fitH) / fitW);
    const ratio = window.devicePixelRatio || 1;
    const changed = Math.abs(w - boxSize.w) > 0.5 || Math.abs(h - boxSize.h) > 0.5 || ratio !== dpr;
    boxSize = { w, h };
    dpr = ratio;
    const bw = Math.round(w * dpr);
    const bh = Math.round(h * dpr);
    if (surface.width !== bw || surface.height !== bh) {
      surface.width = bw;
      surface.height = bh;
    }
    if (view.fit || changed) setFit(view.fit);
    if (changed) sendView(true);
    drawAll();
  }

  function setFit(keepFit = true) {
    const scale = fitScale();
    view = { scale, tx: (boxSize.w - width * scale) / 2, ty: (boxSize.h - height * scale) / 2, fit: keepFit };
  }

  function zoomAt(factor, x, y) {
    const scale = Math.min(MAX_ZOOM, Math.max(Math.min(MIN_ZOOM, fitScale()), view.scale * factor));
    const k = scale / view.scale;
    view = { scale, tx: x - (x - view.tx) * k, ty: y - (y - view.ty) * k, fit: false };
    viewChanged();
  }

  function zoomTo(scale) {
    zoomAt(scale / view.scale, boxSize.w / 2, boxSize.h / 2);
  }

  // -- the view: ipycanvas draws it; until it has, a CSS transform shows it -----------------
  const postView = throttled(VIEW_MS, () => {
    viewVersion = (viewVersion + 1) & 0xffffff;
    const sent = { scale: view.scale, tx: view.tx, ty: view.ty, width: boxSize.w, height: boxSize.h, dpr };
    views.set(viewVersion, sent);
    model.send({ kind: "view", version: viewVersion, page: pageId, ...sent });
  });

  function sendView(now = false) {
    if (width) postView(null, now);
  }

  function viewChanged(now = false) {
    sendView(now);
    showPreview();
    drawAll();
  }

  function showPreview() {
    const node = canvasElement();
    if (!node) return;
    if (!drawn || !width) {
      node.style.transform = "";
      return;
    }
    // What ipycanvas drew, in this page's CSS pixels (its canvas fills the box's width).
    const r = boxSize.w / (drawn.width || boxSize.w);
    const k = view.scale / (drawn.scale * r);
    const ex = view.tx - k * drawn.tx * r;
    const ey = view.ty - k * drawn.ty * r;
    const still = Math.abs(k - 1) < 1e-6 && Math.abs(ex) < 0.01 && Math.abs(ey) < 0.01;
    node.style.transformOrigin = "0 0";
    node.style.transform = still ? "" : `matrix(${k}, 0, 0, ${k}, ${ex}, ${ey})`;
  }

  function reportZoom() {
    zoomLabel.textContent = `${Math.round(view.scale * 100)}%`;
  }

  // -- what ipycanvas has drawn -------------------------------------------------------------
  function onStamp(stamp) {
    const sent = views.get(stamp.view);
    if (sent) {
      drawn = sent;
      for (const version of views.keys()) if (version < stamp.view) views.delete(version);
    }
    const before = pending.length;
    pending = pending.filter((item) => {
      if (item.id > stamp.stroke) return true;
      if (item.id < stamp.stroke || item.tool === "rectangle") return false;
      if (item.ended && stamp.points * 2 >= item.points.length) return false;
      item.from = Math.max(item.from, stamp.points);
      return true;
    });
    showPreview();
    if (before || pending.length) drawSurface();
  }

  let stampQueue = Promise.resolve();
  let stampModel = null;
  async function watchStamp() {
    const ref = model.get("stamp");
    if (typeof ref !== "string" || !ref.startsWith("IPY_MODEL_")) return;
    stampModel = await model.widget_manager.get_model(ref.slice("IPY_MODEL_".length));
    stampModel.on("change:image_data", onStampData);
  }
  function onStampData() {
    const bytes = stampModel.get("image_data");
    if (!bytes) return;
    stampQueue = stampQueue.then(async () => onStamp(await readStamp(bytes)))
      .catch((error) => console.error("ipyimagegen painter stamp:", error));
  }

  // -- drawing what is in progress ----------------------------------------------------------
  function segments(points, first, last, r, pressures) {
    // The stroke's segments ending at points first..last (a lone point is a dot).
    for (let n = first; n <= last; n++) {
      const i = 2 * n;
      const j = n > 0 ? i - 2 : i;
      ctx.lineWidth = 2 * r * (pressures ? pressures[n] : 1);
      ctx.beginPath();
      ctx.moveTo(points[j], points[j + 1]);
      ctx.lineTo(points[i], points[i + 1]);
      ctx.stroke();
    }
  }

  function strokePath(points, from, r, pressures) {
    // Points from `from` on are not in ipycanvas's mask layer yet; those before are, and the few
    // just before are cut out again, so the join is not drawn twice (a darker spot).
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const count = points.length / 2;
    segments(points, from, count - 1, r, pressures);
    if (from > 0) {
      ctx.globalCompositeOperation = "destination-out";
      segments(points, Math.max(0, from - 8), from - 1, r, pressures);
      ctx.globalCompositeOperation = "source-over";
    }
  }

  function drawSurface() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, surface.width, surface.height);
    surface.style.opacity = String(model.get("opacity"));
    if (!width) return;
    ctx.setTransform(dpr * view.scale, 0, 0, dpr * view.scale, dpr * view.tx, dpr * view.ty);
    for (const item of pending) {
      ctx.fillStyle = ctx.strokeStyle = item.tool === "eraser" ? ERASE_COLOUR : MASK_COLOUR;
      if (item.tool === "rectangle") {
        const [x0, y0, x1, y1] = item.points;
        ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      } else {
        strokePath(item.points, item.from, item.radius, item.pressures);
      }
    }
    const g = gesture;
    if (g && g.kind === "rect") {
      const [x0, y0] = g.start;
      const [x1, y1] = g.last;
      ctx.fillStyle = MASK_COLOUR;
      ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    }
    if (g && g.kind === "move") {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      surface.style.opacity = "1";
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "rgba(0, 120, 215, 0.95)";
      ctx.strokeRect(view.tx + g.shift[0] * view.scale, view.ty + g.shift[1] * view.scale,
        width * view.scale, height * view.scale);
      ctx.setLineDash([]);
    }
  }

  function drawAll() {
    hint.textContent = model.get("hint");
    hint.style.display = width ? "none" : "flex";
    bar.style.display = width ? "flex" : "none";
    const comparing = model.get("comparing") || [];
    compareBar.style.display = comparing.length && width ? "flex" : "none";
    if (comparing.length) {
      compareBox.checked = !!comparing[0];
      if (document.activeElement !== compareSlider) compareSlider.value = String(Math.round(comparing[1] * 1000));
    }
    reportZoom();
    drawSurface();
    setCursorStyle();
  }

  function setCursorStyle() {
    const tool = model.get("tool");
    let cursor = "crosshair";
    if (gesture && gesture.kind === "pan") cursor = "grabbing";
    else if (spaceDown) cursor = "grab";
    else if (tool === "move") cursor = "move";
    if (surface.style.cursor !== cursor) surface.style.cursor = cursor;
  }

  // -- talking to the kernel ----------------------------------------------------------------
  function flush(end) {
    if (flushTimer !== null) {
      clearTimeout(flushTimer);
      flushTimer = null;
    }
    if (!outbox) return;
    const from = outbox.sent;
    const points = outbox.points.slice(from * 2);
    if (!points.length && !end) return;
    const message = { kind: "stroke", id: outbox.id, tool: outbox.tool, points, first: from === 0, end: !!end,
      picture: outbox.picture };
    if (outbox.pressures) message.pressures = outbox.pressures.slice(from);
    model.send(message);
    outbox.sent = outbox.points.length / 2;
    if (end) outbox = null;
  }

  function scheduleFlush() {
    if (flushTimer === null) flushTimer = setTimeout(() => { flushTimer = null; flush(false); }, FLUSH_MS);
  }

  const postHover = throttled(HOVER_MS, (point) => {
    model.send(point ? { kind: "hover", x: point[0], y: point[1] } : { kind: "hover", x: null });
  });

  // -- pointer ------------------------------------------------------------------------------
  function local(event) {
    const rect = surface.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  function pressureOf(event) {
    return event.pointerType === "pen" && event.pressure > 0 ? Math.max(0.2, Math.min(1, event.pressure)) : null;
  }

  function onDown(event) {
    if (!width) return;
    box.focus({ preventScroll: true });
    const p = local(event);
    pointer = p;
    const tool = model.get("tool");
    if (event.button === 1 || (event.button === 0 && spaceDown)) {
      gesture = { kind: "pan", from: [p.x, p.y], origin: [view.tx, view.ty] };
    } else if (event.button !== 0 || compareBox.checked && compareBar.style.display !== "none") {
      return;
    } else if (tool === "brush" || tool === "eraser") {
      const [x, y] = toPicture(p.x, p.y);
      strokeId = (strokeId + 1) & 0xffffff;
      const pressure = pressureOf(event);
      const stroke = { id: strokeId, tool, radius: radius(), points: [x, y], from: 0, ended: false,
        pressures: pressure === null ? null : [pressure] };
      pending.push(stroke);
      outbox = { id: strokeId, tool, points: stroke.points, pressures: stroke.pressures, sent: 0,
        picture: pictureVersion };
      gesture = { kind: "stroke", stroke, last: [x, y] };
      flush(false); // the first point at once: the kernel starts the stroke (and its ring) now
    } else if (tool === "rectangle") {
      const start = toPicture(p.x, p.y);
      gesture = { kind: "rect", start, last: start };
    } else if (tool === "wand") {
      const [x, y] = toPicture(p.x, p.y);
      if (x >= 0 && y >= 0 && x < width && y < height) {
        model.send({ kind: "wand", x, y, subtract: event.altKey || model.get("wand_mode") === "subtract",
          picture: pictureVersion });
      }
      return;
    } else if (tool === "move") {
      gesture = { kind: "move", from: [p.x, p.y], shift: [0, 0] };
    } else {
      return;
    }
    event.preventDefault();
    try {
      surface.setPointerCapture(event.pointerId); // the stroke goes on outside the view
    } catch (error) {
      // a pointer the browser does not know (a synthetic event): nothing to capture
    }
    drawSurface();
    setCursorStyle();
  }

  function onMove(event) {
    if (!width) return;
    const p = local(event);
    pointer = p;
    const g = gesture;
    const events = g && g.kind === "stroke" && event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    if (g && g.kind === "stroke") {
      for (const each of events.length ? events : [event]) {
        const q = local(each);
        const [x, y] = toPicture(q.x, q.y);
        const [lx, ly] = g.last;
        if (x === lx && y === ly) continue;
        g.stroke.points.push(x, y);
        if (g.stroke.pressures) g.stroke.pressures.push(pressureOf(each) ?? 1);
        g.last = [x, y];
      }
      drawSurface();
      scheduleFlush();
    } else if (g && g.kind === "rect") {
      g.last = toPicture(p.x, p.y);
      drawSurface();
    } else if (g && g.kind === "pan") {
      view = { ...view, tx: g.origin[0] + p.x - g.from[0], ty: g.origin[1] + p.y - g.from[1], fit: false };
      viewChanged();
    } else if (g && g.kind === "move") {
      g.shift = [(p.x - g.from[0]) / view.scale, (p.y - g.from[1]) / view.scale];
      drawSurface();
      postMoving(g.shift);
    }
    // During a stroke the kernel draws the ring at the stroke's last point: no hover messages then.
    if (!g || g.kind !== "stroke") postHover(toPicture(p.x, p.y));
  }

  const postMoving = throttled(VIEW_MS, (shift) => model.send({ kind: "moving", dx: shift[0], dy: shift[1],
    picture: pictureVersion }));

  function onUp() {
    const g = gesture;
    if (!g) return;
    gesture = null;
    if (g.kind === "stroke") {
      g.stroke.ended = true;
      flush(true);
    } else if (g.kind === "rect") {
      const [x0, y0] = g.start;
      const [x1, y1] = g.last;
      if (x0 !== x1 && y0 !== y1) {
        strokeId = (strokeId + 1) & 0xffffff;
        pending.push({ id: strokeId, tool: "rectangle", radius: 0, points: [x0, y0, x1, y1], from: 0, ended: true });
        model.send({ kind: "rect", id: strokeId, points: [x0, y0, x1, y1], picture: pictureVersion });
      }
    } else if (g.kind === "move") {
      const [dx, dy] = g.shift;
      postMoving.cancel(); // no shift may come after the drop
      model.send({ kind: "move", dx, dy, picture: pictureVersion });
    } else if (g.kind === "pan") {
      sendView(true);
    }
    drawSurface();
    setCursorStyle();
  }

  function onLeave() {
    pointer = null;
    if (!gesture) postHover(null, true);
  }

  function onWheel(event) {
    if (!width || !(event.ctrlKey || event.metaKey)) return; // a plain wheel scrolls the page
    event.preventDefault();
    const p = local(event);
    zoomAt(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.002)), p.x, p.y);
  }

  function setTrait(name, value) {
    model.set(name, value);
    model.save_changes();
  }

  function onKey(event) {
    if (!width) return;
    const key = event.key;
    const command = event.ctrlKey || event.metaKey;
    const tools = model.get("tool_keys") || {};
    if (key === " ") {
      if (!spaceDown) { spaceDown = true; setCursorStyle(); }
      event.preventDefault();
    } else if (gesture && gesture.kind !== "pan") {
      return; // keys that change the mask or the tool wait until the stroke or drag is over
    } else if (command && key.toLowerCase() === "z") {
      model.send({ kind: event.shiftKey ? "redo" : "undo" });
      event.preventDefault();
    } else if (command && key.toLowerCase() === "y") {
      model.send({ kind: "redo" });
      event.preventDefault();
    } else if (command) {
      return;
    } else if (key === "[" || key === "]") {
      const size = model.get("brush_size");
      const step = Math.max(1, Math.floor(size / 5));
      setTrait("brush_size", Math.max(1, Math.min(model.get("max_brush"), size + (key === "]" ? step : -step))));
      event.preventDefault();
    } else if (tools[key.toLowerCase()]) {
      setTrait("tool", tools[key.toLowerCase()]);
      event.preventDefault();
    } else if (key === "ArrowLeft" || key === "ArrowRight") {
      model.send({ kind: "cycle", step: key === "ArrowLeft" ? -1 : 1 }); // an edit's results, one by one
      event.preventDefault();
    } else if (key === "f" || key === "F") {
      setFit(true); viewChanged(true);
    } else if (key === "1") {
      zoomTo(1);
    } else if (key === "+" || key === "=") {
      zoomAt(1.25, boxSize.w / 2, boxSize.h / 2);
    } else if (key === "-") {
      zoomAt(0.8, boxSize.w / 2, boxSize.h / 2);
    }
  }

  function onKeyUp(event) {
    if (event.key === " ") { spaceDown = false; setCursorStyle(); }
  }

  function onOver() {
    // Keys work while the pointer is over the picture, without a click that would paint.
    if (document.activeElement !== box && !typingSomewhere()) box.focus({ preventScroll: true });
  }

  const postCompare = throttled(VIEW_MS, () => {
    model.send({ kind: "compare", on: compareBox.checked, split: Number(compareSlider.value) / 1000 });
  });

  surface.addEventListener("pointerdown", onDown);
  surface.addEventListener("pointermove", onMove);
  surface.addEventListener("pointerup", onUp);
  surface.addEventListener("pointercancel", onUp);
  surface.addEventListener("pointerleave", onLeave);
  surface.addEventListener("pointerover", onOver);
  surface.addEventListener("contextmenu", (event) => { if (gesture) event.preventDefault(); });
  surface.addEventListener("auxclick", (event) => event.preventDefault());
  box.addEventListener("wheel", onWheel, { passive: false });
  box.addEventListener("keydown", onKey);
  box.addEventListener("keyup", onKeyUp);
  box.addEventListener("blur", () => { spaceDown = false; });
  zoomOut.addEventListener("click", () => zoomAt(0.8, boxSize.w / 2, boxSize.h / 2));
  zoomIn.addEventListener("click", () => zoomAt(1.25, boxSize.w / 2, boxSize.h / 2));
  fitButton.addEventListener("click", () => { setFit(true); viewChanged(true); });
  actualButton.addEventListener("click", () => zoomTo(1));
  compareBox.addEventListener("change", () => postCompare(null, true));
  compareSlider.addEventListener("input", () => postCompare(null));
  for (const node of [zoomOut, zoomIn, fitButton, actualButton, compareBar]) {
    node.addEventListener("pointerdown", (event) => event.stopPropagation());
  }

  // -- from the kernel ----------------------------------------------------------------------
  function onMessage(content) {
    if (!content || typeof content !== "object") return;
    if (content.event === "state") {
      const [w, h] = content.picture || [0, 0];
      const newPicture = content.version !== pictureVersion;
      pictureVersion = content.version;
      width = w || 0;
      height = h || 0;
      strokeId = Math.max(strokeId, content.upto || 0);
      const kernelView = content.view;
      views.clear();
      viewVersion = Math.max(viewVersion, kernelView.version);
      views.set(kernelView.version, kernelView);
      drawn = kernelView;
      if (newPicture) {
        pending = [];
        outbox = null;
        gesture = null;
        setFit(true);
      }
      boxSize = { w: 0, h: 0 }; // measure again, and tell the kernel this page's view
      layoutBox();
      showPreview();
    } else if (content.event === "view") {
      if (content.mode === "fit") { setFit(true); viewChanged(true); }
      else if (typeof content.scale === "number") zoomTo(content.scale);
    } else if (content.event === "shown" && content.page !== pageId && content.view) {
      // Another page of this painter chose the view: ipycanvas shows it here too, so take it up
      // (in this page's pixels: the canvas fills this box's width).
      const shown = content.view;
      const r = boxSize.w / (shown.width || boxSize.w);
      views.set(shown.version, shown);
      drawn = shown;
      if (!gesture) view = { scale: shown.scale * r, tx: shown.tx * r, ty: shown.ty * r, fit: false };
      showPreview();
      drawAll();
    }
  }

  const listeners = {
    "msg:custom": onMessage,
    "change:opacity": () => drawSurface(),
    "change:tool": () => setCursorStyle(),
    "change:comparing": () => drawAll(),
    "change:hint": () => drawAll(),
    "change:box": () => layoutBox(),
  };
  for (const [name, listener] of Object.entries(listeners)) model.on(name, listener);
  const resize = new ResizeObserver(() => layoutBox());
  resize.observe(box);
  const dprQuery = () => window.matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`);
  let dprWatch = dprQuery();
  const onDpr = () => { dprWatch.removeEventListener("change", onDpr); dprWatch = dprQuery(); dprWatch.addEventListener("change", onDpr); layoutBox(); };
  dprWatch.addEventListener("change", onDpr);
  await watchStamp().catch((error) => console.error("ipyimagegen painter:", error));
  requestAnimationFrame(() => { canvasElement(); fitWindow(); }); // once the grid has both views
  window.addEventListener("resize", fitWindow);
  layoutBox();
  model.send({ kind: "want" });

  return () => {
    resize.disconnect();
    window.removeEventListener("resize", fitWindow);
    dprWatch.removeEventListener("change", onDpr);
    for (const [name, listener] of Object.entries(listeners)) model.off(name, listener);
    if (stampModel) stampModel.off("change:image_data", onStampData);
    if (flushTimer !== null) clearTimeout(flushTimer);
    const node = canvasElement();
    if (node) node.style.transform = "";
  };
}

export default { render };
