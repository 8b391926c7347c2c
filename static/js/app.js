// Page-wide behaviour: show HTMX errors as a visible message instead of a silent non-swap.
(function () {
  "use strict";
  function showToast(html) {
    const toast = document.getElementById("toast");
    if (!toast) return;
    toast.innerHTML = html;
    toast.hidden = false;
    clearTimeout(toast._timer);
    toast._timer = setTimeout(() => { toast.hidden = true; }, 8000);
  }
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const type = xhr.getResponseHeader("content-type") || "";
    if (type.includes("text/html")) {
      showToast(xhr.responseText);
    } else {
      const div = document.createElement("div");
      div.className = "error-box";
      div.textContent = "Error " + xhr.status + ": " + (xhr.statusText || "request failed");
      showToast(div.outerHTML);
    }
  });
  // A refused form comes back re-rendered with its errors beside the fields: swap it in place
  // and put the cursor in the first field marked invalid (its message is read out with it).
  const focusFirstInvalid = () => document.querySelector('[aria-invalid="true"]')?.focus();
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr?.getResponseHeader("X-Form-Errors")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.xhr?.getResponseHeader("X-Form-Errors")) focusFirstInvalid();
  });
  document.addEventListener("DOMContentLoaded", focusFirstInvalid);
  document.addEventListener("htmx:sendError", () => {
    showToast('<div class="error-box">The server could not be reached. Your change was not saved; retry.</div>');
  });
  window.CelLabel = Object.assign(window.CelLabel || {}, { showToast });
})();
