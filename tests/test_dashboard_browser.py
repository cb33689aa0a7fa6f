"""End to end in a real headless browser: a training run, then `quote-stance dashboard` shows it.

Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); Selenium is pointed at
the system chromedriver, so nothing is downloaded. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# .ci/run sets this after installing the browser: there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("QUOTE_STANCE_BROWSER_TESTS") == "required"

pytestmark = pytest.mark.slow


def _browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        reason = f"{missing} not installed: `apt-get install chromium chromium-driver` (done by .ci/run)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dashboard not up at {url} after {timeout} s")


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory) -> dict:
    """A real training run (rule baseline: registered, alias champion) in a temporary store."""
    _browser_or_skip()
    store = tmp_path_factory.mktemp("mlflow")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    cmd = [sys.executable, "-m", "training.cli", "train", "--quiet", "--config", str(ROOT / "experiments" / "rules.yaml")]
    done = subprocess.run(cmd, cwd=store, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("quote-stance")
    (run,) = client.search_runs([exp.experiment_id])
    return {"env": env, "store": store, "client": client, "experiment_id": exp.experiment_id, "run": run}


@pytest.fixture(scope="module")
def dashboard(trained_store):
    port = _free_port()
    cmd = [sys.executable, "-m", "training.cli", "dashboard", "--port", str(port)]
    log = open(trained_store["store"] / "dashboard.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=trained_store["store"], env=trained_store["env"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the CLI and the mlflow server it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(trained_store, monkeypatch_module):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch_module.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _wait_text(driver, *texts: str, timeout: float = 60) -> str:
    """Wait until the React app has rendered every one of `texts`; return the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def seen(d):
        body = d.find_element(By.TAG_NAME, "body").text
        return body if all(t in body for t in texts) else False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(seen)
    except TimeoutException:
        driver.save_screenshot(str(SHOTS / "dashboard-timeout.png"))
        raise AssertionError(f"not visible after {timeout} s: {texts}") from None


def test_training_run_logs_tags_per_topic_charts_and_quote_viewers(trained_store):
    client, run = trained_store["client"], trained_store["run"]
    tags = run.data.tags
    assert len(tags["data_version"]) == 12 and tags["stance_backend"] == "lexicon"
    assert set(tags["languages"].split(",")) == {"ar", "bn", "de", "en", "es", "fr", "ja", "ko", "ru", "vi", "zh"}
    files = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    charts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation/charts")}
    assert {"evaluation/viewer_seeds_lodo.html", "evaluation/viewer_authored_lolo.html"} <= files
    for kind in ("seeds_lodo", "authored_lolo"):
        for chart in ("per_topic", "per_language", "speaker_confusion", "stance_confusion"):
            assert f"evaluation/charts/{kind}_{chart}.png" in charts
    assert "seeds_lodo.topic.missile_defense.stance_f1" in run.data.metrics
    local = Path(client.download_artifacts(run.info.run_id, "evaluation/viewer_seeds_lodo.html", str(trained_store["store"])))
    html = local.read_text(encoding="utf-8")
    assert html.count('data-side="gold"') == html.count('data-side="prediction"') == 5


def test_dashboard_shows_the_experiment_the_run_metrics_and_the_champion(trained_store, dashboard, browser):
    from selenium.webdriver.common.by import By

    run = trained_store["run"]
    exp_id, run_id = trained_store["experiment_id"], run.info.run_id

    browser.get(f"{dashboard}/#/experiments")
    _wait_text(browser, "quote-stance")
    browser.save_screenshot(str(SHOTS / "dashboard-experiments.png"))

    browser.get(f"{dashboard}/#/experiments/{exp_id}/runs")
    _wait_text(browser, "rules", "1 matching run")

    browser.get(f"{dashboard}/#/experiments/{exp_id}/runs/{run_id}")
    _wait_text(browser, "record_score", "seeds_lodo.quote_f1_overlap")
    search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search metrics']")
    search.send_keys("record_score")
    value = repr(run.data.metrics["record_score"])[:5]
    body = _wait_text(browser, "Metrics (1)")
    assert value in body[body.index("record_score") :]
    browser.save_screenshot(str(SHOTS / "dashboard-run.png"))

    browser.get(f"{dashboard}/#/models/quote-stance")
    body = _wait_text(browser, "Version 1", "champion")
    assert "@ champion" in body
    browser.save_screenshot(str(SHOTS / "dashboard-model.png"))


def test_dashboard_previews_the_quote_viewer_artifact_right_to_left_for_arabic(trained_store, dashboard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    exp_id, run_id = trained_store["experiment_id"], trained_store["run"].info.run_id
    browser.get(f"{dashboard}/#/experiments/{exp_id}/runs/{run_id}/artifacts/evaluation/viewer_seeds_lodo.html")
    WebDriverWait(browser, 60).until(ec.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    try:
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article[data-doc='seed-001'] .text"))
        texts = browser.find_elements(By.CSS_SELECTOR, "article[data-doc='seed-001'] .text")
        directions = [browser.execute_script("return getComputedStyle(arguments[0]).direction", t) for t in texts]
        assert directions == ["rtl", "rtl"]  # gold and prediction
        gold_quotes = browser.execute_script(
            "return Array.from(document.querySelectorAll(\"section[data-side='gold'] span.q\"))"
            ".map(e => e.closest('article').dataset.doc + '/' + e.dataset.q)"
        )
        assert len(set(gold_quotes)) == 56  # every seed quote highlighted
    finally:
        browser.switch_to.default_content()
    browser.save_screenshot(str(SHOTS / "dashboard-viewer-artifact.png"))
