"""Compiled code kept between runs in the user's cache directory, as Python keeps __pycache__.

Every run that renders compiles the same templates and runs the load job's source (migration_plan):
a fixed cost of ~0.2 s before the first table. Here the compiled forms are kept in $DWCTL_CACHE_DIR,
else $XDG_CACHE_HOME/dwctl, else ~/.cache/dwctl (DWCTL_CACHE_DIR empty: nothing is kept). An entry is
used only for the very source it was compiled from (its hash names or checks it) and, by its folder's
name, the same Python and Jinja: anything else is compiled again. The cache never fails a run: an
unreadable entry is compiled again, an unwritable folder is not written.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile

CACHE_ENV = "DWCTL_CACHE_DIR"


def cache_folder(kind: str, flavour: str) -> str | None:
    """A private folder for one kind of entry compiled under `flavour` (what else decides the code)."""
    base = os.environ.get(CACHE_ENV)
    if base is None:
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(home, "dwctl")
    if not base:
        return None
    tag = hashlib.sha256(f"{sys.version}|{flavour}".encode()).hexdigest()[:16]
    folder = os.path.join(base, f"{kind}-{tag}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder


def template_cache(options: dict):
    """Jinja's bytecode cache for an environment with these options (the code Jinja generates depends on
    them and on Jinja's version; the template's own text is checked by Jinja's checksum)."""
    import jinja2
    from jinja2 import FileSystemBytecodeCache

    class TemplateCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket):
            try:
                super().load_bytecode(bucket)
            except Exception:  # a damaged entry: pickle and marshal raise many kinds
                bucket.reset()

        def dump_bytecode(self, bucket):
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    flavour = repr((jinja2.__version__, sorted((k, repr(v)) for k, v in options.items())))
    folder = cache_folder("templates", flavour)
    return None if folder is None else TemplateCache(folder, "%s.cache")


def compiled(source: str, filename: str):
    """compile(source, filename, "exec"), from the cache when this source was compiled before."""
    key = hashlib.sha256(f"{filename}\0{source}".encode()).hexdigest()
    folder = cache_folder("code", "")
    path = None if folder is None else os.path.join(folder, key + ".marshal")
    if path is not None:
        try:
            with open(path, "rb") as f:
                return marshal.load(f)
        except Exception:  # none yet, or damaged
            pass
    code = compile(source, filename, "exec")
    if path is not None:
        try:
            with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False, suffix=".tmp") as f:
                marshal.dump(code, f)
            os.replace(f.name, path)
        except OSError:
            pass
    return code
