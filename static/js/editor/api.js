// JSON calls to the CelLabel API with the page's CSRF token; errors carry status and body.
import { csrfToken } from "../csrf.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

export const KEEPALIVE_LIMIT = 60_000; // bytes: browsers refuse larger keepalive bodies

// `keepalive` lets the request finish when the page is left meanwhile (small bodies only).
export async function api(method, url, body, { keepalive = false } = {}) {
  const json = body === undefined ? undefined : JSON.stringify(body);
  const response = await fetch(url, {
    keepalive: keepalive && (json || "").length < KEEPALIVE_LIMIT,
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "application/json" },
    body: json,
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { /* empty body */ }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
