#!/usr/bin/env python3
"""Bridge between the AIOpsLab Task Executor and AIOpsLab's orchestrator (one process per task).

The executor spawns this file with the Python of the user's AIOpsLab environment and speaks
newline-delimited JSON with it on file descriptor 3 (a duplex pipe). Standard output and standard
error belong to AIOpsLab and its child processes; they are only ever logged, never parsed.

Conversation:
  bridge -> worker  hello {protocol}
  worker -> bridge  [prepare {...}, then, when a task adopts this bridge,] run {...} | list {}
  bridge -> worker  phase / initialized / action_request / step / results / cleanup / error / problems / bye
  worker -> bridge  action_reply {step, text} | action_error {step, code, message} | stop {reason}

Standard library only: it runs inside the user's AIOpsLab virtualenv, whatever else is installed.
"""

import ast
import asyncio
import atexit
import enum
import fcntl
import json
import math
import os
import pathlib
import queue
import re
import signal
import sys
import tempfile
import threading
import time
import traceback

PROTOCOL_VERSION = 1
CHANNEL_FD = 3
# Exit codes the runner interprets (any outcome of the problem itself is reported as events; 0 = ran to the end).
EXIT_OK = 0
EXIT_BRIDGE_BUG = 1
EXIT_PROTOCOL = 2
EXIT_TERMINATED = 3

# The container name AIOpsLab's Shell hard-codes for `k8s_host: kind` (INTERFACE §7.5).
UPSTREAM_CONTROL_PLANE = "kind-control-plane"
# Fixed names AIOpsLab's fault injectors write directly under /tmp (INTERFACE §7.6).
FIXED_TEMP_PATH = re.compile(r"^/tmp/([^/]+)$")
TRACEBACK_TAIL_LINES = 40


# ----------------------------------------------------------------------------------------------
# JSON: AIOpsLab's return values hold pydantic items, enums, Paths and NaN floats.


def jsonable(value, depth=0):
    """A JSON-ready copy of `value` (strict JSON: no NaN, string keys)."""
    if depth > 50:
        return repr(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(jsonable(k, depth + 1)) if not isinstance(k, str) else k: jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, pathlib.PurePath):
        return str(value)
    dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
    if callable(dump):
        try:
            return jsonable(dump(), depth + 1)
        except Exception:
            pass
    for attr in ("item", "tolist"):  # numpy scalars and arrays, without importing numpy
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return jsonable(fn(), depth + 1)
            except Exception:
                pass
    return repr(value)


def response_text(resp):
    """What the environment answered, as text (a valid submit answers with an enum)."""
    if isinstance(resp, str):
        return resp
    if isinstance(resp, enum.Enum):
        return resp.name
    return str(resp)


def is_valid_submission(resp):
    return isinstance(resp, enum.Enum) and resp.name == "VALID_SUBMISSION"


def traceback_tail(exc):
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    return "\n".join(lines[-TRACEBACK_TAIL_LINES:])


# ----------------------------------------------------------------------------------------------
# The channel on fd 3.


class Channel:
    def __init__(self, fd):
        self.fd = fd
        self.write_lock = threading.Lock()
        self.closed = False
        # AIOpsLab spawns kubectl/helm/port-forwards; none of them may hold our channel open.
        os.set_inheritable(fd, False)

    def send(self, type_, **fields):
        if self.closed:
            return
        payload = {"type": type_, "ts": time.time()}
        payload.update(fields)
        data = (json.dumps(jsonable(payload), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        with self.write_lock:
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
            except OSError:
                self.closed = True

    def read_messages(self, on_message, on_eof):
        """Reader-thread body: decode lines and hand each message over; `on_eof` when the worker is gone."""
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                on_eof()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line.decode("utf-8"))
                except ValueError:
                    self.send("protocol_warning", message="undecodable message from the worker")
                    continue
                if isinstance(msg, dict):
                    on_message(msg)


# ----------------------------------------------------------------------------------------------
# Exceptions raised inside AIOpsLab's agent loop. Ordinary Exceptions on purpose: the orchestrator's
# `except Exception` then recovers the injected fault before re-raising (INTERFACE §5.3, §10.8).


class StopRequested(Exception):
    def __init__(self, reason):
        super().__init__(f"stop requested by the executor ({reason})")
        self.reason = reason


class AgentActionError(Exception):
    def __init__(self, code, message):
        super().__init__(f"the agent failed ({code}): {message}")
        self.code = code


class ProxyAgent:
    """The agent AIOpsLab sees: every get_action is answered by the executor's agent over fd 3."""

    def __init__(self, bridge):
        self._bridge = bridge

    async def get_action(self, input: str) -> str:
        return await self._bridge.request_action(input)


# ----------------------------------------------------------------------------------------------


class Bridge:
    def __init__(self, channel):
        self.channel = channel
        self.commands = queue.Queue()
        self.lock = threading.Lock()
        self.pending = {}  # step -> (loop, future)
        self.stop_reason = None
        self.step = 0
        self.phase = "startup"
        self.orch = None
        self.redirected_temp_files = {}

    # -- messages from the worker (reader thread) --

    def on_message(self, msg):
        kind = msg.get("type")
        if kind in ("prepare", "run", "list"):
            self.commands.put(msg)
        elif kind == "action_reply":
            text = msg.get("text")
            self._settle(msg.get("step"), result=text if isinstance(text, str) else ("" if text is None else str(text)))
        elif kind == "action_error":
            self._settle(msg.get("step"), error=AgentActionError(str(msg.get("code") or "agent_error"), str(msg.get("message") or "")))
        elif kind == "stop":
            self.request_stop(str(msg.get("reason") or "stop"))
        else:
            self.channel.send("protocol_warning", message=f"unknown message type {kind!r}")

    def on_eof(self):
        # The worker is gone: nobody will answer or collect results, so end the run the safest way.
        self.commands.put(None)
        with self.lock:
            waiting = bool(self.pending)
        self.request_stop("worker_gone")
        if not waiting and self.phase != "listing":
            os.kill(os.getpid(), signal.SIGTERM)

    def _settle(self, step, result=None, error=None):
        with self.lock:
            entry = self.pending.get(step)
        if entry is None:
            self.channel.send("protocol_warning", message=f"reply for step {step!r}, which is not waiting")
            return
        loop, fut = entry

        def settle():
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)

        loop.call_soon_threadsafe(settle)

    def request_stop(self, reason):
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            entries = list(self.pending.values())
        for loop, fut in entries:
            err = StopRequested(reason)
            loop.call_soon_threadsafe(lambda f=fut, e=err: f.done() or f.set_exception(e))

    # -- the proxy agent's side (event loop, main thread) --

    async def request_action(self, input):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self.lock:
            if self.stop_reason is not None:
                raise StopRequested(self.stop_reason)
            self.step += 1
            step = self.step
            self.pending[step] = (loop, fut)
        self.channel.send("action_request", step=step, input=input)
        try:
            return await fut
        finally:
            with self.lock:
                self.pending.pop(step, None)

    # -- phases --

    def enter(self, phase, marker=None, **fields):
        self.phase = phase
        if marker:
            self.channel.send("phase", phase=marker, **fields)

    # -- listing --

    def list_problems(self, msg):
        self.phase = "listing"
        prepare_import_path(msg.get("aiopslab_dir"))
        from aiopslab.orchestrator.problems.registry import ProblemRegistry

        registry = ProblemRegistry()
        problems = [{"id": pid, "deployment": registry.get_problem_deployment(pid)} for pid in registry.get_problem_ids()]
        self.channel.send("problems", problems=problems)

    # -- ahead of the run --

    def prepare(self, msg):
        """Import AIOpsLab ahead of the run (seconds with the real framework): while the previous run
        tears down or the worker checks its cluster. Its observer reads $HOME/.kube/config at import;
        the worker uses this process for a run only while that file is unchanged, else it stops it."""
        use_private_temp_dir(msg.get("tmp_dir"))
        prepare_import_path(msg.get("aiopslab_dir"))
        from aiopslab.orchestrator import Orchestrator  # noqa: F401  (the import is the point)

        self.channel.send("phase", phase="prepared")

    # -- one episode --

    def run_episode(self, msg):
        problem_id = msg["problem_id"]
        max_steps = int(msg["max_steps"])
        aiopslab_dir = msg.get("aiopslab_dir")
        results_dir = pathlib.Path(msg["results_dir"])
        cluster = msg.get("cluster") or {}

        self.enter("startup", "startup_started")
        use_work_dir(msg.get("work_dir"))
        use_private_temp_dir(msg.get("tmp_dir"))
        results_dir.mkdir(parents=True, exist_ok=True)
        prepare_import_path(aiopslab_dir)
        from aiopslab.orchestrator import Orchestrator

        self.apply_isolation(cluster, bool(msg.get("host_shell_expansion")), msg.get("tmp_dir"), msg.get("lock_dir"))

        # results_dir must be a Path: AIOpsLab joins it with `/` (INTERFACE §1.1).
        orch = Orchestrator(results_dir=results_dir)
        self.orch = orch
        orch.register_agent(ProxyAgent(self), name=str(msg.get("agent_name") or "aiopslab-executor"))

        self.enter("init", "init_started")
        task_description, instructions, actions = orch.init_problem(problem_id)
        self.enter("init", "init_done")
        session = orch.session
        self.channel.send(
            "initialized",
            problem_id=problem_id,
            task_description=task_description,
            instructions=instructions,
            actions=actions,
            templates=read_templates(aiopslab_dir),
            session_id=str(session.session_id) if session is not None and getattr(session, "session_id", None) else None,
        )
        self.instrument(orch)

        returned = asyncio.run(orch.start_problem(max_steps=max_steps))
        self.enter("teardown", "teardown_done")
        final_state = returned.get("final_state") if isinstance(returned, dict) else None
        self.send_results(
            {
                "final_state": response_text(final_state) if final_state is not None else None,
                "submitted": is_valid_submission(final_state),
                "framework_overhead": returned.get("framework_overhead") if isinstance(returned, dict) else None,
                "history_length": len(returned.get("history") or []) if isinstance(returned, dict) else None,
            }
        )

    def instrument(self, orch):
        """Emit steps and phase markers by wrapping the orchestrator's own calls (no upstream edits)."""
        bridge = self
        session = orch.session
        problem = session.problem
        original_ask_env = orch.ask_env

        async def ask_env(input):
            started = time.monotonic()
            step = bridge.step
            resp = await original_ask_env(input)
            api = args = kwargs = None
            try:
                parsed = orch.parser.parse(input)
                api, args, kwargs = parsed.get("api_name"), parsed.get("args"), parsed.get("kwargs")
            except Exception:
                pass
            bridge.channel.send(
                "step",
                step=step,
                action=input,
                api=api,
                args=args,
                kwargs=kwargs,
                response=response_text(resp),
                submitted=is_valid_submission(resp),
                duration_ms=round((time.monotonic() - started) * 1000),
            )
            return resp

        orch.ask_env = ask_env

        original_start, original_end = session.start, session.end

        def start():
            bridge.enter("loop", "loop_started")
            return original_start()

        def end():
            result = original_end()
            bridge.enter("eval", "loop_done")
            return result

        session.start, session.end = start, end

        original_eval = problem.eval

        def evaluate(*args, **kwargs):
            bridge.enter("eval", "eval_started")
            results = original_eval(*args, **kwargs)
            bridge.enter("teardown", "eval_done")
            return results

        problem.eval = evaluate

    def send_results(self, return_summary=None):
        session = self.orch.session if self.orch is not None else None
        if session is None:
            return
        snapshot = None
        try:
            snapshot = session.to_dict()
        except Exception as exc:  # a half-built session still has its parts
            snapshot = {
                "session_id": str(getattr(session, "session_id", "")) or None,
                "problem_id": getattr(session, "pid", None),
                "start_time": getattr(session, "start_time", None),
                "end_time": getattr(session, "end_time", None),
                "trace": [jsonable(item) for item in getattr(session, "history", [])],
                "results": getattr(session, "results", None),
                "to_dict_error": str(exc),
            }
        results = getattr(session, "results", None)
        self.channel.send(
            "results",
            session=snapshot,
            results=results if isinstance(results, dict) and results else None,
            solution=getattr(session, "solution", None),
            return_summary=return_summary,
        )

    def cleanup_after_abort(self, failed_phase):
        """After an exception in the loop or in eval, do what upstream skips: recover the fault (eval only;
        the loop handler already did) and remove the application, so the next task starts from a tidy cluster."""
        session = self.orch.session if self.orch is not None else None
        problem = getattr(session, "problem", None)
        if problem is None:
            return
        self.enter("teardown", "teardown_started", after=failed_phase)
        recovered = failed_phase == "loop"
        app_cleaned = False
        error = None
        try:
            if not recovered:
                from aiopslab.orchestrator import orchestrator as orchestrator_module

                problem.recover_fault()
                cleanup_hook = getattr(orchestrator_module, "exit_cleanup_fault", None)
                if cleanup_hook is not None:
                    atexit.unregister(cleanup_hook)
                recovered = True
            app = getattr(problem, "app", None)
            if app is not None and hasattr(app, "cleanup"):
                app.cleanup()
                app_cleaned = True
        except Exception as exc:
            error = exc
        self.channel.send("cleanup", after=failed_phase, recovered=recovered, app_cleaned=app_cleaned, error=str(error) if error else None)
        if error is not None:
            self.report_error("teardown", error)
        else:
            self.channel.send("phase", phase="teardown_done", after=failed_phase)

    def report_error(self, phase, exc, type_name=None):
        self.channel.send(
            "error",
            phase=phase,
            error_type=type_name or type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            traceback=traceback_tail(exc),
        )

    # -- isolation (INTERFACE §10.4, §10.5) --

    def apply_isolation(self, cluster, host_shell_expansion, tmp_dir, lock_dir):
        patch_agent_shell(cluster.get("control_plane_container"), host_shell_expansion)
        if tmp_dir:
            self.redirect_fixed_temp_files(pathlib.Path(tmp_dir))
        serialise_telemetry_ports(lock_dir)
        try:
            from aiopslab.paths import config as app_config

            host = app_config.get("k8s_host")
            if host != "kind":
                self.channel.send("warning", message=f"aiopslab/config.yml has k8s_host: {host!r}; the executor expects 'kind', so agent commands do not go to the worker's cluster node")
        except Exception:
            pass

    def redirect_fixed_temp_files(self, private_dir):
        """AIOpsLab's injectors write fixed names such as /tmp/<service>_modified.yaml and then run
        `kubectl apply -f /tmp/...`; two workers on one host would overwrite each other's files. Inside
        aiopslab modules, `open('/tmp/<name>')` goes to this task's private folder, and KubeCtl commands
        naming such a file are rewritten to the same private path."""
        redirected = self.redirected_temp_files
        real_open = open

        def private_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)):
                match = FIXED_TEMP_PATH.match(os.fspath(file))
                if match:
                    target = str(private_dir / match.group(1))
                    redirected[os.fspath(file)] = target
                    file = target
            return real_open(file, *args, **kwargs)

        for name, module in list(sys.modules.items()):
            if module is not None and (name == "aiopslab" or name.startswith("aiopslab.")) and "open" not in vars(module):
                module.open = private_open

        try:
            from aiopslab.service.kubectl import KubeCtl
        except Exception:
            return
        original_exec = KubeCtl.exec_command

        def exec_command(self_, command, *args, **kwargs):
            if isinstance(command, str):
                for original, target in list(redirected.items()):
                    command = re.sub(re.escape(original) + r"(?![\w.-])", lambda _m, t=target: t, command)
            return original_exec(self_, command, *args, **kwargs)

        KubeCtl.exec_command = exec_command


def patch_agent_shell(container, host_shell_expansion):
    """Send the agent's exec_shell to this worker's control-plane container instead of the hard-coded
    `kind-control-plane`, and (by default) pass the command to `sh -c` inside the node as one argv
    element, so the host shell never expands $VAR, $(...) or backticks. Output conventions stay upstream's."""
    import subprocess

    from aiopslab.service.shell import Shell

    original = Shell.docker_exec

    def docker_exec(container_name, command, timeout=30):
        target = container if container_name == UPSTREAM_CONTROL_PLANE else container_name
        if not target:
            return "[ERROR] Docker command execution failed: this worker's cluster has no control-plane container to run commands in"
        if host_shell_expansion:
            return original(target, command, timeout=timeout)
        try:
            out = subprocess.run(["docker", "exec", target, "sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except Exception as e:
            raise RuntimeError(f"Failed to execute command in Docker container: {target}\nError: {str(e)}")
        if out.returncode != 0:
            return f"[ERROR] Docker command execution failed: {out.stderr.decode('utf-8', 'replace')}"
        return out.stdout.decode("utf-8", "replace")

    Shell.docker_exec = staticmethod(docker_exec)


def serialise_telemetry_ports(lock_dir):
    """get_traces port-forwards on the fixed local port 16686 and get_metrics queries the fixed port 32000;
    concurrent workers on one host would read each other's clusters. Hold a host-wide lock around them."""
    if not lock_dir:
        return
    try:
        from aiopslab.orchestrator.actions.base import TaskActions
    except Exception:
        return
    os.makedirs(lock_dir, exist_ok=True)
    lock_path = os.path.join(lock_dir, "aiopslab-executor-telemetry-ports.lock")

    def locked(fn):
        def call(*args, **kwargs):
            with open(lock_path, "a") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    return fn(*args, **kwargs)
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

        for attr in ("__doc__", "__name__", "__qualname__", "is_action", "action_type"):
            if hasattr(fn, attr):
                try:
                    setattr(call, attr, getattr(fn, attr))
                except (AttributeError, TypeError):
                    pass
        return call

    for name in ("get_traces", "get_metrics"):
        fn = TaskActions.__dict__.get(name)
        if isinstance(fn, staticmethod):
            setattr(TaskActions, name, staticmethod(locked(fn.__func__)))


def use_work_dir(work_dir):
    """A bridge kept warm between tasks was started in the worker's folder; the run works in the task's."""
    if not work_dir:
        return
    os.makedirs(work_dir, exist_ok=True)
    os.chdir(work_dir)
    os.environ["PWD"] = work_dir


def use_private_temp_dir(tmp_dir):
    if not tmp_dir:
        return
    os.makedirs(tmp_dir, exist_ok=True)
    os.environ["TMPDIR"] = tmp_dir
    tempfile.tempdir = tmp_dir


def prepare_import_path(aiopslab_dir):
    """AIOpsLab runs from a source checkout (INTERFACE §7.7): import it from AIOPSLAB_DIR."""
    if aiopslab_dir and os.path.isfile(os.path.join(aiopslab_dir, "aiopslab", "__init__.py")):
        if aiopslab_dir not in sys.path:
            sys.path.insert(0, aiopslab_dir)


def read_templates(aiopslab_dir):
    """Top-level string constants of <checkout>/clients/utils/templates.py, read with `ast` so the
    clients package (and its heavy imports) is never executed."""
    if not aiopslab_dir:
        return {}
    path = os.path.join(aiopslab_dir, "clients", "utils", "templates.py")
    try:
        with open(path, "r", encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return {}
    templates = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    templates[target.id] = value.value
    return templates


def install_sigterm_handler():
    """SIGTERM behaves like Ctrl+C: deferred inside AIOpsLab's critical sections (fault injection and
    recovery), otherwise an immediate KeyboardInterrupt, so the interpreter exits normally and AIOpsLab's
    atexit handler recovers an injected fault (the default SIGTERM action would skip it)."""

    def on_sigterm(signum, frame):
        current = signal.getsignal(signal.SIGINT)
        owner = getattr(current, "__self__", None)
        if owner is not None and type(owner).__name__ == "CriticalSection":
            current(signal.SIGINT, frame)
            return
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)


def before_run(bridge, step, msg):
    """A command that runs no episode (list, prepare): its failure is reported as a startup error."""
    try:
        step(msg)
        return True
    except Exception as exc:
        bridge.report_error("startup", exc)
        return False


def serve(channel, bridge):
    """Wait for the worker's command and carry it out; returns the exit code."""
    try:
        msg = bridge.commands.get(timeout=60)
    except queue.Empty:
        msg = None
    if msg is None:
        channel.send("error", phase="protocol", error_type="NoCommand", message="no run or list message arrived", traceback="")
        return EXIT_PROTOCOL
    if msg.get("protocol") != PROTOCOL_VERSION:
        channel.send("error", phase="protocol", error_type="ProtocolMismatch", message=f"worker speaks protocol {msg.get('protocol')!r}, bridge speaks {PROTOCOL_VERSION}", traceback="")
        return EXIT_PROTOCOL
    if msg.get("type") == "list":
        before_run(bridge, bridge.list_problems, msg)
        return EXIT_OK
    if msg.get("type") == "prepare":
        if not before_run(bridge, bridge.prepare, msg):
            return EXIT_OK
        # No time limit: a task may be claimed much later (the worker stops a bridge older than a
        # minute); the worker sends run, or stops this process, or goes away (end of file: None).
        msg = bridge.commands.get()
        if msg is None:
            return EXIT_OK
        if msg.get("protocol") != PROTOCOL_VERSION or msg.get("type") != "run":
            channel.send("error", phase="protocol", error_type="UnexpectedCommand", message=f"after prepare, expected run (protocol {PROTOCOL_VERSION}), got {msg.get('type')!r}", traceback="")
            return EXIT_PROTOCOL
    try:
        bridge.run_episode(msg)
        return EXIT_OK
    except KeyboardInterrupt as exc:
        bridge.report_error(bridge.phase, exc, type_name="Terminated")
        bridge.send_results()
        return EXIT_TERMINATED
    except Exception as exc:
        failed = bridge.phase
        bridge.report_error(failed, exc, type_name="StopRequested" if isinstance(exc, StopRequested) else None)
        bridge.send_results()
        # A stop must end quickly: skip the extra cleanup (the loop handler already recovered the fault).
        if failed in ("loop", "eval") and bridge.stop_reason is None:
            bridge.cleanup_after_abort(failed)
        return EXIT_OK


def main():
    try:
        os.fstat(CHANNEL_FD)
    except OSError:
        sys.stderr.write("aiopslab_bridge: file descriptor 3 is not open; this program is started by the AIOpsLab Task Executor\n")
        return EXIT_PROTOCOL
    install_sigterm_handler()
    channel = Channel(CHANNEL_FD)
    bridge = Bridge(channel)
    reader = threading.Thread(target=channel.read_messages, args=(bridge.on_message, bridge.on_eof), name="executor-channel", daemon=True)
    reader.start()
    channel.send("hello", protocol=PROTOCOL_VERSION, python=".".join(str(p) for p in sys.version_info[:3]), pid=os.getpid(), executable=sys.executable)
    try:
        code = serve(channel, bridge)
    except KeyboardInterrupt as exc:  # SIGTERM outside the episode's own handlers (e.g. during cleanup)
        channel.send("error", phase=bridge.phase, error_type="Terminated", message=str(exc) or "SIGTERM", traceback="")
        code = EXIT_TERMINATED
    except BaseException as exc:  # a bug in this file: still report it on the channel
        channel.send("error", phase="protocol", error_type=type(exc).__name__, message=str(exc), traceback=traceback_tail(exc))
        code = EXIT_BRIDGE_BUG
    channel.send("bye", exit_code=code)
    return code


if __name__ == "__main__":
    # sys.exit (not os._exit): atexit handlers, including AIOpsLab's fault recovery, must run.
    sys.exit(main())
