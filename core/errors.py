"""Turning failures into one line for the user."""

from __future__ import annotations

import re

from pydantic import ValidationError

# A Python exception raised on an executor reaches the driver as a Java exception whose text
# holds the Python traceback; its last "module.Error: message" line is what went wrong.
_PY_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", re.MULTILINE)


def one_line(exc: BaseException) -> str:
    """The cause of exc in one line, naming the file, stream or field at fault."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            field = ".".join(str(x) for x in err.get("loc", ())) or "settings"
            parts.append(f"setting {field}: {err.get('msg')}")
        return "; ".join(parts)
    text = str(exc)
    name = type(exc).__name__
    if name in ("Py4JJavaError", "PythonException", "SparkException") or "Traceback" in text:
        found = [m for m in _PY_ERROR_LINE.findall(text)
                 if m[0] not in ("Py4JJavaError", "PythonException", "SparkException")]
        if found:
            return found[-1][1].strip()
        return text.strip().splitlines()[0] if text.strip() else name
    return text or name
