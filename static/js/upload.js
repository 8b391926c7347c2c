// Multi-file upload: one request per file with its own progress bar; failures can be retried
// safely because the server de-duplicates by content hash. With an object store the file goes
// straight to the bucket instead (bucket-upload.js), resumable.
import { uploadToBucket } from "./bucket-upload.js";
import { csrfToken } from "./csrf.js";

const section = document.getElementById("upload");
const form = document.getElementById("upload-form");
const list = document.getElementById("upload-list");

function uploadOne(file, subsets, row) {
  const bar = row.querySelector("progress");
  const status = row.querySelector(".status");
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/projects/${section.dataset.project}/clips`);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 200 && body.status !== "error") {
        showOutcome(body, row);
      } else {
        status.textContent = body.message || `failed (${xhr.status})`;
        row.dataset.result = "error";
        addRetry(file, subsets, row);
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      status.textContent = "network error";
      row.dataset.result = "error";
      addRetry(file, subsets, row);
      resolve();
    });
    const data = new FormData();
    data.append("file", file);
    data.append("subsets", subsets.join(","));
    xhr.send(data);
  });
}

function showOutcome(body, row) {
  const status = row.querySelector(".status");
  row.querySelector("progress").value = 1;
  status.textContent = body.status === "duplicate" ? `duplicate of clip ${body.clip_id}` : `uploaded as clip ${body.clip_id}`;
  row.dataset.result = body.status;
}

async function uploadToStore(file, subsets, row) {
  const bar = row.querySelector("progress");
  const status = row.querySelector(".status");
  const note = row.querySelector(".note");
  status.textContent = "uploading";
  try {
    const outcome = await uploadToBucket(
      section.dataset.project, file, subsets,
      (fraction) => { bar.value = fraction; },
      (text) => { note.textContent = text; },
    );
    showOutcome(outcome, row);
  } catch (error) {
    const refused = error.status && error.status < 500; // too large, not a video, ...
    status.textContent = refused ? error.message : `${error.message}; choose the same file again (or Retry) to resume`;
    row.dataset.result = "error";
    addRetry(file, subsets, row);
  }
}

function uploadFile(file, subsets, row) {
  return section.dataset.direct === "bucket" ? uploadToStore(file, subsets, row) : uploadOne(file, subsets, row);
}

function addRetry(file, subsets, row) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Retry";
  button.addEventListener("click", () => { button.remove(); uploadFile(file, subsets, row).then(refresh); });
  row.append(button);
}

function refresh() {
  const table = document.getElementById("clip-table");
  if (table && window.htmx) window.htmx.trigger(table, "refresh");
}

const input = form?.querySelector("input[type=file]");
const message = document.getElementById("upload-message");

function say(text) {
  message.textContent = text;
  message.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

input?.addEventListener("change", () => say(""));

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = [...input.files];
  if (!files.length) {
    say("Choose one or more video files first.");
    input.focus();
    return;
  }
  say("");
  const subsets = [...form.querySelectorAll("input[name=subsets]:checked")].map((i) => i.value);
  const jobs = files.map((file) => {
    const row = document.createElement("li");
    row.dataset.file = file.name;
    row.innerHTML = `<span class="name"></span> <progress max="1" value="0"></progress> <span class="status">waiting</span> <span class="note"></span>`;
    row.querySelector(".name").textContent = file.name;
    list.append(row);
    return () => uploadFile(file, subsets, row);
  });
  // Two at a time: parallel enough to hide latency, gentle on the server.
  const queue = [...jobs];
  const runners = [0, 1].map(async () => { while (queue.length) await queue.shift()(); });
  await Promise.all(runners);
  form.reset();
  refresh();
});
