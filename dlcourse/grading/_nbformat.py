"""Import nbformat without the 1.5-s grammar compilation jsonschema may bring along.

``import nbformat`` imports ``jsonschema``, whose format checkers import
``rfc3987_syntax`` when it is installed (``jsonschema[format-nongpl]``, which
Jupyter's servers pull in). That module compiles 38 Lark grammars at import:
about 1.6 s, against 0.14 s for the rest of nbformat, in every grading
process. Notebook validation never checks the ``iri`` formats that need it, so
the grading processes import nbformat with that one optional module hidden.
Call :func:`nbformat` before anything else imports ``jsonschema`` (nbclient
included); later ``import rfc3987_syntax`` statements work as usual.
"""

from __future__ import annotations

import sys

_OPTIONAL = "rfc3987_syntax"


def nbformat():
    """The ``nbformat`` module, imported without ``rfc3987_syntax`` if not yet imported."""
    if "nbformat" in sys.modules or "jsonschema" in sys.modules or _OPTIONAL in sys.modules:
        import nbformat as module

        return module
    sys.modules[_OPTIONAL] = None  # an ImportError for jsonschema's optional import
    try:
        import nbformat as module
    finally:
        if sys.modules.get(_OPTIONAL, 0) is None:
            del sys.modules[_OPTIONAL]
    return module
