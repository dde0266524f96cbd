"""Serve MathJax 3 from the built site instead of a CDN.

The course must build and render offline (a student on a train, a CI machine
without internet). MathJax 3 ships in the ``django-static-mathjax`` wheel
(import name ``mathjax``); this extension copies its combined
``tex-mml-chtml.js`` and the CHTML web fonts it loads into
``_static/mathjax`` and points Sphinx's ``mathjax_path`` there. Without the
package, Sphinx's CDN default is kept.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

TARGET = "mathjax"
FILES = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2")


def _es5_dir() -> Path | None:
    spec = importlib.util.find_spec("mathjax")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "static" / "mathjax" / "es5"
        if (candidate / FILES[0]).is_file():
            return candidate
    return None


def _configure(app, config):
    if _es5_dir() is not None:
        config.mathjax_path = f"{TARGET}/{FILES[0]}"


def _copy(app, exception):
    es5 = _es5_dir()
    if exception is not None or es5 is None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / TARGET
    for relative in FILES:
        src, dst = es5 / relative, dest / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
