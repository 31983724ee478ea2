"""A lesson in a real browser: JupyterLab on localhost, Debian's headless Chromium driven by
Playwright opens lesson 2, runs it, steps the first lab a few times and checks that the widget
drew the engine's numbers; the screenshot goes to assets/screenshots/notebook_lesson2.png.
Skips, saying why, where Chromium, Playwright or JupyterLab is missing."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from nbhelpers import NOTEBOOKS, ROOT

SHOT = ROOT / "assets" / "screenshots" / "notebook_lesson2.png"
X = np.array([[3, 1, 0, 2, 1], [0, 2, 1, 3, 0], [1, 0, 3, 1, 2], [2, 1, 0, 0, 1], [0, 3, 2, 1, 1]], np.float32)
K = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -e '.[notebook]')")
    port, token = _free_port(), "cnnlab-test"
    work = tmp_path / "lessons"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
                             "--LabApp.news_url=", "--allow-root"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within a minute")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _output_numbers(page) -> list[str]:
    """The numbers the first lab's output panel shows, in raster order."""
    return page.evaluate("""() => [...document.querySelector('.cnnlab-lab')
                             .querySelectorAll('g.panel[data-key="output"] text')].map(t => t.textContent)""")


_PROMPT = "i => (document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.jp-InputArea-prompt') || {}).textContent || ''"


def _wait_until_executed(page, i: int) -> None:
    """Wait until code cell i shows an execution count. A Shift+Enter JupyterLab takes while its
    new kernel is still settling can move the selection on without running the cell (seen on a
    loaded machine: the lab cell then failed with NameError for `np`); then the cell is run
    again, once, by selecting it and pressing Shift+Enter."""
    done = f"/\\[\\d+\\]/.test(({_PROMPT})({i}))"
    try:
        page.wait_for_function(done, timeout=60_000)
        return
    except Exception:   # Playwright's TimeoutError
        pass
    page.locator(".jp-Notebook .jp-Cell").nth(i).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(done, timeout=120_000)


@pytest.mark.slow
def test_lesson_2_in_a_real_browser(jupyterlab):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    F = pytest.importorskip("cnnlab.nn.functional")
    import cnnlab

    expected = F.conv2d(cnnlab.tensor(X[None, None]), cnnlab.tensor(K[None, None]), stride=2, padding=1).numpy()[0, 0]
    url, token = jupyterlab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{url}/lab/tree/02_padding_and_stride.ipynb?token={token}&reset")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        page.keyboard.press("Escape")
        page.locator(".jp-NotebookPanel-toolbar").first.click()
        # run the first four cells (the set-up and the first lab) with shift-enter
        # (one key at a time, each waited for: under load a key pressed before the notebook
        # has focus is lost, and the lab cell then runs without its imports)
        active = "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].findIndex(c => c.classList.contains('jp-mod-active'))"
        page.locator(".jp-Cell").nth(0).click()
        page.keyboard.press("Escape")
        page.wait_for_function(f"({active})() === 0", timeout=30_000)
        for i in range(4):
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(f"({active})() === {i + 1}", timeout=30_000)
            if i == 1:
                _wait_until_executed(page, 1)   # the imports, before the lab cell that needs them
        # the widget, or an error cell (whose text the failure then shows); the kernel may compile first
        page.wait_for_function("document.querySelector('.cnnlab-lab') || "
                               "document.querySelector('.jp-OutputArea-output[data-mime-type*=\"stderr\"]')",
                               timeout=240_000)
        errors = page.locator('.jp-OutputArea-output[data-mime-type*="stderr"]').all_text_contents()
        assert not errors, errors
        lab = page.locator(".cnnlab-lab").first
        page.wait_for_function("document.querySelectorAll('.cnnlab-lab g.panel[data-key=\"output\"] text').length >= 1",
                               timeout=60_000)
        assert _output_numbers(page) == [f"{expected[0, 0]:g}"]          # opened at step 1
        next_button = lab.locator("button", has_text="▶").last
        for _ in range(4):
            next_button.click()
        page.wait_for_function("document.querySelectorAll('.cnnlab-lab g.panel[data-key=\"output\"] text').length >= 5",
                               timeout=30_000)
        shown = _output_numbers(page)
        assert shown == [f"{v:g}" for v in expected.ravel()[:5]], shown
        status = lab.locator(".widget-html").filter(has_text="step 5 of 9").count()
        assert status >= 1
        # the lab's cell at the top of the view, JupyterLab's news question answered
        page.evaluate("() => document.querySelectorAll('.jp-Cell')[3].scrollIntoView({block: 'start'})")
        no = page.locator(".jp-toast-button", has_text="No")
        if no.count():
            no.first.click()
            no.first.wait_for(state="detached", timeout=5_000)
        # the pointer over output[0,2]: its receptive field (3x3 cells of the padded input) lights up
        box = lab.locator("g.c-output-0-2 rect").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(300)
        lit = page.evaluate("""() => [...document.querySelector('.cnnlab-lab').querySelectorAll('g.l-output-0-2 rect')]
                                .filter(r => getComputedStyle(r).strokeWidth === '3px').length""")
        assert lit == 9
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOT), full_page=False)
        browser.close()
    assert SHOT.stat().st_size > 10_000
