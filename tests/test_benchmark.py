"""The benchmark script runs on a tiny config and writes its JSON (figures are not asserted: it is not a test of speed)."""
import json


def test_benchmark_runs_and_writes_json(tmp_path, fresh_python):
    out = tmp_path / "bench.json"
    proc = fresh_python.script("experiments/benchmark.py", "--config=experiments/configs/pixelcnn.py:tiny",
                               "--steps=3", "--warmup=1", "--config.model.dtype=bfloat16", f"--output={out}",
                               timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in ("compile_s", "train_step_s_median", "train_images_per_s", "eval_images_per_s",
                "sample_images_per_s_naive", "sample_images_per_s_fast", "flops_per_train_step",
                "peak_host_rss_bytes"):
        assert result[key] is not None and result[key] > 0, key
    assert result["dtype"] == "bfloat16"
    assert result["train_step_s_p10"] <= result["train_step_s_median"] <= result["train_step_s_p90"]
    # The FLOP count is XLA's: larger than one forward pass of the first layer alone.
    assert result["flops_per_train_step"] > result["batch_size"] * 64 * 9 * 8
