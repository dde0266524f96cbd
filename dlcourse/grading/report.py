"""What a batch tells the instructor: ``grades.csv`` (one row per student) and the summary.

``grades.csv`` has the fixed columns :data:`CSV_FIXED`, then one column per
hidden test (its points). A later run into the same folder replaces only the
rows of the students it graded; an earlier file that cannot be read never stops
a batch (:func:`write_csv`). Every field is cut to
:data:`~dlcourse.grading.bounds.MAX_CSV_FIELD` characters.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import statistics
from pathlib import Path

from dlcourse.grading.bounds import MAX_CSV_FIELD, clip
from dlcourse.grading.exercise import Exercise
from dlcourse.grading.sandbox import Isolation, report

CSV_FIXED = ["student", "exercise", "notebook", "score", "max_score", "percent", "status",
             "notes", "notebook_sha256", "hidden_tests_sha256"]
CSV_FILE = "grades.csv"
#: Where an unreadable grades.csv is moved before it is rebuilt from the results.json files.
CSV_UNREADABLE = "grades.csv.unreadable"


class MalformedCsv(ValueError):
    """An earlier grades.csv that cannot be read."""


def read_csv(path: Path) -> tuple[dict[str, dict], list[str]]:
    """Rows (by student) and columns of an earlier ``grades.csv``; ``({}, [])`` if none.

    Raises:
        MalformedCsv: When it cannot be read as this grader's CSV.
    """
    path = Path(path)
    if not path.exists():
        return {}, []
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # an older grader wrote fields of any length
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = {}
            for row in reader:
                row.pop(None, None)  # extra fields without a column
                if not isinstance(row.get("student"), str) or not row["student"]:
                    raise MalformedCsv(f"{path}: a row without a student id")
                rows[row["student"]] = row
            columns = list(reader.fieldnames or [])
        if rows and "student" not in columns:
            raise MalformedCsv(f"{path}: no 'student' column")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MalformedCsv(f"{path}: {type(exc).__name__}: {clip(exc, 300)}") from exc
    finally:
        csv.field_size_limit(limit)
    return rows, columns


def _row(student: str, result: dict) -> dict:
    extra = result.get("extra_data", {})
    score, max_score = result.get("score", 0.0), result.get("max_score", 0.0)
    row = {
        "student": student,
        "exercise": extra.get("exercise", ""),
        "notebook": extra.get("notebook", ""),
        "score": f"{score:g}",
        "max_score": f"{max_score:g}",
        "percent": f"{100 * score / max_score:.1f}" if max_score else "0.0",
        "status": extra.get("status", ""),
        "notes": " | ".join(extra.get("notes", [])),
        "notebook_sha256": extra.get("notebook_sha256", ""),
        "hidden_tests_sha256": extra.get("hidden_tests_sha256", ""),
    }
    for test in result.get("tests", []):
        row[test["name"]] = f"{test['score']:g}"
    return row


def _rows_from_results(out: Path) -> dict[str, dict]:
    """Rows rebuilt from ``OUT/*/results.json`` (for an unreadable grades.csv)."""
    rows = {}
    for path in sorted(Path(out).glob("*/results.json")):
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
            result = json.loads(path.read_text())
            student = result.get("extra_data", {}).get("student") or path.parent.name
            rows[student] = _row(student, result)
    return rows


def write_csv(path: Path, results: dict[str, dict]) -> str | None:
    """Write or update ``grades.csv``: rows of students graded now replace their old rows.

    Every field is cut to :data:`~dlcourse.grading.bounds.MAX_CSV_FIELD` characters.
    An earlier file that cannot be read never stops the batch: it is moved to
    ``grades.csv.unreadable`` and the other students' rows are rebuilt from their
    ``results.json``.

    Returns:
        A warning for the summary when the earlier file was unreadable, else None.
    """
    path = Path(path)
    warning = None
    try:
        rows, old_columns = read_csv(path)
    except MalformedCsv as exc:
        os.replace(path, path.with_name(CSV_UNREADABLE))
        rows, old_columns = _rows_from_results(path.parent), []
        warning = (f"WARNING: the earlier {path.name} could not be read ({exc}); it was moved "
                   f"to {CSV_UNREADABLE} and rebuilt from the results.json files")
    columns: list[str] = list(CSV_FIXED)
    for name in old_columns:
        if name not in columns:
            columns.append(name)
    for student, result in results.items():
        rows[student] = _row(student, result)
    for row in rows.values():
        for name in row:
            if name not in columns:
                columns.append(name)
    tmp = path.with_name(CSV_FILE + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for student in sorted(rows):
            writer.writerow({k: clip(v if v is not None else "", MAX_CSV_FIELD)
                             for k, v in rows[student].items()})
    os.replace(tmp, path)
    return warning


def summary(exercise: Exercise, results: dict[str, dict], errors: list[str],
            isolation: Isolation | None = None) -> str:
    """A readable summary of a batch; with ``isolation``, the sandbox it ran in and each
    of its promises that does not hold on this machine."""
    lines = [f"{exercise.name}: {len(results)} submission(s)"]
    width = max([len(s) for s in results] + [7])
    for student in sorted(results):
        r = results[student]
        extra = r.get("extra_data", {})
        status = extra.get("status", "")
        note = f"  ({extra['notes'][0]})" if extra.get("notes") and status != "graded" else ""
        lines.append(f"  {student:<{width}}  {r['score']:>6g} / {r['max_score']:<6g} {status}{note}")
    scores = [r["score"] for r in results.values()]
    if scores:
        lines.append(f"mean {statistics.fmean(scores):.2f}, median {statistics.median(scores):g}")
    per_test: dict[str, list[bool]] = {}
    for r in results.values():
        for t in r.get("tests", []):
            per_test.setdefault(t["name"], []).append(t["score"] >= t["max_score"])
    if per_test:
        lines.append("tests passed by:")
        for name, passed in per_test.items():
            lines.append(f"  {sum(passed):>3}/{len(passed):<3} {name}")
    unconfined = [s for s, r in results.items()
                  if r.get("extra_data", {}).get("sandbox", {}).get("landlock") is False
                  and not r["extra_data"]["sandbox"].get("unprivileged_user")]
    if isolation is not None:
        lines.extend(report(isolation))
    if unconfined:
        lines.append(f"WARNING: {len(unconfined)} kernel(s) ran without Landlock and as the "
                     "grader's own user (weaker sandbox; see the security model in the instructors' "
                     "guide)")
    if errors:
        lines.append("GRADER ERRORS (not the students' fault):")
        lines.extend(f"  {e}" for e in errors)
    return "\n".join(lines)


