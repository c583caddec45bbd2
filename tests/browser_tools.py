"""Helpers for the Chromium tests (the `browser` fixture is in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

PLAYER_STATE = ("() => window.sparkcastPlayer && [sparkcastPlayer.errors, "
                "document.getElementById('video').currentTime]")


def wait_js(page: Any, predicate: str, timeout: float, what: str,
            state: str = PLAYER_STATE) -> None:
    """Wait until `predicate` (JS) holds; else fail saying what the page showed instead
    (evaluating `state`), not Playwright's timeout text."""
    try:
        page.wait_for_function(predicate, timeout=timeout * 1000, polling=200)
    except Exception as exc:  # noqa: BLE001 - any failure is reported the same way
        raise AssertionError(f"{what} within {timeout} s; page state {page.evaluate(state)} "
                             f"({type(exc).__name__})") from None
