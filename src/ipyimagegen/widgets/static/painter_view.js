// The mask painter's view: the picture and its mask at full resolution, zoomed and panned in the
// page, with strokes drawn here first and sent to the kernel in batches.
//
// The kernel keeps the mask (a bool array at the picture's resolution) and is the authority: after
// each stroke or operation it sends back the changed region, bit-packed, with the number of the
// last stroke it has applied; strokes this page drew since are drawn again over it, so nothing
// painted flickers away. Coordinates sent to the kernel are continuous picture pixels.

const MASK_RGBA = [255, 0, 255, 255];
const FLUSH_MS = 40;
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

function checkerboard(ctx) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 16;
  const t = tile.getContext("2d");
  t.fillStyle = "#ffffff";
  t.fillRect(0, 0, 16, 16);
  t.fillStyle = "#d9d9d9";
  t.fillRect(0, 0, 8, 8);
  t.fillRect(8, 8, 8, 8);
  return ctx.createPattern(tile, "repeat");
}

async function decode(buffer, mime) {
  const blob = new Blob([buffer], { type: mime });
  return await createImageBitmap(blob);
}

function render({ model, el }) {
  el.classList.add("ipyimagegen-painter-view");
  const box = make("div", "ipyimagegen-painter-box");
  box.tabIndex = 0;
  box.setAttribute("role", "application");
  box.setAttribute("aria-label", "Mask painter: paint the area to regenerate");
  const layers = [0, 1, 2].map((index) => {
    const canvas = make("canvas", "ipyimagegen-painter-layer");
    canvas.style.zIndex = String(index);
    box.appendChild(canvas);
    return canvas;
  });
  const [imageLayer, maskLayer, cursorLayer] = layers;
  cursorLayer.classList.add("ipyimagegen-mask-canvas");
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
  compareSlider.title = "Drag: the result on the left, the picture before on the right";
  compareBar.append(compareLabel, compareSlider);
  box.append(hint, bar);
  el.append(box, compareBar);

  // -- state --------------------------------------------------------------------------------
  let picture = null; // ImageBitmap
  let pictureVersion = -1;
  let after = null; // ImageBitmap of the result to compare with
  let width = 0;
  let height = 0;
  const maskCanvas = document.createElement("canvas");
  const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: false });
  let view = { scale: 1, tx: 0, ty: 0, fit: true };
  let boxSize = { w: 1, h: 1 };
  let dpr = window.devicePixelRatio || 1;
  let pointer = null; // {x, y} in box CSS pixels
  let gesture = null; // {kind: stroke|rect|pan|move|wand, ...}
  let spaceDown = false;
  let strokeId = 0;
  let pending = []; // strokes drawn here the kernel has not confirmed: {id, tool, radius, points}
  let outbox = null; // {id, tool, points, sentUpTo}
  let flushTimer = null;
  let pattern = null;

  const contexts = layers.map((canvas) => canvas.getContext("2d"));
  const [imageCtx, maskViewCtx, cursorCtx] = contexts;

  // -- geometry -----------------------------------------------------------------------------
  const toPicture = (x, y) => [(x - view.tx) / view.scale, (y - view.ty) / view.scale];
  const fitScale = () => (width && height ? Math.min(boxSize.w / width, boxSize.h / height) : 1);
  const radius = () => {
    const fitted = model.get("box")[0] || 1;
    return Math.max(0.71, (model.get("brush_size") / 2) * (width / fitted));
  };

  function layoutBox() {
    const [fitW, fitH] = model.get("box");
    const border = box.offsetWidth - box.clientWidth; // the frame around the picture, both sides
    box.style.maxWidth = `${fitW + border}px`;
    box.style.aspectRatio = `${fitW + border} / ${fitH + border}`;
    const rect = cursorLayer.getBoundingClientRect();
    const w = Math.max(1, rect.width);
    const h = Math.max(1, rect.height || (w * fitH) / fitW);
    dpr = window.devicePixelRatio || 1;
    const changed = Math.abs(w - boxSize.w) > 0.5 || Math.abs(h - boxSize.h) > 0.5;
    boxSize = { w, h };
    for (const canvas of layers) {
      const bw = Math.round(w * dpr);
      const bh = Math.round(h * dpr);
      if (canvas.width !== bw || canvas.height !== bh) {
        canvas.width = bw;
        canvas.height = bh;
      }
    }
    if (view.fit || changed) setFit(view.fit);
    drawAll();
  }

  function setFit(keepFit = true) {
    const scale = fitScale();
    view = {
      scale,
      tx: (boxSize.w - width * scale) / 2,
      ty: (boxSize.h - height * scale) / 2,
      fit: keepFit,
    };
  }

  function zoomAt(factor, x, y) {
    const scale = Math.min(MAX_ZOOM, Math.max(Math.min(MIN_ZOOM, fitScale()), view.scale * factor));
    const k = scale / view.scale;
    view = { scale, tx: x - (x - view.tx) * k, ty: y - (y - view.ty) * k, fit: false };
    drawAll();
  }

  function zoomTo(scale) {
    zoomAt(scale / view.scale, boxSize.w / 2, boxSize.h / 2);
  }

  function reportZoom() {
    zoomLabel.textContent = `${Math.round(view.scale * 100)}%`;
    if (Math.abs((model.get("zoom") || 0) - view.scale) > 1e-4) {
      model.set("zoom", view.scale);
      model.save_changes();
    }
  }

  // -- drawing ------------------------------------------------------------------------------
  function transform(ctx) {
    ctx.setTransform(dpr * view.scale, 0, 0, dpr * view.scale, dpr * view.tx, dpr * view.ty);
  }

  function drawImage() {
    const ctx = imageCtx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, imageLayer.width, imageLayer.height);
    if (!picture) return;
    transform(ctx);
    ctx.imageSmoothingEnabled = view.scale < 2;
    if (!pattern) pattern = checkerboard(ctx);
    const shift = gesture && gesture.kind === "move" ? gesture.shift : [0, 0];
    ctx.save();
    ctx.setTransform(dpr, 0, 0, dpr, dpr * view.tx, dpr * view.ty);
    ctx.fillStyle = pattern;
    ctx.fillRect(0, 0, width * view.scale, height * view.scale);
    ctx.restore();
    transform(ctx);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, width, height);
    ctx.clip();
    ctx.drawImage(picture, shift[0], shift[1]);
    const split = comparing() ? (Number(compareSlider.value) / 1000) * width : 0;
    if (split > 0) {
      ctx.beginPath();
      ctx.rect(0, 0, split, height);
      ctx.clip();
      ctx.drawImage(after, 0, 0, width, height);
    }
    ctx.restore();
  }

  function drawMask(region) {
    // region: [x, y, w, h] in picture pixels, or undefined for all of it.
    const ctx = maskViewCtx;
    maskLayer.style.opacity = String(model.get("opacity"));
    const hidden = comparing() || (gesture && gesture.kind === "move");
    const feather = model.get("feather") || 0;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (!region || hidden || !picture) {
      ctx.clearRect(0, 0, maskLayer.width, maskLayer.height);
      if (hidden || !picture) return;
      region = [0, 0, width, height];
    }
    const pad = feather * 3 + 2;
    let [x, y, w, h] = region;
    x = Math.max(0, Math.floor(x - pad));
    y = Math.max(0, Math.floor(y - pad));
    w = Math.min(width, Math.ceil(region[0] + region[2] + pad)) - x;
    h = Math.min(height, Math.ceil(region[1] + region[3] + pad)) - y;
    if (w <= 0 || h <= 0) return;
    transform(ctx);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, w, h);
    ctx.clip();
    ctx.clearRect(x, y, w, h);
    ctx.imageSmoothingEnabled = view.scale < 2;
    ctx.filter = feather > 0 ? `blur(${feather * view.scale * dpr}px)` : "none";
    // With a feather, the blur needs the pixels around the region: draw a margin of them.
    const m = feather > 0 ? Math.ceil(feather * 3) : 0;
    const sx = Math.max(0, x - m);
    const sy = Math.max(0, y - m);
    const sw = Math.min(width, x + w + m) - sx;
    const sh = Math.min(height, y + h + m) - sy;
    ctx.drawImage(maskCanvas, sx, sy, sw, sh, sx, sy, sw, sh);
    ctx.restore();
    ctx.filter = "none";
  }

  function drawCursor() {
    const ctx = cursorCtx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, cursorLayer.width, cursorLayer.height);
    if (!picture) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const placement = model.get("placement");
    if (placement && placement.length === 4) {
      const shift = gesture && gesture.kind === "move" ? gesture.shift : [0, 0];
      const [px, py, pw, ph] = placement;
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "rgba(0, 120, 215, 0.95)";
      ctx.strokeRect(view.tx + (px + shift[0]) * view.scale, view.ty + (py + shift[1]) * view.scale,
        pw * view.scale, ph * view.scale);
      ctx.setLineDash([]);
    }
    if (comparing()) {
      const x = view.tx + (Number(compareSlider.value) / 1000) * width * view.scale;
      ctx.fillStyle = "white";
      ctx.fillRect(x - 1, view.ty, 2, height * view.scale);
      ctx.font = "12px sans-serif";
      ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
      ctx.fillRect(view.tx + 4, view.ty + 4, 42, 18);
      ctx.fillRect(view.tx + width * view.scale - 50, view.ty + 4, 46, 18);
      ctx.fillStyle = "white";
      ctx.fillText("After", view.tx + 10, view.ty + 17);
      ctx.fillText("Before", view.tx + width * view.scale - 45, view.ty + 17);
      return;
    }
    if (gesture && gesture.kind === "rect") {
      const [x0, y0] = gesture.start;
      const [x1, y1] = gesture.last;
      const left = view.tx + Math.min(x0, x1) * view.scale;
      const top = view.ty + Math.min(y0, y1) * view.scale;
      const w = Math.abs(x1 - x0) * view.scale;
      const h = Math.abs(y1 - y0) * view.scale;
      ctx.fillStyle = `rgba(255, 0, 255, ${model.get("opacity")})`;
      ctx.fillRect(left, top, w, h);
      ctx.lineWidth = 1;
      ctx.strokeStyle = "white";
      ctx.strokeRect(left, top, w, h);
      return;
    }
    if (!pointer || spaceDown || (gesture && gesture.kind === "pan")) return;
    const tool = model.get("tool");
    const { x, y } = pointer;
    const shapes = [];
    if (tool === "brush" || tool === "eraser") {
      shapes.push(() => { ctx.beginPath(); ctx.arc(x, y, radius() * view.scale, 0, 2 * Math.PI); ctx.stroke(); });
    } else if (tool === "rectangle" || tool === "wand") {
      shapes.push(() => { ctx.beginPath(); ctx.moveTo(x - 8, y); ctx.lineTo(x + 8, y); ctx.moveTo(x, y - 8); ctx.lineTo(x, y + 8); ctx.stroke(); });
    }
    for (const [lineWidth, colour] of [[3, "rgba(0, 0, 0, 0.6)"], [1, "white"]]) {
      ctx.lineWidth = lineWidth;
      ctx.strokeStyle = colour;
      for (const draw of shapes) draw();
    }
  }

  function drawAll() {
    hint.textContent = model.get("hint");
    hint.style.display = picture ? "none" : "flex";
    bar.style.display = picture ? "flex" : "none";
    compareBar.style.display = after && picture ? "flex" : "none";
    drawImage();
    drawMask();
    drawCursor();
    reportZoom();
    setCursorStyle();
  }

  function setCursorStyle() {
    const tool = model.get("tool");
    let cursor = "crosshair";
    if (gesture && gesture.kind === "pan") cursor = "grabbing";
    else if (spaceDown) cursor = "grab";
    else if (tool === "move") cursor = "move";
    else if (tool === "brush" || tool === "eraser") cursor = "none";
    if (cursorLayer.style.cursor !== cursor) cursorLayer.style.cursor = cursor;
  }

  const comparing = () => !!after && compareBox.checked;

  // -- the mask here ------------------------------------------------------------------------
  function paintSegment(tool, r, x0, y0, x1, y1) {
    const ctx = maskCtx;
    ctx.globalCompositeOperation = tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = `rgba(${MASK_RGBA.join(",")})`;
    ctx.lineWidth = 2 * r;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (x0 === x1 && y0 === y1) {
      ctx.arc(x0, y0, r, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      ctx.stroke();
    }
    ctx.globalCompositeOperation = "source-over";
    return [Math.min(x0, x1) - r - 1, Math.min(y0, y1) - r - 1, Math.abs(x1 - x0) + 2 * r + 2, Math.abs(y1 - y0) + 2 * r + 2];
  }

  function replay(stroke) {
    const p = stroke.points;
    if (stroke.tool === "rectangle") {
      const [x0, y0, x1, y1] = p;
      maskCtx.fillStyle = `rgba(${MASK_RGBA.join(",")})`;
      maskCtx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      return;
    }
    for (let i = 0; i + 1 < p.length; i += 2) {
      const j = i >= 2 ? i - 2 : i;
      paintSegment(stroke.tool, stroke.radius, p[j], p[j + 1], p[i], p[i + 1]);
    }
  }

  function applyRegion(content, buffer) {
    const { x, y, w, h } = content;
    // The kernel has every stroke up to `upto`: strokes drawn here since are drawn again below.
    pending = pending.filter((stroke) => stroke.id > content.upto);
    if (!width || w <= 0 || h <= 0 || x + w > width || y + h > height) return;
    const bits = new Uint8Array(buffer.buffer || buffer, buffer.byteOffset || 0, buffer.byteLength);
    const pixels = new ImageData(w, h);
    const words = new Uint32Array(pixels.data.buffer);
    const on = (MASK_RGBA[3] << 24) | (MASK_RGBA[2] << 16) | (MASK_RGBA[1] << 8) | MASK_RGBA[0];
    const count = w * h;
    for (let i = 0; i < count; i++) {
      if ((bits[i >> 3] >> (7 - (i & 7))) & 1) words[i] = on;
    }
    maskCtx.putImageData(pixels, x, y);
    for (const stroke of pending) replay(stroke);
    drawMask([x, y, w, h]);
  }

  // -- talking to the kernel ----------------------------------------------------------------
  function flush(end) {
    if (flushTimer !== null) {
      clearTimeout(flushTimer);
      flushTimer = null;
    }
    if (!outbox) return;
    const points = outbox.points.slice(outbox.sent);
    if (!points.length && !end) return;
    model.send({ kind: "stroke", id: outbox.id, tool: outbox.tool, points, first: outbox.sent === 0, end: !!end });
    outbox.sent = outbox.points.length;
    if (end) outbox = null;
  }

  function scheduleFlush() {
    if (flushTimer === null) flushTimer = setTimeout(() => { flushTimer = null; flush(false); }, FLUSH_MS);
  }

  // -- pointer ------------------------------------------------------------------------------
  function local(event) {
    const rect = cursorLayer.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  function onDown(event) {
    if (!picture) return;
    box.focus({ preventScroll: true });
    const p = local(event);
    pointer = p;
    const tool = model.get("tool");
    if (event.button === 1 || (event.button === 0 && spaceDown)) {
      gesture = { kind: "pan", from: [p.x, p.y], origin: [view.tx, view.ty] };
    } else if (event.button !== 0 || comparing()) {
      return;
    } else if (tool === "brush" || tool === "eraser") {
      const [x, y] = toPicture(p.x, p.y);
      strokeId += 1;
      const stroke = { id: strokeId, tool, radius: radius(), points: [x, y] };
      pending.push(stroke);
      outbox = { id: strokeId, tool, points: stroke.points, sent: 0 };
      gesture = { kind: "stroke", stroke, last: [x, y] };
      drawMask(paintSegment(tool, stroke.radius, x, y, x, y));
      scheduleFlush();
    } else if (tool === "rectangle") {
      const start = toPicture(p.x, p.y);
      gesture = { kind: "rect", start, last: start };
    } else if (tool === "wand") {
      const [x, y] = toPicture(p.x, p.y);
      if (x >= 0 && y >= 0 && x < width && y < height) {
        model.send({ kind: "wand", x, y, subtract: event.altKey || model.get("wand_mode") === "subtract" });
      }
      return;
    } else if (tool === "move") {
      gesture = { kind: "move", from: [p.x, p.y], shift: [0, 0] };
      drawMask();
    } else {
      return;
    }
    event.preventDefault();
    try {
      cursorLayer.setPointerCapture(event.pointerId); // the stroke goes on outside the view
    } catch (error) {
      // a pointer the browser does not know (a synthetic event): nothing to capture
    }
    drawCursor();
    setCursorStyle();
  }

  function onMove(event) {
    if (!picture) return;
    const p = local(event);
    pointer = p;
    const g = gesture;
    if (g && g.kind === "stroke") {
      const [x, y] = toPicture(p.x, p.y);
      const [lx, ly] = g.last;
      if (x !== lx || y !== ly) {
        g.stroke.points.push(x, y);
        g.last = [x, y];
        drawMask(paintSegment(g.stroke.tool, g.stroke.radius, lx, ly, x, y));
        scheduleFlush();
      }
    } else if (g && g.kind === "rect") {
      g.last = toPicture(p.x, p.y);
    } else if (g && g.kind === "pan") {
      view = { ...view, tx: g.origin[0] + p.x - g.from[0], ty: g.origin[1] + p.y - g.from[1], fit: false };
      drawImage();
      drawMask();
    } else if (g && g.kind === "move") {
      g.shift = [(p.x - g.from[0]) / view.scale, (p.y - g.from[1]) / view.scale];
      drawImage();
    }
    drawCursor();
  }

  function onUp(event) {
    const g = gesture;
    if (!g) return;
    gesture = null;
    if (g.kind === "stroke") {
      flush(true);
    } else if (g.kind === "rect") {
      const [x0, y0] = g.start;
      const [x1, y1] = g.last;
      if (x0 !== x1 && y0 !== y1) {
        strokeId += 1;
        const stroke = { id: strokeId, tool: "rectangle", radius: 0, points: [x0, y0, x1, y1] };
        pending.push(stroke);
        replay(stroke);
        drawMask([Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0)]);
        model.send({ kind: "rect", id: strokeId, points: [x0, y0, x1, y1] });
      }
    } else if (g.kind === "move") {
      const [dx, dy] = g.shift;
      if (dx || dy) model.send({ kind: "move", dx, dy });
      drawAll();
    } else if (g.kind === "pan") {
      reportZoom();
    }
    drawCursor();
    setCursorStyle();
  }

  function onLeave() {
    pointer = null;
    if (!gesture) drawCursor();
  }

  function onWheel(event) {
    if (!picture || !(event.ctrlKey || event.metaKey)) return; // a plain wheel scrolls the page
    event.preventDefault();
    const p = local(event);
    zoomAt(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.002)), p.x, p.y);
  }

  function setTrait(name, value) {
    model.set(name, value);
    model.save_changes();
  }

  function onKey(event) {
    if (!picture) return;
    const key = event.key;
    const command = event.ctrlKey || event.metaKey;
    const tools = model.get("tool_keys") || {};
    if (key === " ") {
      if (!spaceDown) { spaceDown = true; setCursorStyle(); drawCursor(); }
      event.preventDefault();
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
    } else if (key === "f" || key === "F") {
      setFit(true); drawAll();
    } else if (key === "1") {
      zoomTo(1);
    } else if (key === "+" || key === "=") {
      zoomAt(1.25, boxSize.w / 2, boxSize.h / 2);
    } else if (key === "-") {
      zoomAt(0.8, boxSize.w / 2, boxSize.h / 2);
    }
  }

  function onKeyUp(event) {
    if (event.key === " ") { spaceDown = false; setCursorStyle(); drawCursor(); }
  }

  function onOver() {
    // Keys work while the pointer is over the picture, without a click that would paint.
    if (document.activeElement !== box && !typingSomewhere()) box.focus({ preventScroll: true });
  }

  cursorLayer.addEventListener("pointerdown", onDown);
  cursorLayer.addEventListener("pointermove", onMove);
  cursorLayer.addEventListener("pointerup", onUp);
  cursorLayer.addEventListener("pointercancel", onUp);
  cursorLayer.addEventListener("pointerleave", onLeave);
  cursorLayer.addEventListener("pointerover", onOver);
  cursorLayer.addEventListener("contextmenu", (event) => { if (gesture) event.preventDefault(); });
  cursorLayer.addEventListener("auxclick", (event) => event.preventDefault());
  box.addEventListener("wheel", onWheel, { passive: false });
  box.addEventListener("keydown", onKey);
  box.addEventListener("keyup", onKeyUp);
  box.addEventListener("blur", () => { spaceDown = false; });
  zoomOut.addEventListener("click", () => zoomAt(0.8, boxSize.w / 2, boxSize.h / 2));
  zoomIn.addEventListener("click", () => zoomAt(1.25, boxSize.w / 2, boxSize.h / 2));
  fitButton.addEventListener("click", () => { setFit(true); drawAll(); });
  actualButton.addEventListener("click", () => zoomTo(1));
  compareBox.addEventListener("change", () => drawAll());
  compareSlider.addEventListener("input", () => { drawImage(); drawCursor(); });
  for (const node of [zoomOut, zoomIn, fitButton, actualButton]) {
    node.addEventListener("pointerdown", (event) => event.stopPropagation());
  }

  // -- from the kernel ----------------------------------------------------------------------
  let newest = -1;
  async function onMessage(content, buffers) {
    if (!content || typeof content !== "object") return;
    if (content.event === "picture") {
      const version = content.version;
      newest = version;
      if (!buffers || !buffers.length) {
        picture = null; width = height = 0; pending = []; outbox = null; gesture = null;
        drawAll();
        return;
      }
      const bitmap = await decode(buffers[0], content.mime);
      if (version !== newest) { bitmap.close?.(); return; }
      if (picture) picture.close?.();
      picture = bitmap;
      pictureVersion = version;
      width = content.width;
      height = content.height;
      maskCanvas.width = width;
      maskCanvas.height = height;
      pending = [];
      outbox = null;
      gesture = null;
      if (after) { after.close?.(); after = null; } // a comparison belongs to the picture before
      if (!content.keep_view || !view.scale) setFit(true);
      layoutBox();
    } else if (content.event === "mask") {
      if (content.version !== pictureVersion || !buffers || !buffers.length) return;
      if (content.clear) maskCtx.clearRect(0, 0, width, height);
      applyRegion(content, buffers[0]);
    } else if (content.event === "after") {
      if (after) after.close?.();
      after = buffers && buffers.length ? await decode(buffers[0], content.mime) : null;
      compareBox.checked = !!after && !!content.show;
      drawAll();
    } else if (content.event === "view") {
      if (content.mode === "fit") { setFit(true); drawAll(); }
      else if (typeof content.scale === "number") zoomTo(content.scale);
    }
  }
  // One message at a time, in order: a mask waits for the picture before it to be decoded.
  let queue = Promise.resolve();
  const onCustom = (content, buffers) => {
    queue = queue.then(() => onMessage(content, buffers)).catch((error) => console.error("ipyimagegen painter:", error));
  };
  const listeners = {
    "msg:custom": onCustom,
    "change:opacity": () => { maskLayer.style.opacity = String(model.get("opacity")); },
    "change:feather": () => drawMask(),
    "change:tool": () => { drawCursor(); setCursorStyle(); },
    "change:brush_size": () => drawCursor(),
    "change:placement": () => drawAll(),
    "change:hint": () => drawAll(),
    "change:box": () => layoutBox(),
  };
  for (const [name, listener] of Object.entries(listeners)) model.on(name, listener);
  const resize = new ResizeObserver(() => layoutBox());
  resize.observe(box);
  layoutBox();
  model.send({ kind: "want" });

  return () => {
    resize.disconnect();
    for (const [name, listener] of Object.entries(listeners)) model.off(name, listener);
    if (flushTimer !== null) clearTimeout(flushTimer);
    if (picture) picture.close?.();
    if (after) after.close?.();
  };
}

export default { render };
