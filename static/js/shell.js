// The web shell: xterm.js (vendored, globals Terminal and FitAddon) bridged to Apollo's socket.
// A shell session cannot resume after its socket closes (the process on the pod is gone), so
// the socket is not reconnected behind the user's back: the page says the session ended and
// why, and offers "Open a new shell", which starts a new session (recorded as every session).
import { follow, REFUSED } from "./live.js";

// Close codes of a server going away or restarting (a deploy of Apollo; SIGTERM to daphne
// closes with 4503, see apollo_site/websockets.py).
const RESTARTING = new Set([1001, 1012, 4503]);

const box = document.getElementById("shell");
if (box) {
  const message = document.getElementById("shell-message");
  const say = (text, error) => {
    message.textContent = text;
    message.classList.toggle("error", Boolean(error));
  };
  const again = document.createElement("button");
  again.type = "button";
  again.id = "shell-reconnect";
  again.textContent = "Open a new shell";
  again.hidden = true;
  message.after(again);

  const term = new window.Terminal({ cursorBlink: true, convertEol: false, fontSize: 14 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  let socket = null;
  let ended = false;

  const resize = () => {
    fit.fit();
    if (socket) socket.send({ type: "resize", cols: term.cols, rows: term.rows });
  };
  const closed = (code) => {
    term.options.disableStdin = true;
    if (code === 4401 || code === 4403) return say("You may not open a shell here.", true);
    if (code === 4404) return say("That pod no longer exists.", true);
    if (REFUSED.has(code)) return say("The shell was refused.", true);
    if (RESTARTING.has(code)) say("Apollo restarted and this session ended.", true);
    else if (!ended) say("The connection to the shell was lost; the session ended.", true);
    again.hidden = false;
    again.focus();
  };
  const start = () => {
    ended = false;
    again.hidden = true;
    term.options.disableStdin = false;
    say("Connecting…");
    socket = follow(box.dataset.ws, {
      reconnect: false,
      onOpen: () => {
        say("Starting a shell…");
        resize();
      },
      onMessage: (payload) => {
        if (payload.type === "stdout") term.write(payload.data);
        else if (payload.type === "started") {
          say(`Connected: ${payload.command}`);
          resize();
          term.focus();
        } else if (payload.type === "error") {
          ended = true;
          say(payload.message, true);
          term.write(`\r\n\x1b[31m${payload.message}\x1b[0m\r\n`);
        } else if (payload.type === "exit") {
          ended = true;
          say(`Session ended: ${payload.message}`);
        }
      },
      onClose: closed,
    });
  };
  again.addEventListener("click", () => {
    term.write("\r\n\x1b[2m--- new session ---\x1b[0m\r\n");
    start();
  });
  term.onData((data) => socket && socket.send({ type: "stdin", data }));
  window.addEventListener("resize", resize);
  window.addEventListener("beforeunload", () => socket && socket.close());
  start();
}
