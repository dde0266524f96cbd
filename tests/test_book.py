"""The website: table of contents, stored chapter outputs, and every page in a real browser.

The browser test builds the site from the notebooks' STORED outputs (execution
off, so it checks what will be published, in about a minute), then opens each
page of the table of contents in headless Chromium and checks that it loads,
that MathJax typeset its equations, and that its figures are present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOC = ROOT / "_toc.yml"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-dev-shm-usage", "--no-first-run",
    "--allow-file-access-from-files",
]
# Math in MyST sources: $...$ inline, $$...$$ display, or a {math} role/directive.
MATH = re.compile(r"\$\$|(?<![\\$])\$[^$\s][^$\n]*\$|\{math\}")
# What must never reach a rendered page: log lines, progress bars, warnings.
NOISE = re.compile(r"oneDNN|absl::|WARNING:|I0000|Warning:|\d+/\d+ ━|━━━━━━━━━━ \d")
# A code cell that draws a figure: pyplot, or a plotting function of dlcourse
# (`plot_history(...)`, `figures.plot_rate(...)`), not a `def plot_...`.
DRAWS = re.compile(r"(?<!def )\b(plt\.(subplots|figure|subplot_mosaic)|plot_\w+|figures\.\w+)\s*\(")
# MyST-NB glue references in markdown: {glue}`key`, {glue:text}`key:.2f`, {glue:figure} key.
GLUE_ROLE = re.compile(r"\{glue(?::(?:any|text|md|figure|math))?\}`([^`:]+)(?::[^`]*)?`")
GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::(?:any|figure|math|md))?\}\s+(\S+)", re.M)
# What a reader must not see: nbval's comment markers, and cells printing a bare verdict.
NBVAL_COMMENT = re.compile(r"#\s*NBVAL_\w+")
VERDICT = re.compile(r"^[^\n]*:\s*(True|False)\s*$", re.M)


def _toc_files() -> list[str]:
    """Every document of the table of contents, in order, root first."""
    toc = yaml.safe_load(TOC.read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def _source(doc: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{doc}{suffix}"
        if path.is_file():
            return path
    return None


def _chapters() -> list[Path]:
    """The book's chapter notebooks (book/*.ipynb) listed in the table of contents."""
    paths = [_source(doc) for doc in _toc_files() if doc.startswith("book/")]
    return [p for p in paths if p is not None and p.suffix == ".ipynb"]


def _executed(doc: str) -> bool:
    """Whether the site shows this document's outputs (exercises are rendered unexecuted)."""
    return not doc.startswith("exercises/")


def test_toc_lists_only_existing_files():
    files = _toc_files()
    missing = [doc for doc in files if _source(doc) is None]
    assert not missing, f"_toc.yml lists documents that do not exist: {missing}"
    duplicated = sorted({doc for doc in files if files.count(doc) > 1})
    assert not duplicated, f"_toc.yml lists documents twice: {duplicated}"
    assert files[-1] == "book/bibliography", "the bibliography must be the last page"


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_chapter_imports_dlcourse_and_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{path.name}: kernelspec must be python3")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(re.search(r"^\s*(from|import) dlcourse\b", c.source, re.M) for c in code), (
        f"{path.name} never imports dlcourse")
    # The setup cell (tools/setup_cells.py) prints nothing here; it may be stored unexecuted.
    assert all(c.get("execution_count") for c in code
               if "dlcourse-setup" not in c.metadata.get("tags", [])), (
        f"{path.name} is not fully executed")
    for cell in code:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: an error output"
            assert out.get("name") != "stderr", (
                f"{path.name}: stderr output in cell starting {cell.source[:50]!r}")
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            assert not NOISE.search(str(text)), (
                f"{path.name}: log or progress-bar output: {NOISE.search(str(text)).group()!r}")
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for part in ("What you will learn", "Key takeaways"):
        assert part in md, f"{path.name}: no '{part}' box"


def _hidden(cell) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return bool(tags & {"remove-cell", "remove-output"})


def _drawing_cells(nb) -> list:
    """The code cells that draw a figure, whose output the page must show."""
    return [c for c in nb.cells
            if c.cell_type == "code" and not _hidden(c) and DRAWS.search(c.source)]


def _has_image(cell) -> bool:
    return any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {}))


def test_drawing_cells_are_recognised():
    """The pattern that finds drawing cells finds them, and only them."""
    draws = ["fig, ax = plt.subplots()", "fig = plot_history(runs)",
             "fig = figures.plot_rate(rate)", "plt.figure(figsize=(3, 3))"]
    quiet = ["def plot_curve(x):\n    return x", "print('plot_history')  # no call",
             "x = np.arange(3)"]
    assert all(DRAWS.search(s) for s in draws)
    assert not [s for s in quiet if DRAWS.search(s)]


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_every_drawing_cell_stores_its_figure(path):
    """A cell that draws must keep an image output (a kernel on the Agg backend stores none)."""
    nb = nbformat.read(path, as_version=4)
    blank = [c.source.strip().splitlines()[0][:70] for c in _drawing_cells(nb) if not _has_image(c)]
    assert not blank, (f"{path.name}: {len(blank)} drawing cell(s) without an image output "
                       f"(was the kernel's matplotlib backend inline?): {blank}")


def _glue_keys(nb) -> set[str]:
    """Names glued by the notebook's stored outputs (MyST-NB's `glue`)."""
    keys = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                keys.add(name)
    return keys


def _glue_refs(markdown: str) -> set[str]:
    text = re.sub(r"```(?!\{glue).*?```", "", markdown, flags=re.S)   # not inside code blocks
    return {m.strip() for m in GLUE_ROLE.findall(text)} | set(GLUE_DIRECTIVE.findall(text))


def test_glue_references_are_recognised():
    md = ("error {glue:text}`err:.1f` %, {glue}`n` runs, {glue:md}`table` and\n"
          ":::{glue:figure} fig_rate\n:::\n```python\n{glue}`in_code`\n```")
    assert _glue_refs(md) == {"err", "n", "table", "fig_rate"}


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_every_glued_value_is_computed(path):
    """Each number the prose takes from a computation ({glue}) is stored by a cell."""
    nb = nbformat.read(path, as_version=4)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = sorted(_glue_refs(md) - _glue_keys(nb))
    assert not missing, (f"{path.name}: the prose uses glued values that no cell glues "
                         f"(or the notebook is not executed): {missing}")


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_reader_sees_no_test_scaffolding(path):
    """nbval markers are cell tags, not comments; claims are shown as numbers, not `: True`."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        if NBVAL_COMMENT.search(cell.source):
            problems.append(f"nbval comment in the code: {cell.source.splitlines()[0][:60]!r}")
        if "remove-output" in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            if VERDICT.search(text):
                problems.append(f"a verdict printed for the reader: {VERDICT.search(text).group()!r}")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The website built from the stored outputs, in a temporary folder."""
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.is_file():
        pytest.skip("jupyter-book is not installed in this environment")
    out = tmp_path_factory.mktemp("site")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    # paths of local extensions are relative to the config file, which moves
    local = config.get("sphinx", {}).get("local_extensions") or {}
    config["sphinx"]["local_extensions"] = {k: str(ROOT / v) for k, v in local.items()}
    config_file = out / "_config.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--builder", "html", "--warningiserror", "--nitpick",
         "--keep-going", "--config", str(config_file), "--path-output", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert result.returncode == 0, (
        f"the site did not build without warnings:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    html = out / "_build" / "html"
    assert (html / "index.html").is_file()
    return html


def _dom(chromium: str, page: Path) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, f"chromium failed on {page.name}: {result.stderr[-2000:]}"
    return result.stdout


def _expected_figures(source: Path, doc: str) -> int:
    """Images the page must show: one per drawing cell (or per stored image, if more),
    or one per figure/image directive of a Markdown page."""
    if source.suffix == ".md":
        return len(re.findall(r"^[`:]{3,}\{(figure|image)\}", source.read_text(), re.M))
    if not _executed(doc):
        return 0
    nb = nbformat.read(source, as_version=4)
    stored = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or _hidden(cell):
            continue
        stored += sum(1 for o in cell.get("outputs", [])
                      if any(k.startswith("image/") for k in o.get("data", {})))
    # at least one image per drawing cell, whatever the stored outputs hold
    return max(stored, len(_drawing_cells(nb)))


def _has_math(source: Path) -> bool:
    if source.suffix == ".md":
        text = source.read_text()
    else:
        nb = nbformat.read(source, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    text = re.sub(r"```.*?```", "", text, flags=re.S)   # code blocks hold no math
    text = re.sub(r"`[^`\n]*`", "", text)                # nor does inline code
    return bool(MATH.search(text))


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_renders_in_chromium(site):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless Chromium not found (install Debian's `chromium`, or `make browser`)")
    problems = []
    for doc in _toc_files():
        source = _source(doc)
        page = site / f"{doc}.html"
        if not page.is_file():
            problems.append(f"{doc}: no page {page.name} in the built site")
            continue
        dom = _dom(chromium, page)
        if "<article" not in dom or not re.search(r"<h1[\s>]", dom):
            problems.append(f"{doc}: the page did not load (no article/h1 in the DOM)")
            continue
        if _has_math(source) and "<mjx-container" not in dom:
            problems.append(f"{doc}: has math but MathJax typeset nothing")
        if re.search(r"\$\$|\\\(|\\\[", re.sub(r"<(pre|code)[\s\S]*?</\1>", "", dom)) and (
                "<mjx-container" not in dom):
            problems.append(f"{doc}: raw TeX left on the page")
        images = re.findall(r'<img[^>]*\ssrc="([^"]+)"', dom)
        local = [src for src in images if not re.match(r"(https?:|data:)", src)]
        broken = [src for src in local if not (page.parent / src.split("#")[0]).resolve().is_file()]
        if broken:
            problems.append(f"{doc}: images whose files are missing: {broken}")
        figures = [src for src in local if "_images/" in src]
        expected = _expected_figures(source, doc)
        if len(figures) < expected:
            problems.append(f"{doc}: {len(figures)} figures on the page, {expected} expected")
    assert not problems, "\n".join(problems)


def test_plot_history_draws_log_axes_where_asked():
    """The book's history figures can put the loss on a log axis; a wrong name is refused."""
    import matplotlib.pyplot as plt

    from dlcourse.plotting import plot_history

    run = {"loss": [2.0, 0.1, 0.001], "val_loss": [2.1, 0.3, 0.4],
           "accuracy": [0.1, 0.9, 1.0], "val_accuracy": [0.1, 0.8, 0.8]}
    fig = plot_history({"run": run}, logy=("loss",))
    try:
        assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="logy"):
        plot_history({"run": run}, logy=("los",))
