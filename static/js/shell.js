// The web shell: xterm.js (vendored, globals Terminal and FitAddon) bridged to Apollo's socket.
import { follow } from "./live.js";

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
  let ended = false;
  // A shell session cannot resume after a disconnect: no reconnect.
  const socket = follow(box.dataset.ws, {
    reconnect: false,
    onOpen: () => {
      say("Starting a shell…");
      resize();
    },
    onMessage: (payload) => {
      if (payload.type === "stdout") term.write(payload.data);
      else if (payload.type === "started") { say(`Connected: ${payload.command}`); resize(); term.focus(); }
      else if (payload.type === "error") { ended = true; say(payload.message, true); term.write(`\r\n\x1b[31m${payload.message}\x1b[0m\r\n`); }
      else if (payload.type === "exit") { ended = true; say(`Session ended: ${payload.message}`); }
    },
    onClose: (code) => {
      if (code === 4401 || code === 4403) say("You may not open a shell here.", true);
      else if (code === 4404) say("That pod no longer exists.", true);
      else if (!ended) say("Session closed.");
      term.options.disableStdin = true;
    },
  });
  const resize = () => { fit.fit(); socket.send({ type: "resize", cols: term.cols, rows: term.rows }); };
  term.onData((data) => socket.send({ type: "stdin", data }));
  window.addEventListener("resize", resize);
  window.addEventListener("beforeunload", () => socket.close());
}
