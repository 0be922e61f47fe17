"""Full-size shapes: detection (SD 1.5; SD 2.x 768-v and 512 without a marker, told apart by
their weights), configs, and the memory bound of streaming loads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from latentloom.models.configs import derive_configs
from latentloom.models.detect import detect
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.tiny import (
    make_sd2_checkpoint,
    make_sd15_checkpoint,
    sd2_configs,
    sd15_configs,
)
from tests.models.test_configs import assert_same_configs

# Loads the file into fp32 in a fresh interpreter and reports resident memory (Linux /proc).
MEASURE = """
import json, sys, time, torch
def kib(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
from latentloom.models.load import load_checkpoint
from latentloom.text.tokenizer import clip_tokenizer
clip_tokenizer('<|endoftext|>')  # the tokenizer is not weights: build it before measuring
before = kib('VmRSS:')
start = time.perf_counter()
checkpoint = load_checkpoint(sys.argv[1], device='cpu', dtype=torch.float32)
seconds = time.perf_counter() - start
modules = [checkpoint.model.unet, checkpoint.vae.module, checkpoint.clip.encoders[0].model]
weights = sum(t.numel() * t.element_size() for m in modules for t in m.state_dict().values())
print(json.dumps({'before': before, 'peak': kib('VmHWM:'), 'weights': weights, 'seconds': seconds}))
"""


@pytest.fixture(scope="module")
def sd15_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = make_sd15_checkpoint(tmp_path_factory.mktemp("full") / "sd15.safetensors", seed=0)
    yield path
    path.unlink()  # 2.1 GB: not left behind in pytest's kept temporary folders


@pytest.mark.slow
@pytest.mark.parametrize(
    ("v_prediction", "expected", "rule"),
    [
        (True, "v_prediction", "is 0.253 > 0.09, as in SD 2.x 768-v models"),
        (False, "epsilon", "is 0.000 <= 0.09, as in SD 2.x 512 epsilon models"),
    ],
)
def test_full_size_sd2_without_a_marker_is_told_by_its_weights(
    tmp_path: Path, v_prediction: bool, expected: str, rule: str
) -> None:
    path = make_sd2_checkpoint(tmp_path / "sd2.safetensors", v_prediction=v_prediction)
    try:
        assert 2.5e9 < path.stat().st_size < 2.8e9
        with SafetensorsFile(path) as file:
            assert "v_pred" not in file and not any("prediction" in k for k in file.metadata)
            detection = detect(file.keys(), file.metadata, path, weights=file)
            configs = derive_configs(file.shapes(), detection, path)
    finally:
        path.unlink()
    assert (detection.family.name, detection.prediction_type) == ("sd2", expected)
    # ComfyUI's published heuristic reads exactly this tensor of a full-size SD 2.x UNet.
    assert detection.prediction_rule.startswith(
        f"weights: the spread of output_blocks.11.1.transformer_blocks.0.norm1.bias {rule}"
    )
    assert_same_configs(configs, sd2_configs(v_prediction))


@pytest.mark.slow
def test_full_size_sd15_is_detected_with_the_published_config(sd15_file: Path) -> None:
    assert 2.0e9 < sd15_file.stat().st_size < 2.2e9
    with SafetensorsFile(sd15_file) as file:
        detection = detect(file.keys(), file.metadata, sd15_file, weights=file)
        configs = derive_configs(file.shapes(), detection, sd15_file)
    assert (detection.family.name, detection.prediction_type) == ("sd15", "epsilon")
    assert_same_configs(configs, sd15_configs())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_streaming_load_holds_little_more_than_the_fp32_weights(sd15_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(sd15_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    growth = (numbers["peak"] - numbers["before"]) / numbers["weights"]
    print(
        f"weights {numbers['weights'] / 1e9:.2f} GB, interpreter before load "
        f"{numbers['before'] / 1e9:.2f} GB, peak {numbers['peak'] / 1e9:.2f} GB "
        f"({numbers['peak'] / numbers['weights']:.3f}x weights; growth {growth:.3f}x), "
        f"{numbers['seconds']:.1f} s"
    )
    assert 4.2e9 < numbers["weights"] < 4.3e9
    assert growth <= 1.10
