"""The sandbox against the attacks a policy model can stumble into (or be rewarded for).

Each attack must end contained: the limit fires, `code_tests` scores 0, and this test process is unharmed.
The containment tests that rely on the uid drop (filesystem, signals to the parent) need a root parent,
which is how rlr runs in containers; elsewhere they are skipped (see `rlr.sandbox.runner` docstring).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlr.rewards.code import CodeTests
from rlr.sandbox import run_code, run_many
from rlr.sandbox.runner import _pids_of_uid

root_only = pytest.mark.skipif(os.getuid() != 0, reason="containment by uid drop needs a root parent")


def code_tests_score(code: str, tests: list[str], timeout_s: float = 2.0) -> float | None:
    return CodeTests(timeout_s=timeout_s)([f"```python\n{code}\n```"], tests=[tests])[0]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in (b"Z", b"X")


@pytest.fixture
def parent_dir() -> Iterator[Path]:
    """A directory the test owns that the sandbox can see, like a typical project dir (0755).

    Not pytest's tmp_path: its 0700 ancestors (and the sandbox's private /tmp) would hide it and prove less.
    """
    visible = [d for d in ("/srv", "/opt", "/run") if os.access(d, os.W_OK) and os.stat(d).st_mode & 0o001]
    path = Path(tempfile.mkdtemp(prefix="rlr-test-parent-", dir=visible[0] if visible else None))
    path.chmod(0o755)
    (path / "keep.txt").write_text("precious")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_runs_code_and_reports_enforcement() -> None:
    result = run_code("import json, collections.abc\nprint(json.dumps({'a': 6 * 7}))")
    assert result.ok and result.stdout == '{"a": 42}\n'
    assert {"RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE"} <= set(result.enforced)
    if os.getuid() == 0:
        assert "uid" in result.enforced


def test_errors_are_reported_not_raised() -> None:
    result = run_code("raise SystemExit(3)")
    assert not result.ok and result.returncode == 3
    result = run_code("def broken(:\n")
    assert not result.ok and "SyntaxError" in result.stderr


def test_run_many_keeps_order() -> None:
    results = run_many([f"print({i})" for i in range(5)], workers=3)
    assert [r.stdout.strip() for r in results] == ["0", "1", "2", "3", "4"]


def test_infinite_loop_times_out() -> None:
    start = time.monotonic()
    result = run_code("while True:\n    pass", timeout_s=1)
    # Killed near 1 s; the bound is loose so a loaded CI machine cannot fail it.
    assert result.timed_out and result.killed_reason == "timeout" and time.monotonic() - start < 15
    assert code_tests_score("while True:\n    pass", ["assert True"], timeout_s=1) == 0.0


def test_fork_bomb_is_contained_and_cleaned_up() -> None:
    code = textwrap.dedent(
        """
        import os
        print(os.getuid(), flush=True)
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """
    )
    result = run_code(code, timeout_s=1.5, max_processes=16)
    assert result.timed_out
    if "uid" in result.enforced:
        assert _pids_of_uid(int(result.stdout.split()[0])) == []
    assert code_tests_score(code, ["assert True"], timeout_s=1) == 0.0


def test_memory_bomb_hits_the_address_space_limit() -> None:
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))"
    result = run_code(code, memory_mb=256, timeout_s=5)
    assert not result.ok and not result.timed_out and "MemoryError" in result.stderr
    assert code_tests_score(code, ["assert len(blocks) > 100"]) == 0.0


@root_only
def test_rm_rf_of_the_parent_directory_fails(parent_dir: Path) -> None:
    code = f"import shutil\nshutil.rmtree({str(parent_dir)!r})"
    result = run_code(code)
    # Jailed, the host directory is not even there; in the fallback the uid drop refuses the removal.
    assert "PermissionError" in result.stderr or "FileNotFoundError" in result.stderr
    assert (parent_dir / "keep.txt").read_text() == "precious"
    assert code_tests_score(code, ["assert True"]) == 0.0  # the harness never runs after the error
    assert (parent_dir / "keep.txt").exists()


@root_only
def test_writing_outside_the_temp_dir_fails(parent_dir: Path) -> None:
    target = parent_dir / "pwned.txt"
    code = f"try:\n    open({str(target)!r}, 'w').write('pwned')\nexcept OSError as e:\n    print(e)"
    result = run_code(code)
    assert ("Permission denied" in result.stdout or "No such file" in result.stdout) and not target.exists()
    assert code_tests_score(code, [f"assert open({str(target)!r}).read() == 'pwned'"]) == 0.0
    # /tmp is private to the run when the kernel allows a mount namespace: nothing lands in the host's /tmp.
    marker = f"rlr-sandbox-test-{os.getpid()}.txt"
    result = run_code(f"open('/tmp/{marker}', 'w').write('x')\nprint(open('/tmp/{marker}').read())")
    assert result.ok and result.stdout == "x\n"
    if "jail" in result.enforced:
        assert not Path("/tmp", marker).exists()
    Path("/tmp", marker).unlink(missing_ok=True)
    # The code's own temp dir is writable, and removed afterwards.
    before = set(Path(tempfile.gettempdir()).glob("rlr-sandbox-*"))
    result = run_code("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())")
    assert result.ok and set(Path(tempfile.gettempdir()).glob("rlr-sandbox-*")) <= before


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_fake_secret_123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_fake_secret")
    code = textwrap.dedent(
        """
        import os
        print(dict(os.environ))
        try:
            print(open(f"/proc/{os.getppid()}/environ", "rb").read())
        except OSError as e:
            print("denied", e)
        """
    )
    result = run_code(code)
    assert "fake_secret" not in result.stdout + result.stderr
    score = code_tests_score("import os", ["assert os.environ.get('HF_TOKEN') == 'hf_fake_secret_123'"])
    assert score == 0.0


def test_no_network_even_to_localhost() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')"
        result = run_code(code)
        if "network" not in result.enforced:
            pytest.skip("kernel refused a network namespace here; network isolation is not enforced")
        assert not result.ok and ("unreachable" in result.stderr or "refused" in result.stderr)
        with pytest.raises(TimeoutError):
            server.accept()
        assert code_tests_score(code, ["assert True"]) == 0.0


@root_only
def test_killing_the_parent_is_refused() -> None:
    # Jailed, the code is PID 1 of its own namespace: its parent is pid 0 there, invisible, out of reach.
    code = "import os, signal\nprint(os.getppid(), flush=True)\nos.kill(os.getppid() or os.getpid(), signal.SIGKILL)"
    result = run_code(code)
    assert "PermissionError" in result.stderr or result.stdout.strip() == "0"
    # Signalling every pid it can name reaches nothing outside the run (this test process lives on).
    spray = "import os\nfor pid in range(1, 5000):\n    try:\n        os.kill(pid, 9)\n    except OSError:\n" \
            "        pass"
    run_code(spray, timeout_s=5)
    assert alive(os.getpid()) and alive(os.getppid())


def processes_named(name: str) -> list[int]:
    """Host pids whose command name (`prctl(PR_SET_NAME)`, 15 chars) is `name`; the code cannot know its host pid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _named_escapee(name: str, main_waits: bool) -> str:
    """A setsid double fork whose grandchild renames itself and sleeps past any timeout."""
    return textwrap.dedent(
        f"""
        import ctypes, os, time
        if os.fork() == 0:
            os.setsid()  # leaves the process group
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)  # PR_SET_NAME
                time.sleep(100)
            os._exit(0)
        time.sleep(0.5)
        print("forked", flush=True)
        if {main_waits!r}:
            time.sleep(100)
        """
    )


@pytest.mark.parametrize("main_waits", [True, False], ids=["timeout", "main_exits"])
def test_setsid_double_fork_does_not_outlive_the_run(main_waits: bool) -> None:
    name = f"rlrescape{os.getpid() % 100000}"
    result = run_code(_named_escapee(name, main_waits), timeout_s=2)
    assert result.stdout == "forked\n" and result.timed_out == main_waits
    if "pid_namespace" not in result.enforced and "uid" not in result.enforced:
        pytest.skip("neither a pid namespace nor a uid of its own: a setsid() escapee is out of reach")
    assert processes_named(name) == []
    expected = 0.0 if main_waits else 1.0  # the program that exits has "run to its end": `assert True` holds
    assert code_tests_score(_named_escapee(name, main_waits), ["assert True"], timeout_s=2) == expected
    assert processes_named(name) == []


def test_printing_gigabytes_is_cut_off() -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    start = time.monotonic()
    result = run_code(code, max_output_bytes=100_000, timeout_s=10)
    assert result.killed_reason == "output_limit" and len(result.stdout) <= 100_000
    assert time.monotonic() - start < 10  # cut at the limit, before the 10 s timeout
    assert code_tests_score(code, ["assert True"]) == 0.0


def test_file_size_limit() -> None:
    code = "open('big.bin', 'wb').write(b'x' * (8 * 2**20))"
    result = run_code(code, max_file_mb=1)
    assert not result.ok


HANGS_ON_2 = "def f(x):\n    if x == 2:\n        while True:\n            pass\n    return x + 1\n"
FOUR_TESTS = ["assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4", "assert f(4) == 5"]


def test_per_test_timeout_fails_the_hung_case_alone() -> None:
    """`test_timeout_s` limits each test: the case that hangs fails and the three others still count; without it
    the hang uses up the whole run's timeout and every test after it fails too."""
    from rlr.sandbox.judge import run_judged

    fenced = [f"```python\n{HANGS_ON_2}```"]
    start = time.monotonic()
    assert CodeTests(timeout_s=4, test_timeout_s=0.5)(fenced, tests=[FOUR_TESTS]) == [0.75]
    assert time.monotonic() - start < 4  # well inside the whole run's limit
    assert CodeTests(timeout_s=2)(fenced, tests=[FOUR_TESTS]) == [0.25]
    result = run_judged(HANGS_ON_2, FOUR_TESTS, test_timeout_s=0.5, timeout_s=4)
    assert result.passed == [True, False, True, True] and "time limit (0.5s)" in result.errors[1]
    # the limit is per test, not per call: many quick calls that add up past it fail that test
    slow = "import time\ndef f(x):\n    time.sleep(0.2)\n    return x + 1\n"
    result = run_judged(slow, ["assert [f(i) for i in range(5)] == [1, 2, 3, 4, 5]", "assert f(1) == 2"],
                        test_timeout_s=0.5, timeout_s=5)
    assert result.passed == [False, True]


def test_per_test_timeout_cannot_be_switched_off_by_the_code() -> None:
    """Code that ignores SIGALRM to dodge its side of the limit gains nothing: the judge's own alarm stops the
    test, and the code, whose replies are now out of step, fails every test after it."""
    dodge = ("import signal\n"
             "def f(x):\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
             "    while x == 2:\n        pass\n    return x + 1\n")
    start = time.monotonic()
    assert CodeTests(timeout_s=5, test_timeout_s=0.5)([f"```python\n{dodge}```"], tests=[FOUR_TESTS]) == [0.25]
    assert time.monotonic() - start < 4
