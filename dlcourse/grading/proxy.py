"""The ``submission`` fixture: hidden tests ask the student's kernel to compute.

Requests go to the kernel as JSON; replies come back as plain data decoded by
:mod:`dlcourse.grading.codec` (``np.load(allow_pickle=False)``, ``json``).
Expected values stay in the grader's process. Whatever the kernel sends back
is treated as the student's answer and nothing more: a reply that cannot be
read is a failure, never a pass.
"""

from __future__ import annotations

import numpy as np

from dlcourse.grading import codec
from dlcourse.grading.bounds import MAX_FEEDBACK, MAX_NAME, clip
from dlcourse.grading.errors import SubmissionDied, SubmissionError, SubmissionTimeout
from dlcourse.grading.kernel import CellTimeout, KernelDied, SandboxKernel

_ALLOWED = "NumPy arrays, numbers, strings, None, lists, tuples or dicts of those"


class Ref:
    """A kernel-side object passed as an argument (``submission.ref("model")``)."""

    def __init__(self, path: str):
        if not isinstance(path, str) or not path:
            raise TypeError(f"path must be a non-empty str; received path={path!r}")
        self.path = path


class TensorArg:
    """A NumPy array that arrives in the kernel as a ``torch.Tensor``."""

    def __init__(self, array):
        self.array = np.asarray(array)


class Handle:
    """An object created in the kernel by ``submission.new(...)``."""

    def __init__(self, submission: Submission, handle: int, label: str):
        self._submission = submission
        self._handle = handle
        self._label = label

    def call(self, method: str, *args, timeout: float | None = None, **kwargs):
        """Call ``obj.method(*args, **kwargs)`` in the kernel; return its result."""
        return self._submission._request(
            {"op": "method", "handle": self._handle, "name": method}, args, kwargs, timeout,
            f"{self._label}.{method}(...)")

    def get(self, attr: str):
        """Return the value of ``obj.attr``."""
        return self._submission._request(
            {"op": "attr", "handle": self._handle, "name": attr}, (), {}, None,
            f"{self._label}.{attr}")

    def __repr__(self) -> str:
        return f"<handle to {self._label}>"


def _encode_marker(value):
    if isinstance(value, Ref):
        return {"__ref__": value.path}
    if isinstance(value, Handle):
        return {"__handle__": value._handle}
    if isinstance(value, TensorArg):
        return {"__tensor__": codec.encode(value.array)["__ndarray__"]}
    return None


def _request_text(header: dict, args, kwargs) -> str:
    """The JSON text of one request: ``header`` with the encoded arguments."""
    request = dict(header)
    try:
        request["args"] = codec.encode(list(args), "the arguments", extra=_encode_marker)
        request["kwargs"] = codec.encode(dict(kwargs), "the arguments", extra=_encode_marker)
    except codec.Unsupported as exc:  # a bug in the hidden test, not the student's
        raise TypeError(f"cannot send {exc} to the submission") from exc
    return codec.dumps(request)


def _reply_payload(result, label: str) -> str:
    """The reply of a finished request, or the SubmissionError that says why there is none."""
    if result.oversized and not result.payloads:
        raise SubmissionError(f"the result of {label} is {result.oversized / 2**20:.0f} MB "
                              "of data; the grader reads at most "
                              f"{codec.MAX_REPLY_CHARS / 2**20:.0f} MB")
    if result.status != "ok" or not result.payloads:
        detail = (f"{clip(result.ename, MAX_NAME)}: {clip(result.evalue, MAX_FEEDBACK // 2)}"
                  if result.ename else "no reply")
        raise SubmissionError(f"the grader could not run {label} in your notebook "
                              f"({detail}); did the notebook change Python's builtins?")
    return result.payloads[-1]


class Submission:
    """Proxy to one student's kernel, handed to hidden tests as ``submission``.

    Args:
        kernel: The running kernel, or ``None`` when the notebook could not run.
        reason: Why there is no kernel (every request fails with it).
        timeout: Default seconds per request.
    """

    def __init__(self, kernel: SandboxKernel | None, *, reason: str | None = None,
                 timeout: float = 60.0):
        self._kernel = kernel
        self._reason = reason
        self.timeout = timeout

    # -- public API -------------------------------------------------------------------
    def call(self, name: str, *args, timeout: float | None = None, **kwargs):
        """Call the notebook's function ``name(*args, **kwargs)``; return its result."""
        return self._request({"op": "call", "name": name}, args, kwargs, timeout,
                             f"{name}(...)")

    def new(self, name: str, *args, timeout: float | None = None, **kwargs) -> Handle:
        """Create ``name(*args, **kwargs)`` in the kernel; return a :class:`Handle`."""
        return self._request({"op": "new", "name": name}, args, kwargs, timeout,
                             f"{name}(...)")

    def get(self, name: str):
        """Return the value of the notebook's variable ``name`` (dotted paths work)."""
        return self._request({"op": "get", "name": name}, (), {}, None, name)

    def has(self, name: str) -> bool:
        """Whether the notebook defines ``name`` (dotted paths work)."""
        return bool(self._request({"op": "has", "name": name}, (), {}, None, name))

    @staticmethod
    def ref(name: str) -> Ref:
        """Refer to the notebook's object ``name`` as an argument of a call."""
        return Ref(name)

    @staticmethod
    def tensor(array) -> TensorArg:
        """Pass ``array`` so that the notebook receives a ``torch.Tensor``."""
        return TensorArg(array)

    # -- machinery --------------------------------------------------------------------
    def _request(self, header: dict, args, kwargs, timeout, label: str):
        if self._kernel is None:
            raise SubmissionDied(self._reason or "the notebook could not be run")
        if self._kernel.dead_reason is not None:
            raise SubmissionDied(self._kernel.dead_reason)
        text = _request_text(header, args, kwargs)
        if len(text) > 2000 and hasattr(self._kernel, "request_file"):
            path = self._kernel.request_file(text)
            code = f"__dlcourse_rpc__(None, {str(path)!r})"
        else:
            path, code = None, f"__dlcourse_rpc__({text!r})"
        limit = self.timeout if timeout is None else float(timeout)
        try:
            result = self._kernel.execute(code, timeout=limit, store_history=False)
        except CellTimeout:
            if self._kernel.dead_reason is not None:
                raise SubmissionDied(f"{label} ran past its time limit of {limit:g} s; "
                                     f"{self._kernel.dead_reason}") from None
            raise SubmissionTimeout(f"{label} did not finish within {limit:g} s") from None
        except KernelDied as exc:
            raise SubmissionDied(f"{exc} (while running {label})") from None
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
        return self._decode(_reply_payload(result, label), label)

    def _decode(self, payload: str, label: str):
        try:
            reply = codec.loads(payload)
            if not isinstance(reply, dict) or len(reply) != 1:
                raise ValueError("malformed reply")
            (kind, body), = reply.items()
            if kind == "ok":
                return codec.decode(body)
            if kind == "handle":
                return Handle(self, int(body), label.removesuffix("(...)"))
        except (ValueError, TypeError, KeyError) as exc:
            raise SubmissionError(f"the result of {label} could not be read ({exc})") from None
        if kind == "unsupported" and isinstance(body, dict):
            where = body.get("where", "the result")
            place = "" if where == "the result" else f" ({where})"
            raise SubmissionError(f"{label} returned an object of type "
                                  f"{clip(body.get('type'), MAX_NAME)}"
                                  f"{clip(place, MAX_NAME)}; expected {_ALLOWED}")
        if kind == "missing":
            raise SubmissionError(clip(body, MAX_NAME * 2))
        if kind == "error" and isinstance(body, dict):
            ename = clip(body.get("ename"), MAX_NAME)
            evalue = clip(body.get("evalue"), MAX_FEEDBACK // 2)
            line = body.get("line")
            where = f" (line {line} of your cell)" if isinstance(line, int) else ""
            message = (evalue if ename == "ReferenceBlockedError"
                       else f"{label} raised {ename}: {evalue}{where}")
            raise SubmissionError(message, ename=ename, evalue=evalue)
        raise SubmissionError(f"the result of {label} could not be read (unknown reply)")
