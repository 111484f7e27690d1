"""A small simulated shell for `kubectl exec`: echo, env, hostname, ls, cat, pwd, cd, exit, ..."""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass, field

_FILES = {
    "/etc/hostname": "{hostname}\n",
    "/etc/os-release": 'NAME="Kubesim Linux"\nID=kubesim\nVERSION_ID=1.0\n',
    "/etc/hosts": "127.0.0.1\tlocalhost\n{pod_ip}\t{hostname}\n",
    "/etc/resolv.conf": "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\noptions ndots:5\n",
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
    "/app/config.yaml": "server:\n  port: 8080\nlogging:\n  level: INFO\n",
    "/app/app.jar": "PK\x03\x04 (binary)\n",
}
_DIRS = {
    "/": ["app", "bin", "dev", "etc", "home", "lib", "proc", "root", "sys", "tmp", "usr", "var"],
    "/app": ["app.jar", "config.yaml"],
    "/etc": ["hostname", "hosts", "os-release", "passwd", "resolv.conf"],
    "/bin": ["cat", "echo", "env", "hostname", "ls", "pwd", "sh", "stty"],
    "/tmp": [],  # noqa: S108 (a simulated directory listing, not a file we use)
    "/home": [],
    "/root": [],
    "/var": ["log", "tmp"],
    "/usr": ["bin", "lib"],
    "/dev": ["null", "stdout", "stderr"],
    "/proc": ["1", "self"],
    "/sys": [],
    "/lib": [],
}
BUILTINS = (
    "echo",
    "env",
    "printenv",
    "hostname",
    "ls",
    "cat",
    "pwd",
    "cd",
    "exit",
    "whoami",
    "id",
    "date",
    "uname",
    "true",
    "false",
    "sleep",
    "stty",
    "tput",
)


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    code: int = 0
    exit_shell: bool = False


@dataclass
class Shell:
    hostname: str
    namespace: str
    pod_ip: str
    env: dict[str, str]
    has_bash: bool
    shell_name: str = "sh"
    tty: bool = False
    cwd: str = "/"
    last_code: int = 0
    size: tuple[int, int] = (80, 24)
    files: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {"hostname": self.hostname, "pod_ip": self.pod_ip, "namespace": self.namespace}
        self.files = {path: text.format(**values) for path, text in _FILES.items()}
        self.dirs = {path: list(entries) for path, entries in _DIRS.items()}
        if self.has_bash:
            self.dirs["/bin"] = sorted({*self.dirs["/bin"], "bash"})

    @property
    def prompt(self) -> str:
        if self.shell_name == "bash":
            return f"root@{self.hostname}:{self.cwd}# "
        return f"{self.cwd} # "

    def _path(self, arg: str) -> str:
        path = arg if arg.startswith("/") else f"{self.cwd.rstrip('/')}/{arg}"
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def _expand(self, word: str) -> str:
        if word == "$?":
            return str(self.last_code)
        if word.startswith("$") and len(word) > 1:
            return self.env.get(word[1:].strip("{}"), "")
        return word

    async def run_line(self, line: str) -> Result:
        """Run one command line; `a; b` and `a && b` are supported."""
        result = Result()
        for chunk in line.replace("&&", ";").split(";"):
            if not chunk.strip():
                continue
            try:
                argv = [self._expand(w) for w in shlex.split(chunk)]
            except ValueError as exc:
                step = Result(stderr=f"{self.shell_name}: syntax error: {exc}\n", code=2)
            else:
                step = await self.run(argv)
            result.stdout += step.stdout
            result.stderr += step.stderr
            result.code = step.code
            self.last_code = step.code
            if step.exit_shell:
                result.exit_shell = True
                break
        return result

    async def run(self, argv: list[str]) -> Result:
        if not argv:
            return Result()
        name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None or name not in BUILTINS:
            return Result(stderr=f"{self.shell_name}: {argv[0]}: command not found\n", code=127)
        result: Result = await handler(args)
        return result

    async def _cmd_echo(self, args: list[str]) -> Result:
        if args and args[0] == "-n":
            return Result(" ".join(args[1:]))
        return Result(" ".join(args) + "\n")

    async def _cmd_env(self, args: list[str]) -> Result:
        return Result("".join(f"{k}={v}\n" for k, v in self.env.items()))

    async def _cmd_printenv(self, args: list[str]) -> Result:
        if args:
            values = [self.env[a] for a in args if a in self.env]
            return Result(
                "".join(f"{v}\n" for v in values), code=0 if len(values) == len(args) else 1
            )
        return await self._cmd_env(args)

    async def _cmd_hostname(self, args: list[str]) -> Result:
        return Result(self.hostname + "\n")

    async def _cmd_pwd(self, args: list[str]) -> Result:
        return Result(self.cwd + "\n")

    async def _cmd_whoami(self, args: list[str]) -> Result:
        return Result("root\n")

    async def _cmd_id(self, args: list[str]) -> Result:
        return Result("uid=0(root) gid=0(root) groups=0(root)\n")

    async def _cmd_uname(self, args: list[str]) -> Result:
        if "-a" in args:
            return Result(f"Linux {self.hostname} 6.1.0-kubesim #1 SMP x86_64 GNU/Linux\n")
        return Result("Linux\n")

    async def _cmd_date(self, args: list[str]) -> Result:
        return Result(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()) + "\n")

    async def _cmd_true(self, args: list[str]) -> Result:
        return Result()

    async def _cmd_false(self, args: list[str]) -> Result:
        return Result(code=1)

    async def _cmd_sleep(self, args: list[str]) -> Result:
        try:
            await asyncio.sleep(min(float(args[0]) if args else 0.0, 60.0))
        except ValueError:
            return Result(stderr=f"sleep: invalid number '{args[0]}'\n", code=1)
        return Result()

    async def _cmd_stty(self, args: list[str]) -> Result:
        """`stty size` prints "rows cols" of the terminal (set by the exec resize channel)."""
        if not self.tty:
            return Result(stderr="stty: standard input: Not a tty\n", code=1)
        if args == ["size"]:
            cols, rows = self.size
            return Result(f"{rows} {cols}\n")
        if not args:
            return Result("speed 38400 baud; line = 0;\n")
        return Result(stderr=f"stty: invalid argument '{args[0]}'\n", code=1)

    async def _cmd_tput(self, args: list[str]) -> Result:
        """`tput cols` / `tput lines`: the terminal size, like ncurses reads it."""
        cols, rows = self.size
        if args == ["cols"]:
            return Result(f"{cols}\n")
        if args == ["lines"]:
            return Result(f"{rows}\n")
        return Result(stderr=f"tput: unknown terminfo capability '{' '.join(args)}'\n", code=4)

    async def _cmd_exit(self, args: list[str]) -> Result:
        try:
            code = int(args[0]) if args else self.last_code
        except ValueError:
            code = 2
        return Result(code=code & 0xFF, exit_shell=True)

    async def _cmd_cd(self, args: list[str]) -> Result:
        target = self._path(args[0]) if args else "/root"
        if target not in self.dirs:
            return Result(
                stderr=f"{self.shell_name}: cd: can't cd to {args[0]}: No such file or directory\n",
                code=2,
            )
        self.cwd = target
        return Result()

    async def _cmd_ls(self, args: list[str]) -> Result:
        paths = [a for a in args if not a.startswith("-")] or [self.cwd]
        out, err, code = "", "", 0
        for arg in paths:
            path = self._path(arg)
            if path in self.dirs:
                out += "".join(f"{entry}\n" for entry in self.dirs[path])
            elif path in self.files:
                out += f"{arg}\n"
            else:
                err += f"ls: {arg}: No such file or directory\n"
                code = 1
        return Result(out, err, code)

    async def _cmd_cat(self, args: list[str]) -> Result:
        out, err, code = "", "", 0
        for arg in args:
            path = self._path(arg)
            if path in self.files:
                out += self.files[path]
            elif path in self.dirs:
                err += "cat: read error: Is a directory\n"
                code = 1
            else:
                err += f"cat: can't open '{arg}': No such file or directory\n"
                code = 1
        return Result(out, err, code)
