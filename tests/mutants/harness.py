"""Grade mutants of a solution notebook in-process, against the real hidden tests.

The grader runs a notebook in a sandboxed kernel and the hidden tests talk to
it through :class:`dlcourse.grading.proxy.Submission`. Here the notebook's
code cells run in a plain namespace of this process instead, and
:class:`LocalSubmission` serves the same requests from it: arguments and
results make the same round trip through :mod:`dlcourse.grading.codec`
(so a result the real grader could not read cannot pass here either), and a
student exception becomes the same :class:`SubmissionError`.

The solution runs once per exercise; a mutant re-runs only the cells that
define things (``def``/``class``) and the cells it edits or names in
``rerun``, on a copy of the solution's namespace (torch modules deep-copied),
so that expensive given cells (training the model of exercise 4) run once.
"""

from __future__ import annotations

import builtins
import copy
import importlib.util
import inspect
import json
import random
import re
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np

from dlcourse.grading import codec, proxy
from dlcourse.grading.errors import SubmissionTimeout

ROOT = Path(__file__).resolve().parents[2]
CALL_TIMEOUT = 120  # seconds per call, like the exercises' cell_timeout


@dataclass(frozen=True)
class Mutant:
    """A faulty version of a solution.

    Attributes:
        name: Short identifier.
        why: The fault, in words (what the statement asks that this breaks).
        edits: ``(old, new)`` replacements; each ``old`` must occur exactly once
            in the solution's code cells.
        rerun: Substrings identifying further cells to re-run (e.g. the cell that
            fills a results table from the mutated function).
        zero: Question prefixes (``"Q1"``) or test-name prefixes
            (``"test_l2_gradient"``) whose tests must ALL score 0 (for do-nothing
            and always-raising functions: no vacuous points).
        focus: Question prefixes whose tests are enough to show the loss (only
            they are run, to keep the suite fast; by default ``zero``, else all).
        hidden_only: The public checks are not expected to notice this fault
            (a concept answer, delegation to the reference, a statistical
            property that needs the hidden tests' larger inputs).
    """

    name: str
    why: str
    edits: tuple[tuple[str, str], ...]
    rerun: tuple[str, ...] = ()
    zero: tuple[str, ...] = ()
    focus: tuple[str, ...] = ()
    hidden_only: bool = False

    @property
    def questions(self) -> tuple[str, ...]:
        """The questions whose tests grade this mutant (all when empty)."""
        return self.focus or tuple(z for z in self.zero if not z.startswith("test_"))

    def must_score_zero(self, name: str, title: str) -> bool:
        """Whether the test ``name`` (titled ``title``) must earn nothing on this mutant."""
        return any(name.startswith(z) if z.startswith("test_") else title.startswith(z + ":")
                   for z in self.zero)


# -- running the notebook -------------------------------------------------------------
def code_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _is_check_cell(source: str) -> bool:
    return bool(re.fullmatch(r'\s*check\("q\d+"\)\s*', source))


def _defines(source: str) -> bool:
    return bool(re.search(r"^(def|class) ", source, flags=re.M))


def one_thread() -> None:
    """One BLAS/OpenMP/torch thread, as the grader's kernel has (``Limits.threads``).

    Tiny networks gain nothing from more, and on a loaded 2-core machine
    several threads per process multiply every training run's time.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def seed_everything(seed: int = 0) -> None:
    """Seed like the grader's kernel does before the notebook runs."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the grader seeds the legacy generator too)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def run_cells(sources: list[str], namespace: dict, label: str) -> None:
    for index, source in enumerate(sources):
        if _is_check_cell(source):
            continue
        code = compile(source, f"<{label} cell {index}>", "exec")
        try:
            exec(code, namespace)  # noqa: S102 (the course's own notebooks and their mutants)
        except NotImplementedError:
            pass


def _copy_namespace(namespace: dict) -> dict:
    out = {}
    for key, value in namespace.items():
        kind = type(value)
        if kind.__module__.startswith("torch") or isinstance(value, (dict, list, np.ndarray)):
            try:
                out[key] = copy.deepcopy(value)
                continue
            except Exception:  # noqa: BLE001 (not copyable: share it)
                pass
        out[key] = value
    return out


class Notebook:
    """A solution notebook run once, from which mutants are derived."""

    def __init__(self, exercise: str):
        self.exercise = exercise
        self.nb = nbformat.read(ROOT / "solutions" / f"{exercise}.ipynb", as_version=4)
        self.sources = code_cells(self.nb)
        one_thread()
        seed_everything()
        self.namespace: dict = {"__name__": "__main__"}
        run_cells(self.sources, self.namespace, exercise)

    def mutate(self, mutant: Mutant) -> dict:
        """The namespace of the solution with ``mutant``'s edits applied."""
        sources = list(self.sources)
        touched = set()
        for old, new in mutant.edits:
            hits = [i for i, s in enumerate(sources) if old in s]
            count = sum(s.count(old) for s in sources)
            if count != 1:
                raise AssertionError(f"{mutant.name}: {old!r} occurs {count} times in the "
                                     f"solution's code cells (expected once)")
            sources[hits[0]] = sources[hits[0]].replace(old, new)
            touched.add(hits[0])
        for marker in mutant.rerun:
            found = [i for i, s in enumerate(sources) if marker in s]
            if not found:
                raise AssertionError(f"{mutant.name}: no cell contains {marker!r}")
            touched.update(found)
        chosen = [s for i, s in enumerate(sources)
                  if (i in touched or _defines(s)) and not _is_check_cell(s)]
        namespace = _copy_namespace(self.namespace)
        one_thread()
        seed_everything()
        run_cells(chosen, namespace, f"{self.exercise}/{mutant.name}")
        return namespace


def mutated_notebook(exercise: str, mutant: Mutant):
    """The solution notebook with ``mutant``'s edits, as a notebook to grade for real."""
    nb = nbformat.read(ROOT / "solutions" / f"{exercise}.ipynb", as_version=4)
    for old, new in mutant.edits:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        count = sum(c.source.count(old) for c in cells)
        if count != 1:
            raise AssertionError(f"{mutant.name}: {old!r} occurs {count} times (expected once)")
        cells[0].source = cells[0].source.replace(old, new)
    return nb


def without_numpy_alias(exercise: str):
    """The solution with ``import numpy`` instead of ``import numpy as np`` (a correct notebook)."""
    nb = nbformat.read(ROOT / "solutions" / f"{exercise}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = cell.source.replace("import numpy as np", "import numpy")
            cell.source = re.sub(r"\bnp\.", "numpy.", source)
    return nb


# -- serving the hidden tests' requests -----------------------------------------------
@contextmanager
def _time_limit(seconds: float, label: str):
    def expire(signum, frame):
        raise SubmissionTimeout(f"{label} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Missing(LookupError):
    pass


class LocalSubmission(proxy.Submission):
    """The ``submission`` fixture, served from a namespace of this process."""

    def __init__(self, namespace: dict):
        super().__init__(None, timeout=CALL_TIMEOUT)
        self.namespace = namespace
        self._handles: dict[int, object] = {}

    def _resolve(self, path: str):
        head, *rest = path.split(".")
        if head == "__builtins__":  # IPython's user namespace holds the module itself
            value = builtins
        elif head not in self.namespace:
            raise _Missing(f"your notebook does not define {head!r}")
        else:
            value = self.namespace[head]
        for part in rest:
            if not hasattr(value, part):
                raise _Missing(f"{head} has no attribute {part!r}")
            value = getattr(value, part)
        return value

    def _marker(self, data):
        if "__ref__" in data:
            return True, self._resolve(data["__ref__"])
        if "__handle__" in data:
            return True, self._handles[data["__handle__"]]
        if "__tensor__" in data:
            import torch

            return True, torch.as_tensor(codec.decode({"__ndarray__": data["__tensor__"]}))
        return False, None

    @staticmethod
    def _encode_extra(value):
        kind = type(value)
        if kind.__module__.startswith("torch") and kind.__name__ in ("Tensor", "Parameter"):
            return codec.encode(value.detach().cpu().numpy())
        return None

    def _serve(self, request: dict) -> dict:
        try:
            op, name = request["op"], request.get("name")
            args = codec.decode(request.get("args", []), extra=self._marker)
            kwargs = codec.decode(request.get("kwargs", {"__dict__": []}), extra=self._marker)
            if op == "has":
                try:
                    self._resolve(name)
                    result = True
                except _Missing:
                    result = False
            elif op == "get":
                result = self._resolve(name)
            elif op == "call":
                result = self._resolve(name)(*args, **kwargs)
            elif op == "new":
                obj = self._resolve(name)(*args, **kwargs)
                handle = len(self._handles) + 1
                self._handles[handle] = obj
                return {"handle": handle}
            elif op == "method":
                result = getattr(self._handles[request["handle"]], name)(*args, **kwargs)
            elif op == "attr":
                obj = self._handles[request["handle"]]
                if not hasattr(obj, name):
                    raise _Missing(f"the object has no attribute {name!r}")
                result = getattr(obj, name)
            else:
                raise ValueError(f"unknown operation {op!r}")
            return {"ok": codec.encode(result, "the result", extra=self._encode_extra)}
        except codec.Unsupported as exc:
            return {"unsupported": {"type": exc.type_name, "where": exc.where}}
        except _Missing as exc:
            return {"missing": str(exc)}
        except SubmissionTimeout:
            raise
        except Exception as exc:  # noqa: BLE001 (the student's exception, reported as the grader does)
            return {"error": {"ename": type(exc).__name__, "evalue": str(exc)[:4000], "line": None}}

    def _request(self, header, args, kwargs, timeout, label):
        request = dict(header)
        request["args"] = codec.encode(list(args), "the arguments", extra=proxy._encode_marker)
        request["kwargs"] = codec.encode(dict(kwargs), "the arguments", extra=proxy._encode_marker)
        request = json.loads(codec.dumps(request))
        limit = self.timeout if timeout is None else float(timeout)
        with _time_limit(limit, label):
            reply = self._serve(request)
        return self._decode(codec.dumps(reply), label)


# -- running the hidden tests ---------------------------------------------------------
def hidden_module(exercise: str) -> ModuleType:
    folder = ROOT / "tests" / "hidden" / exercise
    (path,) = sorted(folder.glob("test_*.py"))
    spec = importlib.util.spec_from_file_location(f"hidden_{exercise}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Outcome:
    """One hidden test's outcome for one notebook."""

    name: str
    title: str
    points: float
    score: float
    feedback: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(o.score for o in self.outcomes)

    @property
    def lost(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.score < o.points]

    def question_score(self, prefix: str) -> float:
        return sum(o.score for o in self.outcomes if o.title.startswith(prefix + ":")
                   or o.title.startswith(prefix + "/"))


def tests_of(module: ModuleType) -> list:
    return [obj for name, obj in vars(module).items()
            if name.startswith("test_") and inspect.isfunction(obj)]


def grade(module: ModuleType, namespace: dict, *, stop_at_first_loss: bool = False,
          only: tuple[str, ...] = ()) -> Report:
    """Run the hidden tests of ``module`` against ``namespace``."""
    submission = LocalSubmission(namespace)
    report = Report()
    for test in tests_of(module):
        doc = inspect.getdoc(test) or test.__name__
        title = doc.splitlines()[0]
        if only and not any(title.startswith(p + ":") or title.startswith(p + "/") for p in only):
            continue
        points = float(getattr(test, "__dlcourse_points__", 1.0))
        params = inspect.signature(test).parameters
        kwargs = {"submission": submission} if "submission" in params else {}
        if "notebook" in params:
            kwargs["notebook"] = None
        try:
            test(**kwargs)
        except Exception as exc:  # noqa: BLE001 (the grader counts any failure as lost points)
            report.outcomes.append(Outcome(test.__name__, title, points, 0.0, str(exc)))
            if stop_at_first_loss:
                break
            continue
        report.outcomes.append(Outcome(test.__name__, title, points, points))
    return report
