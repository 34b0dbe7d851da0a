// The file button's page side: files chosen, dropped or pasted are sent to the kernel in pieces.
//
// Jupyter's websocket refuses a message over 10 MiB and drops the connection, so a file never
// crosses in one message. An upload is:
//   {event: "upload-start", id, files: [{name, type, size, last_modified}]}   every file chosen
//   {event: "upload-chunk", id, file, offset} + one buffer of at most chunk_bytes, in order
//   {event: "upload-end", id}                                                 all pieces sent
//   {event: "upload-cancel", id, reason}                                      the page gave up
// A file over max_bytes is listed in the start (so the kernel can say why it is not used) but
// none of it is read or sent. The kernel answers each piece with {event: "upload-progress", id,
// received} and at most `window` pieces are in flight; {event: "upload-stop", id} from the
// kernel ends an upload at once. Choosing new files stops the upload in flight.

const WINDOW = 4; // pieces sent and not yet acknowledged
const STALL_MS = 60_000; // no answer for this long: the upload is given up

function megabytes(n) {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function render({ model, el }) {
  const input = document.createElement("input");
  input.type = "file";
  input.style.display = "none";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jupyter-button widget-button ipyimagegen-file-button";
  const glyph = document.createElement("i");
  glyph.className = "fa fa-upload";
  glyph.setAttribute("aria-hidden", "true");
  const label = document.createElement("span");
  label.style.marginLeft = "4px";
  button.append(glyph, label);
  const note = document.createElement("span");
  note.className = "ipyimagegen-file-note";
  note.setAttribute("aria-live", "polite");
  const show = () => {
    label.textContent = model.get("description");
    button.title = model.get("tooltip") || model.get("description");
    button.disabled = model.get("disabled");
    input.accept = model.get("accept");
    input.multiple = model.get("multiple");
    note.textContent = model.get("note");
  };
  show();
  for (const name of ["description", "tooltip", "disabled", "accept", "multiple", "note"]) {
    model.on("change:" + name, show);
  }

  // -- sending ------------------------------------------------------------------------------
  let current = null; // the upload in flight: {id, stopped, acked, wake}
  const stop = (job) => {
    job.stopped = true;
    if (job.wake) job.wake();
  };
  const answered = (job) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), STALL_MS);
      job.wake = () => {
        clearTimeout(timer);
        job.wake = null;
        resolve(true);
      };
    });
  const onMessage = (content) => {
    if (!current || !content || content.id !== current.id) return;
    if (content.event === "upload-progress" && Number.isFinite(content.received)) {
      current.acked = Math.max(current.acked, content.received);
      if (current.wake) current.wake();
    } else if (content.event === "upload-stop") {
      stop(current);
    }
  };
  model.on("msg:custom", onMessage);

  const send = async (chosen) => {
    let files = Array.from(chosen || []);
    if (!model.get("multiple")) files = files.slice(0, 1);
    if (!files.length || button.disabled) return;
    if (current) stop(current); // a new choice replaces the upload in flight
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const job = { id, stopped: false, acked: 0, wake: null };
    current = job;
    const limit = model.get("max_bytes");
    const chunk = model.get("chunk_bytes");
    const fits = (file) => !limit || file.size <= limit;
    const tooLarge = files.filter((file) => !fits(file));
    note.textContent = tooLarge.length
      ? `${tooLarge.map((f) => f.name).join(", ")}: ${megabytes(tooLarge[0].size)}, over the ${megabytes(limit)} limit`
      : "sending…";
    model.send({
      event: "upload-start",
      id,
      files: files.map((f) => ({ name: f.name, type: f.type, size: f.size, last_modified: f.lastModified })),
    });
    let sent = 0;
    try {
      for (let index = 0; index < files.length; index++) {
        const file = files[index];
        if (!fits(file)) continue; // never read: the kernel says why from its size
        for (let offset = 0; offset < file.size; offset += chunk) {
          while (!job.stopped && sent - job.acked >= WINDOW * chunk) {
            if (!(await answered(job))) {
              stop(job);
              model.send({ event: "upload-cancel", id, reason: "the kernel stopped answering" });
              note.textContent = "The upload stalled: choose the file again.";
            }
          }
          if (job.stopped) return;
          const piece = await file.slice(offset, offset + chunk).arrayBuffer();
          if (job.stopped) return;
          model.send({ event: "upload-chunk", id, file: index, offset }, undefined, [piece]);
          sent += piece.byteLength;
        }
      }
      if (!job.stopped) model.send({ event: "upload-end", id });
    } catch (error) {
      if (!job.stopped) {
        stop(job);
        const reason = (error && (error.message || error.name)) || String(error);
        model.send({ event: "upload-cancel", id, reason: `the browser could not read the file (${reason})` });
      }
    } finally {
      if (current === job) current = null;
    }
  };
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = "";
    send(files);
  });
  el.append(button, note, input);

  // Files dropped anywhere on the area this picker serves, or pasted while that area is in view.
  let area = null;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  const onDragOver = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    area.classList.add("ipyimagegen-drop-here");
  };
  const onDragLeave = (event) => {
    if (!area.contains(event.relatedTarget)) area.classList.remove("ipyimagegen-drop-here");
  };
  const onDrop = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    area.classList.remove("ipyimagegen-drop-here");
    send(event.dataTransfer.files);
  };
  const onPaste = (event) => {
    if (!area || area.offsetParent === null) return; // its tab is not the one shown
    const target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT") && !area.contains(target)) return;
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []).filter((f) =>
      f.type.startsWith("image/"),
    );
    if (!files.length) return;
    event.preventDefault();
    send(
      files.map((f, i) =>
        f.name && f.name !== "image.png"
          ? f
          : new File([f], `pasted-${i + 1}.${f.type.split("/")[1] || "png"}`, { type: f.type }),
      ),
    );
  };
  const attach = () => {
    const scope = model.get("drop_area");
    if (!scope) return true;
    area = el.closest(scope);
    if (!area) return false;
    area.addEventListener("dragover", onDragOver);
    area.addEventListener("dragleave", onDragLeave);
    area.addEventListener("drop", onDrop);
    document.addEventListener("paste", onPaste);
    return true;
  };
  let tries = 0;
  const retry = () => {
    if (!attach() && ++tries < 100) setTimeout(retry, 100);
  };
  retry();
  return () => {
    if (current) stop(current);
    model.off("msg:custom", onMessage);
    for (const name of ["description", "tooltip", "disabled", "accept", "multiple", "note"]) {
      model.off("change:" + name, show);
    }
    if (!area) return;
    area.removeEventListener("dragover", onDragOver);
    area.removeEventListener("dragleave", onDragLeave);
    area.removeEventListener("drop", onDrop);
    document.removeEventListener("paste", onPaste);
  };
}
export default { render };
