"""Code the grader installs inside the student's kernel before the notebook runs.

This file is not imported by the grader: its source (after that of
:mod:`dlcourse.grading.codec`) is executed in a private namespace of the
student's kernel, then :func:`setup` is called. It

* seeds ``random``, NumPy's global generator, and PyTorch / TensorFlow as soon
  as they are imported (an import hook), identically for every submission;
* replaces the graded reference implementations listed in the exercise's
  ``blocked`` list by stand-ins that raise when called from outside the
  dlcourse package, and re-applies that after ``importlib.reload`` or a fresh
  import (the same import hook);
* defines ``builtins.__dlcourse_rpc__``, through which the grader asks for
  function calls; results go back as a display message of type
  ``MIME`` (defined by the codec), encoded with it (arrays as ``.npy``, the rest JSON).

Everything here runs in the untrusted process: it only makes honest work and
honest mistakes easy to grade; it is not what keeps the grade safe (the grader
never trusts what comes back beyond plain data, see :mod:`dlcourse.grading.proxy`).
"""

import builtins
import functools
import importlib.util
import json
import os
import random
import sys

BLOCKED_MESSAGE = (
    "calling dlcourse's reference implementation earns no credit: "
    "write {name} yourself"
)

_HANDLES: dict = {}
_POST_IMPORT: dict = {}
_DLCOURSE_DIR = None


class ReferenceBlockedError(RuntimeError):
    """Raised when student code calls a blocked reference implementation."""


class _Missing(LookupError):
    pass


def _from_dlcourse(frame) -> bool:
    name = frame.f_code.co_filename if frame is not None else ""
    return bool(_DLCOURSE_DIR) and name.startswith(_DLCOURSE_DIR + os.sep)


def _is_blocked(obj) -> bool:
    # a class's own flag only: a subclass of a blocked class is not blocked itself
    flags = vars(obj) if isinstance(obj, type) else getattr(obj, "__dict__", {})
    return bool(flags.get("__dlcourse_blocked__", False))


def _blocker(original, label):
    if _is_blocked(original):
        return original
    message = BLOCKED_MESSAGE.format(name=label)
    if isinstance(original, type):
        # Guard the class's own __init__ in place: no unguarded original is left
        # behind (a blocked subclass would leave it one __bases__ away), and
        # isinstance checks inside dlcourse still see the same class.
        inner = original.__init__

        def __init__(self, *args, **kwargs):
            if not _from_dlcourse(sys._getframe(1)):
                raise ReferenceBlockedError(message)
            inner(self, *args, **kwargs)

        __init__.__doc__ = getattr(inner, "__doc__", None)
        original.__init__ = __init__
        original.__dlcourse_blocked__ = True
        return original

    @functools.wraps(original)
    def blocked(*args, **kwargs):
        if not _from_dlcourse(sys._getframe(1)):
            raise ReferenceBlockedError(message)
        return original(*args, **kwargs)

    del blocked.__wrapped__  # functools.wraps would hand the original back
    blocked.__dlcourse_blocked__ = True
    return blocked


def _block_in(module, attrs):
    for attr in attrs:
        original = getattr(module, attr, None)
        if original is None or _is_blocked(original):
            continue
        blocked = _blocker(original, attr)
        # Re-exports (dlcourse.scratch.Dropout, ...) are the same object: replace them all.
        for name, other in list(sys.modules.items()):
            if other is None or not (name == "dlcourse" or name.startswith("dlcourse.")):
                continue
            for key, value in list(vars(other).items()):
                if value is original:
                    setattr(other, key, blocked)
        setattr(module, attr, blocked)


class _Loader:
    """Wraps a module's loader to run callbacks after the module executes."""

    def __init__(self, inner, fullname):
        self._inner = inner
        self._fullname = fullname

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        for callback in _POST_IMPORT.get(self._fullname, ()):
            callback(module)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _Finder:
    """First on ``sys.meta_path``: wraps the loaders of watched modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _POST_IMPORT:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _Finder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and not isinstance(spec.loader, _Loader):
            spec.loader = _Loader(spec.loader, fullname)
        return spec


def _watch(fullname, callback):
    _POST_IMPORT.setdefault(fullname, []).append(callback)
    module = sys.modules.get(fullname)
    if module is not None:
        callback(module)


def _user_ns():
    from IPython import get_ipython

    return get_ipython().user_ns


def _resolve(path):
    head, *rest = path.split(".")
    namespace = _user_ns()
    if head not in namespace:
        raise _Missing(f"your notebook does not define {head!r}")
    value = namespace[head]
    for part in rest:
        if not hasattr(value, part):
            where = ".".join([head, *rest[: rest.index(part)]])
            raise _Missing(f"{where} has no attribute {part!r}")
        value = getattr(value, part)
    return value


def _decode_marker(data):
    if "__ref__" in data:
        return True, _resolve(data["__ref__"])
    if "__handle__" in data:
        return True, _HANDLES[data["__handle__"]]
    if "__tensor__" in data:
        import torch

        array = decode({"__ndarray__": data["__tensor__"]})  # noqa: F821 (codec)
        return True, torch.as_tensor(array)
    return False, None


def _encode_extra(value):
    kind = type(value)
    if kind.__module__.startswith("torch") and kind.__name__ in ("Tensor", "Parameter"):
        return encode(value.detach().cpu().numpy())  # noqa: F821 (codec)
    return None


def _where_in_student_code(exc):
    tb = exc.__traceback__
    line = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "ipykernel" in name or name.startswith("<ipython"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _ok(result):
    return {"ok": encode(result, "the result", extra=_encode_extra)}  # noqa: F821 (codec)


def _has(request, args, kwargs):
    try:
        _resolve(request.get("name"))
    except _Missing:
        return _ok(False)
    return _ok(True)


def _new(request, args, kwargs):
    obj = _resolve(request.get("name"))(*args, **kwargs)
    handle = len(_HANDLES) + 1
    _HANDLES[handle] = obj
    return {"handle": handle}


def _attr(request, args, kwargs):
    obj, name = _HANDLES[request["handle"]], request.get("name")
    if not hasattr(obj, name):
        raise _Missing(f"the object has no attribute {name!r}")
    return _ok(getattr(obj, name))


#: The grader's requests: ``op`` -> ``(request, args, kwargs) -> reply``.
_OPS = {
    "has": _has,
    "get": lambda request, args, kwargs: _ok(_resolve(request.get("name"))),
    "call": lambda request, args, kwargs: _ok(_resolve(request.get("name"))(*args, **kwargs)),
    "new": _new,
    "method": lambda request, args, kwargs: _ok(
        getattr(_HANDLES[request["handle"]], request.get("name"))(*args, **kwargs)),
    "attr": _attr,
}


def _serve(request):
    op = request["op"]
    args = decode(request.get("args", []), extra=_decode_marker)  # noqa: F821
    kwargs = decode(request.get("kwargs", {"__dict__": []}), extra=_decode_marker)  # noqa: F821
    if op not in _OPS:
        raise ValueError(f"unknown operation {op!r}")
    return _OPS[op](request, args, kwargs)


def rpc(text, path=None):
    """Serve one grader request (JSON text, or a file of it); publish the JSON reply."""
    from IPython.display import publish_display_data

    try:
        if path is not None:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        reply = _serve(json.loads(text))
    except Unsupported as exc:  # noqa: F821
        reply = {"unsupported": {"type": exc.type_name, "where": exc.where}}
    except _Missing as exc:
        reply = {"missing": str(exc)}
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from student code is an error like any other
        reply = {"error": {"ename": type(exc).__name__, "evalue": str(exc)[:4000],
                           "line": _where_in_student_code(exc)}}
    publish_display_data({MIME: dumps(reply)})  # noqa: F821 (codec)


def setup(config):
    """Seed, block references, install the RPC entry point."""
    global _DLCOURSE_DIR
    seed = int(config.get("seed", 0))
    random.seed(seed)
    try:
        import numpy

        # Student code may draw from NumPy's legacy global generator: seed it too.
        numpy.random.seed(seed)  # noqa: NPY002
    except ImportError:
        pass
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    _watch("torch", lambda m: m.manual_seed(seed))
    _watch("tensorflow", lambda m: m.random.set_seed(seed))
    blocked = {}
    for ref in config.get("blocked", []):
        module_name, _, attr = ref.partition(":")
        blocked.setdefault(module_name, []).append(attr)
    # Before any student code runs: the kernel must import the dlcourse package the
    # sandbox exposes. A failure here is the grader's (the bootstrap fails: a grader error).
    spec = importlib.util.find_spec("dlcourse")
    if spec is None or spec.origin is None:
        raise RuntimeError("the sandboxed kernel cannot find the dlcourse package")
    _DLCOURSE_DIR = os.path.dirname(os.path.realpath(spec.origin))
    expected = config.get("dlcourse_dir")
    if expected and _DLCOURSE_DIR != os.path.realpath(expected):
        raise RuntimeError(f"the sandboxed kernel finds dlcourse in {_DLCOURSE_DIR}, not in "
                           f"{expected} (the package the sandbox was built for)")
    with open(spec.origin, "rb") as handle:  # a PermissionError here is the sandbox's fault
        handle.read(1)
    # Applied when the module is first imported (by the notebook or by dlcourse itself), so
    # a notebook that never imports torch does not pay for importing dlcourse.torch here.
    for module_name, attrs in blocked.items():
        _watch(module_name, functools.partial(_block_in, attrs=attrs))
    builtins.__dlcourse_rpc__ = rpc
