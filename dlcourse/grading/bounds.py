"""How much text the grader keeps from a submission, and how it marks what it cut.

Everything a kernel sends back (exception names and messages, type names, reply
sizes) is untrusted and may be huge; what ends up in ``results.json``, the
summary and ``grades.csv`` is cut to these lengths with a visible marker.
"""

from __future__ import annotations

#: Characters of a name a submission chose (an exception class, a type).
MAX_NAME = 200
#: Characters of one note (``extra_data.notes``, the summary).
MAX_NOTE = 1000
#: Characters of one test's feedback (``tests[].output``).
MAX_FEEDBACK = 4000
#: Characters of one ``grades.csv`` field.
MAX_CSV_FIELD = 4000


def clip(text: object, limit: int) -> str:
    """``str(text)``, cut to at most ``limit`` characters with a marker saying how much
    was cut (the marker counts towards the limit).

    Args:
        text: Anything; converted with ``str``.
        limit: The most characters returned; must be >= 40.
    """
    if limit < 40:
        raise ValueError(f"limit must be >= 40; received limit={limit}")
    text = str(text)
    if len(text) <= limit:
        return text
    marker = f" ... [truncated: {len(text)} characters in all]"
    return text[: limit - len(marker)] + marker
