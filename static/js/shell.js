// The web shell: xterm.js (vendored, globals Terminal and FitAddon) bridged to Apollo's socket.
const box = document.getElementById("shell");
if (box) {
  const message = document.getElementById("shell-message");
  const say = (text, error) => {
    message.textContent = text;
    message.classList.toggle("error", Boolean(error));
  };
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, fontSize: 14 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${box.dataset.ws}`);
  const send = (payload) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload)); };
  const resize = () => { fit.fit(); send({ type: "resize", cols: term.cols, rows: term.rows }); };
  let ended = false;
  socket.addEventListener("open", () => { say("Starting a shell…"); resize(); });
  socket.addEventListener("message", (event) => {
    const payload = JSON.parse(event.data);
    if (payload.type === "stdout") term.write(payload.data);
    else if (payload.type === "started") { say(`Connected: ${payload.command}`); resize(); term.focus(); }
    else if (payload.type === "error") { ended = true; say(payload.message, true); term.write(`\r\n\x1b[31m${payload.message}\x1b[0m\r\n`); }
    else if (payload.type === "exit") { ended = true; say(`Session ended: ${payload.message}`); }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401 || event.code === 4403) say("You may not open a shell here.", true);
    else if (event.code === 4404) say("That pod no longer exists.", true);
    else if (!ended) say("Session closed.");
    term.options.disableStdin = true;
  });
  term.onData((data) => send({ type: "stdin", data }));
  window.addEventListener("resize", resize);
  window.addEventListener("beforeunload", () => socket.close());
}
