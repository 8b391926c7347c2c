// A small tooltip that follows the pointer over a canvas (the stage's point names, the
// timeline's marks). Positioned through the CSSOM, which the page's CSP allows.
export class HoverTip {
  constructor(container) {
    this.container = container;
    this.el = document.createElement("div");
    this.el.className = "hover-tip";
    this.el.setAttribute("role", "tooltip");
    this.el.hidden = true;
    container.append(this.el);
  }

  show(text, e) {
    if (!text) { this.hide(); return; }
    this.el.textContent = text;
    this.el.hidden = false;
    const box = this.container.getBoundingClientRect();
    const x = Math.min(e.clientX - box.left + 14, box.width - this.el.offsetWidth - 4);
    const y = e.clientY - box.top + 16 + this.el.offsetHeight > box.height
      ? e.clientY - box.top - this.el.offsetHeight - 8 : e.clientY - box.top + 16;
    this.el.style.left = `${Math.max(0, x)}px`;
    this.el.style.top = `${y}px`;
  }

  hide() { this.el.hidden = true; }
}
