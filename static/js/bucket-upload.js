// Upload one file straight to the media bucket: a presigned multipart upload, parts PUT a few
// at a time, each retried; the upload's id is kept in localStorage, so choosing the same file
// again after the tab closed or the network went resumes it, sending only the missing parts.
import { csrfToken } from "./csrf.js";

const PARALLEL = 4;
const TRIES = 4;

export class UploadError extends Error {}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch { /* an empty or non-JSON body */ }
  if (!response.ok) {
    const error = new UploadError(data.message || `the server answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function resumeKey(project, file) {
  return `cellabel-upload:${project}:${file.name}:${file.size}:${file.lastModified}`;
}

// PUT one part, reporting bytes sent; resolves when the store has it.
function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new UploadError(`the store answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new UploadError("network error")));
    xhr.send(blob);
  });
}

async function sendPart(upload, file, number, onProgress) {
  const start = (number - 1) * upload.part_size;
  const blob = file.slice(start, Math.min(start + upload.part_size, file.size));
  for (let attempt = 1; ; attempt++) {
    try {
      // A fresh URL each try: presigned URLs expire.
      const { urls } = await api("POST", `/api/uploads/${upload.id}/parts`, { parts: [number] });
      await putPart(urls[number], blob, onProgress);
      onProgress(blob.size);
      return;
    } catch (error) {
      onProgress(0);
      if (attempt >= TRIES || (error.status && error.status < 500)) throw error;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

// The upload to continue for this file (with the parts already sent, or completed), or a new one.
async function openUpload(project, file, subsets, say) {
  const saved = localStorage.getItem(resumeKey(project, file));
  if (saved) {
    try {
      const upload = await api("GET", `/api/uploads/${saved}`);
      if (upload.state === "open") {
        say(`Resuming upload: ${upload.parts_done.length} of ${upload.part_count} parts already uploaded`);
        return upload;
      }
      if (upload.state === "completed") return upload; // the answer was lost, not the upload
    } catch (error) {
      if (error.status !== 404 && error.status !== 409) throw error;
    }
    localStorage.removeItem(resumeKey(project, file));
  }
  const upload = await api("POST", `/api/projects/${project}/uploads`, {
    filename: file.name, size: file.size, content_type: file.type, subsets,
  });
  localStorage.setItem(resumeKey(project, file), String(upload.id));
  return upload;
}

// Upload `file` to the bucket; `progress(fraction)` and `say(text)` report to the page.
// Resolves with the server's outcome ({status, clip_id, message}); throws UploadError.
export async function uploadToBucket(project, file, subsets, progress, say) {
  const upload = await openUpload(project, file, subsets, say);
  if (upload.state === "completed") {
    localStorage.removeItem(resumeKey(project, file));
    return { status: "created", clip_id: upload.clip_id };
  }
  const done = new Set(upload.parts_done);
  const sent = new Map();
  const partBytes = (n) => Math.min(upload.part_size, file.size - (n - 1) * upload.part_size);
  let settled = [...done].reduce((sum, n) => sum + partBytes(n), 0);
  const report = () => {
    const moving = [...sent.values()].reduce((a, b) => a + b, 0);
    progress(file.size ? (settled + moving) / file.size : 1);
  };
  report();
  const todo = [];
  for (let n = 1; n <= upload.part_count; n++) if (!done.has(n)) todo.push(n);
  let failure = null;
  const runners = Array.from({ length: Math.min(PARALLEL, todo.length) }, async () => {
    while (todo.length && !failure) {
      const number = todo.shift();
      try {
        await sendPart(upload, file, number, (bytes) => { sent.set(number, bytes); report(); });
      } catch (error) {
        failure = error; // the other runners stop taking parts; a resume sends the rest
        return;
      }
      sent.delete(number);
      settled += partBytes(number);
      report();
    }
  });
  await Promise.all(runners);
  if (failure) throw failure;
  const outcome = await api("POST", `/api/uploads/${upload.id}/complete`);
  localStorage.removeItem(resumeKey(project, file));
  return outcome;
}
