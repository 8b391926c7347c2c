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
  // The summary above a refused form names each field as the server guessed it from the
  // field's name ("Limit"); say it as the page's own label does ("Size (first N matches)").
  const nameSummaryLinks = () => {
    for (const link of document.querySelectorAll('[data-testid="form-errors"] a[href^="#"]')) {
      const label = document.getElementById(link.hash.slice(1))?.labels?.[0];
      const words = label && [...label.childNodes]
        .filter((node) => node.nodeType === Node.TEXT_NODE)
        .map((node) => node.textContent.trim()).find(Boolean);
      const sep = link.textContent.indexOf(": ");
      if (words && sep > 0) link.textContent = words + link.textContent.slice(sep);
    }
  };
  const markRefusal = () => { nameSummaryLinks(); focusFirstInvalid(); };
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr?.getResponseHeader("X-Form-Errors")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.xhr?.getResponseHeader("X-Form-Errors")) markRefusal();
  });
  document.addEventListener("DOMContentLoaded", markRefusal);
  document.addEventListener("htmx:sendError", () => {
    showToast('<div class="error-box">The server could not be reached. Your change was not saved; retry.</div>');
  });
  window.CelLabel = Object.assign(window.CelLabel || {}, { showToast });
})();
