// LiveTail: batches of lines from Apollo's socket, kept in a bounded array and drawn as a
// virtual list (only the visible rows are in the DOM, redrawn at most once per frame), so tens
// of thousands of lines per second do not freeze the page.
import * as live from "./live.js";

const root = document.getElementById("tail");
if (root) {
  const MAX_LINES = 100000; // lines kept in the browser; the oldest go first
  const LINE_HEIGHT = 18; // px, as in .tail-view
  const view = document.getElementById("tail-view");
  const spacer = document.getElementById("tail-spacer");
  const out = document.getElementById("tail-lines");
  const status = document.getElementById("tail-status");
  const notice = document.getElementById("tail-notice");
  const filterInput = document.getElementById("tail-filter");
  const timestamps = document.getElementById("tail-timestamps");
  const follow = document.getElementById("tail-follow");
  const pauseButton = document.getElementById("tail-pause");
  let lines = []; // {pod, ts, text, hay}
  let shown = [];
  let filter = "";
  let paused = false;
  let received = 0;
  let dropped = 0;
  let scheduled = false;

  const matches = (line) => !filter || line.hay.includes(filter);
  const format = (line) => (timestamps.checked ? `${line.ts} ` : "") + `[${line.pod}] ${line.text}`;
  const escape = (s) => s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);

  const draw = () => {
    scheduled = false;
    spacer.style.height = `${shown.length * LINE_HEIGHT}px`;
    if (follow.checked) view.scrollTop = view.scrollHeight;
    const first = Math.max(0, Math.floor(view.scrollTop / LINE_HEIGHT));
    const count = Math.ceil(view.clientHeight / LINE_HEIGHT) + 2;
    const rows = shown.slice(first, first + count);
    out.style.top = `${first * LINE_HEIGHT}px`;
    out.innerHTML = rows.map((l) =>
      (timestamps.checked ? `<span class="ts">${escape(l.ts)}</span> ` : "") +
      `<span class="pod">[${escape(l.pod)}]</span> ${escape(l.text)}`).join("\n");
    status.textContent = `${shown.length.toLocaleString()} shown of ${lines.length.toLocaleString()} kept · ${received.toLocaleString()} received${paused ? " · paused" : ""}`;
  };
  const schedule = () => { if (!scheduled) { scheduled = true; requestAnimationFrame(draw); } };

  const add = (batch) => {
    for (const [pod, ts, text] of batch) {
      const line = { pod, ts, text, hay: `${pod} ${text}`.toLowerCase() };
      lines.push(line);
      if (matches(line)) shown.push(line);
    }
    received += batch.length;
    if (lines.length > MAX_LINES + 10000) {
      const cut = lines.length - MAX_LINES;
      const oldest = lines[cut];
      lines = lines.slice(cut);
      const keepFrom = shown.indexOf(oldest);
      shown = keepFrom >= 0 ? shown.slice(keepFrom) : shown.filter(matches);
    }
    schedule();
  };

  let timer = null;
  filterInput.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      filter = filterInput.value.trim().toLowerCase();
      shown = lines.filter(matches);
      schedule();
    }, 80);
  });
  timestamps.addEventListener("change", schedule);
  view.addEventListener("scroll", () => {
    const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - LINE_HEIGHT * 2;
    if (follow.checked !== atBottom && !scheduled) follow.checked = atBottom;
    schedule();
  });
  follow.addEventListener("change", schedule);

  document.getElementById("tail-download").addEventListener("click", () => {
    const blob = new Blob([shown.map(format).join("\n") + "\n"], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${root.dataset.name}.log`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });

  // A tail does not resume after a disconnect (the lines in between are gone): no reconnect.
  const socket = live.follow(root.dataset.ws, {
    reconnect: false,
    onOpen: () => {
      status.textContent = "connected · no log lines yet (the container has written nothing so far)";
    },
    onMessage: (payload) => {
      if (payload.type === "lines") {
        if (payload.dropped) {
          dropped += payload.dropped;
          notice.textContent = `${dropped.toLocaleString()} lines were dropped while paused (Apollo keeps the newest lines in a bounded buffer).`;
        }
        if (payload.notices && payload.notices.length) notice.textContent = payload.notices[payload.notices.length - 1];
        if (payload.lines.length) add(payload.lines);
      } else if (payload.type === "notice") {
        notice.textContent = payload.text;
      }
    },
    onClose: (code) => {
      const why = { 4401: "sign in first", 4403: "you may not view these logs", 4404: "no such pod" }[code];
      status.textContent = why ? `closed: ${why}` : "disconnected (reload to follow again)";
    },
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    socket.send({ action: paused ? "pause" : "resume" });
    pauseButton.textContent = paused ? "Resume" : "Pause";
    schedule();
  });
  window.addEventListener("resize", schedule);
}
