"""A real headless browser for the HTML tests: Debian's ``chromium``, driven from the command line.

``find_browser()`` returns the executable or None (tests then skip, unless
``SKPROTO_REQUIRE_BROWSER=1``, as CI sets after installing Chromium, makes
them fail). ``load(path)`` opens a file like a person would and returns the
DOM after scripts ran and the console messages (page errors, CSP violations,
``console.*`` calls); ``screenshot(path, png)`` saves what the page shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?[:\]].*")


def find_browser() -> str | None:
    explicit = os.environ.get("SKPROTO_BROWSER")
    if explicit:
        return explicit
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_browser() -> str:
    """The browser, or skip the test (fail instead under ``SKPROTO_REQUIRE_BROWSER=1``)."""
    browser = find_browser()
    if browser is None:
        if os.environ.get("SKPROTO_REQUIRE_BROWSER") == "1":
            pytest.fail("SKPROTO_REQUIRE_BROWSER=1 but no Chromium was found")
        pytest.skip("no headless Chromium on this machine (apt-get install chromium)")
    return browser


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    browser = require_browser()
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def load(path: Path) -> tuple[str, list[str]]:
    """``(dom, console)``: the serialised DOM after load and the console messages."""
    done = _run(["--enable-logging=stderr", "--v=0", "--dump-dom", Path(path).resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(0) for m in _CONSOLE.finditer(done.stderr)]
    return done.stdout, console


def screenshot(path: Path, png: Path, size: tuple[int, int] = (1200, 1600)) -> Path:
    done = _run(
        [
            "--hide-scrollbars",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={png}",
            Path(path).resolve().as_uri(),
        ]
    )
    assert done.returncode == 0 and Path(png).exists(), done.stderr[-2000:]
    return Path(png)


def probe(page: str, script: str, path: Path, size: tuple[int, int] = (800, 600)) -> str:
    """What ``script`` leaves in ``document.body.dataset.probe`` after the page's own
    script ran: the page (HTML text) with ``script`` appended and its CSP taken out,
    so that the test's script may run beside the page's, opened at ``size``."""
    import html

    page = re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", page)
    Path(path).write_text(page.replace("</body>", f"<script>{script}</script></body>"))
    done = _run([f"--window-size={size[0]},{size[1]}", "--dump-dom", Path(path).resolve().as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<body[^>]*\bdata-probe="([^"]*)"', done.stdout)
    assert found, "the probe script did not run"
    return html.unescape(found.group(1))
