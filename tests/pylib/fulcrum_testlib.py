"""What the Python integration, end-to-end and benchmark scripts share:
where the built binaries are, and the one bounded wait they all use."""
import json
import os
import signal
import subprocess
import time

BUILD = os.environ.get("FULCRUM_BUILD",
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build"))


def binary(name):
    """The path of a built daemon or tool (fulcrum-control, fulcrum-data, fulcrum)."""
    for sub in ("control-plane", "data-plane", "mgmt"):
        path = os.path.join(BUILD, sub, name)
        if os.path.exists(path):
            return os.path.abspath(path)
    raise RuntimeError("%s not built under %s" % (name, BUILD))


def wait_for(what, check, timeout=10.0, interval=0.05):
    """Polls `check` until it returns a true value; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # a check may fail until the thing is ready
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def stop_process(p, sig=signal.SIGTERM, timeout=10):
    """Stops a process started in its own session (and its group): `sig`
    first, SIGKILL when it does not exit within `timeout` s. Returns its exit
    status."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
    return p.returncode


def read_text(path):
    """A log file's text so far ("" when it does not exist yet)."""
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def run_cli(socket, *args, check=True, json_out=False, timeout=30):
    """The fulcrum CLI against the management socket `socket`: the parsed JSON
    with json_out (when it succeeded), else the CompletedProcess; a failure
    raises when `check`."""
    argv = [binary("fulcrum"), "--socket", socket] + (["--json"] if json_out else []) + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("fulcrum %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
    if json_out and r.returncode == 0:
        return json.loads(r.stdout)
    return r
