"""The installed package, not the checkout: `pip install .` must carry the bundled models and
every resource file, and `load_analyzer()` must work with no MLflow server, no tracking store
and no network (the inference API's promise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ANNOTATIONS, ROOT

SCRIPT = r"""
import json, sys
import inference
from inference import load_analyzer
assert inference.__file__.startswith(sys.argv[1]), inference.__file__
seeds = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
analyzer = load_analyzer()
out = {}
for seed in seeds:
    doc = analyzer.analyze(seed["text"], published=seed["published"])
    out[seed["doc_id"]] = [q.speaker for q in doc.quotes]
for i, text in enumerate(["", "No quotes here.", "สวัสดีครับ “ไม่", "“unbalanced « marks"]):
    out[f"edge{i}"] = len(analyzer.analyze(text).quotes)
print(json.dumps(out))
"""


def test_installed_package_analyzes_with_its_bundled_model_offline_and_without_mlflow(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(ROOT)],
        check=True,
    )
    from inference.encoder.resolve import cache_root

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "QUOTE_STANCE_"))}
    # the encoder cache is where this machine keeps the offline encoder build (the default model,
    # accurate, embeds with it); pointing there saves rebuilding it in every test run
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               QUOTE_STANCE_CACHE=str(cache_root()))
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(site), str(ANNOTATIONS / "seeds.jsonl")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(out[f"edge{i}"] == 0 for i in range(4))
    speakers = {s for doc_id, found in out.items() if doc_id.startswith("seed") for s in found}
    assert {"kishida", "lavrov", "shoigu", "onodera"} <= speakers
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
