// Speech panel: the clip's audio waveform with the speech segments over it; click to hear a
// segment. Segments are read from the (HTMX-rendered) list, so edits redraw at once.
const panel = document.getElementById("speech-panel");

if (panel) {
  const canvas = document.getElementById("waveform");
  const audio = document.getElementById("speech-audio");
  let peaks = [];
  let stopAt = null;

  const segments = () => [...panel.querySelectorAll(".segment")].map((li) => [Number(li.dataset.start), Number(li.dataset.end)]);
  const duration = () => Number(panel.querySelector("#speech")?.dataset.duration) || 1;

  function draw() {
    const ctx = canvas.getContext("2d");
    canvas.width = Math.max(200, panel.getBoundingClientRect().width - 24);
    canvas.height = 80;
    ctx.fillStyle = "#1d232b";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "rgba(46, 204, 113, 0.35)";
    for (const [start, end] of segments()) {
      ctx.fillRect((start / duration()) * canvas.width, 0, ((end - start) / duration()) * canvas.width, canvas.height);
    }
    ctx.fillStyle = "#9ecbff";
    const mid = canvas.height / 2;
    peaks.forEach((p, i) => {
      const x = (i / peaks.length) * canvas.width;
      ctx.fillRect(x, mid - p * mid, Math.max(1, canvas.width / peaks.length), Math.max(1, 2 * p * mid));
    });
  }

  audio.addEventListener("timeupdate", () => {
    if (stopAt !== null && audio.currentTime >= stopAt) { audio.pause(); stopAt = null; }
  });
  panel.addEventListener("click", (e) => {
    const button = e.target.closest(".play-segment");
    if (!button) return;
    const li = button.closest(".segment");
    audio.currentTime = Number(li.dataset.start);
    stopAt = Number(li.dataset.end);
    audio.play();
  });
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    audio.currentTime = ((e.clientX - r.left) / r.width) * duration();
    stopAt = audio.currentTime + 1.5;
    audio.play();
  });
  document.body.addEventListener("htmx:afterSwap", draw);
  new ResizeObserver(draw).observe(panel);
  fetch(`/media/clips/${panel.dataset.clip}/waveform.json`, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : { peaks: [] }))
    .then((data) => { peaks = data.peaks; draw(); });
}
