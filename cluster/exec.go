package main

// Exec into the simulated containers, served on the nodes' kubelet port with the kubelet's own
// streaming code (k8s.io/cri-streaming: SPDY and websocket remotecommand), so `kubectl exec` and
// Apollo's web shell work through the real API server. The "container" runs kubesim's small
// shell (kubesim/shell.py): echo, env, printenv, hostname, pwd, cd, ls, cat, whoami, id, uname,
// date, true, false, sleep, stty, tput, exit; `;` and `&&`. Images whose reference contains
// alpine, busybox or distroless have no /bin/bash, and exec of it fails as the OCI runtime does.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

var shellBuiltins = map[string]bool{
	"echo": true, "env": true, "printenv": true, "hostname": true, "ls": true, "cat": true, "pwd": true,
	"cd": true, "exit": true, "whoami": true, "id": true, "date": true, "uname": true, "true": true,
	"false": true, "sleep": true, "stty": true, "tput": true,
}

var shellBinaries = map[string]bool{"sh": true, "bash": true, "ash": true}

func hasBash(image string) bool {
	for _, word := range []string{"alpine", "busybox", "distroless"} {
		if strings.Contains(image, word) {
			return false
		}
	}
	return true
}

func (k *kubelet) exec(w http.ResponseWriter, r *http.Request) {
	sp := k.findPod(r.PathValue("namespace"), r.PathValue("pod"))
	if sp == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	command := r.URL.Query()["command"]
	remotecommand.ServeExec(w, r, sp, sp.name, string(sp.uid), r.PathValue("container"), command, opts,
		4*time.Hour, 30*time.Second, remotecommand.SupportedStreamingProtocols)
}

func ociFailure(binary string) error {
	why := fmt.Sprintf("exec: %q: stat %s: no such file or directory", binary, binary)
	if !strings.Contains(binary, "/") {
		why = fmt.Sprintf("exec: %q: executable file not found in $PATH", binary)
	}
	return errors.New("failed to exec in container: failed to start exec: OCI runtime exec failed: " +
		"exec failed: unable to start container process: " + why + ": unknown")
}

// ExecInContainer implements remotecommand.Executor for the simulated container.
func (sp *simPod) ExecInContainer(ctx context.Context, _ string, _ string, container string, cmd []string,
	in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration,
) error {
	if len(cmd) == 0 {
		return errors.New("no command given")
	}
	image := ""
	for _, c := range sp.spec.Containers {
		if c.Name == container {
			image = c.Image
		}
	}
	binary := cmd[0]
	base := binary[strings.LastIndex(binary, "/")+1:]
	if (base == "bash" && !hasBash(image)) || (!shellBinaries[base] && !shellBuiltins[base]) || base == "cd" || base == "exit" {
		return ociFailure(binary)
	}
	sh := newShell(sp, container, base, tty)
	if resize != nil {
		go func() {
			for size := range resize {
				sh.setSize(int(size.Width), int(size.Height))
			}
		}()
	}
	writer := func(w io.Writer) func(string) {
		return func(text string) {
			if w == nil || text == "" {
				return
			}
			if tty {
				text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
			}
			_, _ = io.WriteString(w, text)
		}
	}
	stdout, stderr := writer(out), writer(errw)
	if tty {
		stderr = stdout
	}
	var code int
	switch {
	case shellBinaries[base] && len(cmd) >= 3 && cmd[1] == "-c":
		res := sh.runLine(ctx, cmd[2])
		stdout(res.out)
		stderr(res.err)
		code = res.code
	case shellBinaries[base]:
		code = sh.interactive(ctx, in, stdout, stderr, tty)
	default:
		res := sh.run(ctx, cmd)
		stdout(res.out)
		stderr(res.err)
		code = res.code
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("error executing command [%s], exit code %d", strings.Join(cmd, " "), code), Code: code}
	}
	return nil
}

type result struct {
	out, err string
	code     int
	exit     bool
}

type shell struct {
	name, hostname, cwd string
	tty                 bool
	env                 map[string]string
	files               map[string]string
	dirs                map[string][]string
	last                int
	mu                  sync.Mutex
	cols, rows          int
}

func newShell(sp *simPod, container, name string, tty bool) *shell {
	image := ""
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": sp.name, "HOME": "/root"}
	for _, c := range sp.spec.Containers {
		if c.Name == container {
			image = c.Image
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
	}
	bin := []string{"cat", "echo", "env", "hostname", "ls", "pwd", "sh", "stty"}
	if hasBash(image) {
		bin = append(bin, "bash")
		sort.Strings(bin)
	}
	return &shell{
		name: name, hostname: sp.name, cwd: "/", tty: tty, env: env, cols: 80, rows: 24,
		files: map[string]string{
			"/etc/hostname":    sp.name + "\n",
			"/etc/os-release":  "NAME=\"Apollo simulated Linux\"\nID=apollo\nVERSION_ID=1.0\n",
			"/etc/hosts":       fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", sp.podIP, sp.name),
			"/etc/resolv.conf": fmt.Sprintf("search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n", sp.namespace),
			"/etc/passwd":      "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
			"/app/config.yaml": "server:\n  port: 8080\nlogging:\n  level: INFO\n",
		},
		dirs: map[string][]string{
			"/":    {"app", "bin", "dev", "etc", "home", "lib", "proc", "root", "sys", "tmp", "usr", "var"},
			"/app": {"app.jar", "config.yaml"},
			"/etc": {"hostname", "hosts", "os-release", "passwd", "resolv.conf"},
			"/bin": bin,
			"/tmp": {}, "/home": {}, "/root": {}, "/var": {"log", "tmp"}, "/usr": {"bin", "lib"},
			"/dev": {"null", "stdout", "stderr"}, "/proc": {"1", "self"}, "/sys": {}, "/lib": {},
		},
	}
}

func (s *shell) setSize(cols, rows int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cols, s.rows = cols, rows
}

func (s *shell) size() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cols, s.rows
}

func (s *shell) prompt() string {
	if s.name == "bash" {
		return fmt.Sprintf("root@%s:%s# ", s.hostname, s.cwd)
	}
	return s.cwd + " # "
}

func (s *shell) path(arg string) string {
	p := arg
	if !strings.HasPrefix(arg, "/") {
		p = strings.TrimRight(s.cwd, "/") + "/" + arg
	}
	var parts []string
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, part)
		}
	}
	return "/" + strings.Join(parts, "/")
}

func (s *shell) expand(word string) string {
	if word == "$?" {
		return strconv.Itoa(s.last)
	}
	if strings.HasPrefix(word, "$") && len(word) > 1 {
		return s.env[strings.Trim(word[1:], "{}")]
	}
	return word
}

// split is a small shlex: whitespace, single and double quotes.
func split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("No closing quotation")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func (s *shell) runLine(ctx context.Context, line string) result {
	var total result
	for _, chunk := range strings.Split(strings.ReplaceAll(line, "&&", ";"), ";") {
		if strings.TrimSpace(chunk) == "" {
			continue
		}
		var step result
		if words, err := split(chunk); err != nil {
			step = result{err: fmt.Sprintf("%s: syntax error: %v\n", s.name, err), code: 2}
		} else {
			for i := range words {
				words[i] = s.expand(words[i])
			}
			step = s.run(ctx, words)
		}
		total.out += step.out
		total.err += step.err
		total.code, s.last = step.code, step.code
		if step.exit {
			total.exit = true
			break
		}
	}
	return total
}

func (s *shell) run(ctx context.Context, argv []string) result {
	if len(argv) == 0 {
		return result{}
	}
	name, args := argv[0][strings.LastIndex(argv[0], "/")+1:], argv[1:]
	if !shellBuiltins[name] {
		return result{err: fmt.Sprintf("%s: %s: command not found\n", s.name, argv[0]), code: 127}
	}
	switch name {
	case "echo":
		if len(args) > 0 && args[0] == "-n" {
			return result{out: strings.Join(args[1:], " ")}
		}
		return result{out: strings.Join(args, " ") + "\n"}
	case "env":
		return result{out: s.envText()}
	case "printenv":
		if len(args) == 0 {
			return result{out: s.envText()}
		}
		var b strings.Builder
		code := 0
		for _, a := range args {
			if v, ok := s.env[a]; ok {
				b.WriteString(v + "\n")
			} else {
				code = 1
			}
		}
		return result{out: b.String(), code: code}
	case "hostname":
		return result{out: s.hostname + "\n"}
	case "pwd":
		return result{out: s.cwd + "\n"}
	case "whoami":
		return result{out: "root\n"}
	case "id":
		return result{out: "uid=0(root) gid=0(root) groups=0(root)\n"}
	case "uname":
		if len(args) > 0 && args[0] == "-a" {
			return result{out: fmt.Sprintf("Linux %s 6.1.0-apollo #1 SMP x86_64 GNU/Linux\n", s.hostname)}
		}
		return result{out: "Linux\n"}
	case "date":
		return result{out: time.Now().UTC().Format("Mon Jan 02 15:04:05 UTC 2006") + "\n"}
	case "true":
		return result{}
	case "false":
		return result{code: 1}
	case "sleep":
		seconds := 0.0
		if len(args) > 0 {
			v, err := strconv.ParseFloat(args[0], 64)
			if err != nil {
				return result{err: fmt.Sprintf("sleep: invalid number '%s'\n", args[0]), code: 1}
			}
			seconds = min(v, 60)
		}
		sleep(ctx, time.Duration(seconds*float64(time.Second)))
		return result{}
	case "stty":
		if !s.tty {
			return result{err: "stty: standard input: Not a tty\n", code: 1}
		}
		if len(args) == 1 && args[0] == "size" {
			cols, rows := s.size()
			return result{out: fmt.Sprintf("%d %d\n", rows, cols)}
		}
		if len(args) == 0 {
			return result{out: "speed 38400 baud; line = 0;\n"}
		}
		return result{err: fmt.Sprintf("stty: invalid argument '%s'\n", args[0]), code: 1}
	case "tput":
		cols, rows := s.size()
		if len(args) == 1 && args[0] == "cols" {
			return result{out: fmt.Sprintf("%d\n", cols)}
		}
		if len(args) == 1 && args[0] == "lines" {
			return result{out: fmt.Sprintf("%d\n", rows)}
		}
		return result{err: fmt.Sprintf("tput: unknown terminfo capability '%s'\n", strings.Join(args, " ")), code: 4}
	case "exit":
		code := s.last
		if len(args) > 0 {
			v, err := strconv.Atoi(args[0])
			code = v
			if err != nil {
				code = 2
			}
		}
		return result{code: code & 0xff, exit: true}
	case "cd":
		target := "/root"
		if len(args) > 0 {
			target = s.path(args[0])
		}
		if _, ok := s.dirs[target]; !ok {
			return result{err: fmt.Sprintf("%s: cd: can't cd to %s: No such file or directory\n", s.name, args[0]), code: 2}
		}
		s.cwd = target
		return result{}
	case "ls":
		return s.ls(args)
	case "cat":
		return s.cat(args)
	}
	return result{}
}

func (s *shell) envText() string {
	keys := make([]string, 0, len(s.env))
	for k := range s.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, s.env[k])
	}
	return b.String()
}

func (s *shell) ls(args []string) result {
	var paths []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		paths = []string{s.cwd}
	}
	var res result
	for _, arg := range paths {
		p := s.path(arg)
		if entries, ok := s.dirs[p]; ok {
			for _, e := range entries {
				res.out += e + "\n"
			}
		} else if _, ok := s.files[p]; ok {
			res.out += arg + "\n"
		} else {
			res.err += fmt.Sprintf("ls: %s: No such file or directory\n", arg)
			res.code = 1
		}
	}
	return res
}

func (s *shell) cat(args []string) result {
	var res result
	for _, arg := range args {
		p := s.path(arg)
		if text, ok := s.files[p]; ok {
			res.out += text
		} else if _, ok := s.dirs[p]; ok {
			res.err += "cat: read error: Is a directory\n"
			res.code = 1
		} else {
			res.err += fmt.Sprintf("cat: can't open '%s': No such file or directory\n", arg)
			res.code = 1
		}
	}
	return res
}

// interactive reads stdin; with a TTY it echoes what is typed (backspace, Ctrl-C, Ctrl-D) and
// prints a prompt, as a terminal in cooked mode. Returns the exit code.
func (s *shell) interactive(ctx context.Context, in io.Reader, stdout, stderr func(string), tty bool) int {
	if in == nil {
		return 0
	}
	if tty {
		stdout(s.prompt())
	}
	reader := bufio.NewReader(in)
	var line strings.Builder
	for {
		r, _, err := reader.ReadRune()
		if err != nil {
			return 0
		}
		switch {
		case r == 0x04 && line.Len() == 0:
			return 0
		case tty && (r == 0x7f || r == '\b'):
			if text := line.String(); text != "" {
				line.Reset()
				line.WriteString(text[:len(text)-1])
				stdout("\b \b")
			}
		case tty && r == 0x03:
			line.Reset()
			stdout("^C\n" + s.prompt())
		case r == '\r' || r == '\n':
			if tty {
				stdout("\n")
			}
			res := s.runLine(ctx, line.String())
			line.Reset()
			stdout(res.out)
			stderr(res.err)
			if res.exit {
				return res.code
			}
			if tty {
				stdout(s.prompt())
			}
			if r == '\r' && reader.Buffered() > 0 {
				if next, _ := reader.Peek(1); len(next) == 1 && next[0] == '\n' {
					_, _ = reader.ReadByte()
				}
			}
		default:
			line.WriteRune(r)
			if tty {
				stdout(string(r))
			}
		}
	}
}
