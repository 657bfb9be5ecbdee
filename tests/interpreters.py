"""Fresh interpreters without the import cost: a fork server for the suite's scripts and snippets.

Every `python experiments/<script>.py ...` or `python -c CODE` that a test runs pays for importing
JAX, Flax, optax, orbax and dgm_jax before it does anything: about 4 s of CPU here, more than most
of those runs compute. SERVER imports them once, in a subprocess that never touches a device; each
request is a fork of it, which then runs the script (runpy, as `python script.py`) or the code (as
`python -c`) with its own argv, working directory and environment, stdout and stderr to files, and
exits the way that interpreter would (its atexit handlers and non-daemon threads run). JAX starts its
backend in the child. What the import read stays the server's, so each XLA_FLAGS value (the device
count) has its own server, and a request that changes a JAX_* variable is refused (it needs a truly
fresh interpreter, like the light-import check of tests/test_packaging.py).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

# The accept-and-fork loop of a fork server (also tests/test_faults.py's): prints READY, then per request
# line "PID <pid>" and "EXIT <code>"; serve() returns the request in the forked child. The server leaves
# by os._exit when its stdin closes: it has nothing to finalize (an interpreter exit took ~1 s).
SERVE_LOOP = r"""
def serve():
    # One request a line; returns it in the forked child.
    print("READY", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return request
        print(f"PID {pid}", flush=True)
        print(f"EXIT {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}", flush=True)
    os._exit(0)
"""

SERVER = r"""
import json, os, runpy, sys
import numpy, PIL.Image, tqdm, tensorboardX, absl.app, absl.flags, absl.logging, ml_collections
import jax, jax.numpy, flax.linen, optax, orbax.checkpoint
import dgm_jax, dgm_jax.assembly, dgm_jax.evaluation, dgm_jax.plots, dgm_jax.sampling, dgm_jax.sweeps
import dgm_jax.train
from jax._src import xla_bridge
assert not xla_bridge._backends, "no device may be touched before a fork"
""" + SERVE_LOOP + r"""

request = serve()                                # from here on, the forked child
os.environ.clear()
os.environ.update(request["env"])
os.chdir(request["cwd"])
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
sys.argv = request["argv"]
if request["code"] is not None:                  # python -c CODE ARGS...
    import types
    sys.path[0] = ""
    main = sys.modules["__main__"] = types.ModuleType("__main__")
    exec(compile(request["code"], "<string>", "exec"), main.__dict__)
else:                                            # python SCRIPT ARGS...
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


class Lines:
    """A process's stdout lines, read as they come (None once it is closed)."""

    def __init__(self, stream):
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def get(self, timeout):
        return self.queue.get(timeout=timeout)


class _Server:
    """SERVER in a subprocess, imported under one environment."""

    def __init__(self, repo: Path, env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(log, "w"), cwd=repo,
                                     env={**env, "PYTHONPATH": str(repo)})
        self.lines = Lines(self.proc.stdout)
        line = self.lines.get(timeout=300)
        assert line == "READY", f"{line!r}:\n{log.read_text()[-3000:]}"

    def run(self, request: dict, timeout: float) -> int:
        """Forks the request's interpreter and waits for it; its exit code."""
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        pid = None
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                if pid is not None:
                    os.kill(pid, 9)
                raise AssertionError(f"{request['argv'][:2]} still running after {timeout}s:\n"
                                     f"{Path(request['stderr']).read_text()[-3000:]}") from None
            assert line is not None, f"the fork server died:\n{self.log.read_text()[-3000:]}"
            if line.startswith("PID "):
                pid = int(line.split()[1])
            elif line.startswith("EXIT "):
                return int(line.split()[1])

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Interpreters:
    """Fork servers, one per XLA_FLAGS value asked for (XLA parses some of its flags when JAX is
    imported: a 2-device run forked from a server imported with 1 device gave another test NLL in the
    7th digit), each started at its first run; run() forks one fresh interpreter and waits for it."""

    def __init__(self, repo: Path, tmp_dir: Path):
        self.repo, self.tmp_dir, self.servers, self.count = repo, tmp_dir, {}, 0
        self.base_env = dict(os.environ)

    def run(self, argv: list[str], *, env: dict, cwd: Path, code: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """argv as after `python` (["-c", ...] with code, or [script, *args]); env is the whole environment."""
        changed = sorted(k for k in set(env) | set(self.base_env)
                         if k.startswith("JAX_") and env.get(k) != self.base_env.get(k))
        assert not changed, f"{changed}: JAX reads these when imported; run a fresh interpreter instead"
        flags = env.get("XLA_FLAGS", "")
        if flags not in self.servers:
            log = self.tmp_dir / f"server{len(self.servers)}.stderr"
            self.servers[flags] = _Server(self.repo, {**self.base_env, "XLA_FLAGS": flags}, log)
        self.count += 1
        out, err = (self.tmp_dir / f"{self.count}.{s}" for s in ("stdout", "stderr"))
        request = {"argv": list(argv), "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                   "code": code}
        returncode = self.servers[flags].run(request, timeout)
        return subprocess.CompletedProcess(argv, returncode, out.read_text(), err.read_text())

    def close(self):
        for server in self.servers.values():
            server.close()
