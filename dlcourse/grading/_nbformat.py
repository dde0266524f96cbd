"""Import nbformat without the format checkers jsonschema may bring along.

``import nbformat`` imports ``jsonschema``, whose ``_format`` module imports
every optional format-checking package that is installed
(``jsonschema[format-nongpl]``, which Jupyter's servers pull in). Two are
costly: ``rfc3987_syntax`` compiles 38 Lark grammars (about 1.6 s) and
``isoduration`` imports ``arrow`` (about 0.07 s), against 0.04 s for the rest
of nbformat, in every grading process. Notebook validation never checks a
JSON-schema ``format`` (nbformat passes no format checker), so the grading
processes import nbformat with those optional modules hidden. Call
:func:`nbformat` before anything else imports ``jsonschema`` (nbclient
included); later imports of the hidden modules work as usual.
"""

from __future__ import annotations

import sys

#: The optional imports of ``jsonschema._format`` (each inside ``suppress(ImportError)``).
_FORMAT_CHECKERS = ("rfc3987_syntax", "isoduration", "rfc3339_validator", "rfc3986_validator",
                    "rfc3987", "webcolors", "uri_template", "fqdn", "idna", "jsonpointer")


def nbformat():
    """The ``nbformat`` module, imported without jsonschema's optional format checkers."""
    if "nbformat" in sys.modules or "jsonschema" in sys.modules:
        import nbformat as module

        return module
    hidden = [name for name in _FORMAT_CHECKERS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # an ImportError for jsonschema's optional import
    try:
        import nbformat as module
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return module
