// The CSRF token the server put on <body hx-headers>, for fetch/XHR calls made outside HTMX.
export function csrfToken() {
  try {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  } catch {
    return "";
  }
}
