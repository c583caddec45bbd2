"""Helpers for the Chromium tests (the `browser` fixture is in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


def launch_chromium(pw: Any, *extra_args: str) -> Any:
    """Debian's Chromium from a Playwright instance, with the run's flags and `extra_args`."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


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
