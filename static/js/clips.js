// The clips list: selection for bulk actions (shift-click ranges, all on this page), a bulk bar
// that says what is selected, clean filter URLs, and no self-refresh while the user is choosing.
// Without this script the page still works: filters are a GET form, the bulk bar a POST form.
(function () {
  "use strict";
  let lastClicked = null;

  const table = () => document.getElementById("clip-table");
  const boxes = () => Array.from(document.querySelectorAll("#clip-table input[name=clip_ids]"));

  function update() {
    const all = boxes();
    const picked = all.filter((b) => b.checked);
    const status = document.getElementById("bulk-status");
    if (status) {
      status.textContent = picked.length === 0
        ? "No clips selected."
        : picked.length + " of " + all.length + " clips on this page selected.";
    }
    const pageBox = document.getElementById("select-page");
    if (pageBox) {
      pageBox.checked = all.length > 0 && picked.length === all.length;
      pageBox.indeterminate = picked.length > 0 && picked.length < all.length;
    }
    document.querySelectorAll("#clip-table [data-bulk]").forEach((b) => { b.disabled = picked.length === 0; });
    all.forEach((b) => b.closest("tr").classList.toggle("selected", b.checked));
  }

  function init() {
    const root = table();
    if (!root) return;
    lastClicked = null;
    const pageBox = document.getElementById("select-page");
    if (pageBox) pageBox.hidden = false;
    update();
  }

  document.addEventListener("click", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.closest("#clip-table")) return;
    if (box.id === "select-page") {
      boxes().forEach((b) => { b.checked = box.checked; });
    } else if (box.name === "clip_ids") {
      const all = boxes();
      const here = all.indexOf(box);
      if (event.shiftKey && lastClicked !== null && all[lastClicked]) {
        const [from, to] = [Math.min(lastClicked, here), Math.max(lastClicked, here)];
        for (let i = from; i <= to; i++) all[i].checked = box.checked;
      }
      lastClicked = here;
    } else {
      return;
    }
    update();
  });
  // Space on a focused checkbox fires click too, so keyboard selection goes through the above.

  document.addEventListener("change", (event) => {
    // Another project is another page (its subsets, batches and upload form): navigate to it.
    const picker = event.target.closest && event.target.closest(".project-picker");
    if (picker) picker.requestSubmit();
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    // The table refreshes itself while clips are in the pipeline; not while someone is choosing.
    const root = table();
    if (!root || event.detail.elt !== root) return;
    const choosing = boxes().some((b) => b.checked) || root.contains(document.activeElement);
    if (choosing) event.preventDefault();
  });

  document.addEventListener("htmx:configRequest", (event) => {
    // Filters leave empty fields out of the URL that is pushed into the history.
    const form = event.detail.elt.closest && event.detail.elt.closest(".clip-filters");
    if (!form || !event.detail.formData) return;
    const empty = [];
    event.detail.formData.forEach((value, key) => { if (value === "") empty.push(key); });
    empty.forEach((key) => event.detail.formData.delete(key));
  });

  document.addEventListener("htmx:load", (event) => {
    if (event.detail.elt.id === "clip-table" || event.detail.elt.querySelector?.("#clip-table")) init();
  });
  document.addEventListener("DOMContentLoaded", init);
})();
