"""CLI: result documents, exit codes and one-line errors (``resnet_viz.cli``).

Runs ``main(argv)`` in-process (fast, no torch re-import) and one real ``python -m
resnet_viz`` subprocess for the exit code a shell sees. Specs are tiny: seconds in all.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_viz.cli import main as cli
from resnet_viz.cli import options
from resnet_viz.cli import train as cli_train
from resnet_viz.cli.main import main
from resnet_viz.data.datasets import DataError, load_dataset
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec

TINY = ["--dataset", "moons", "--depth", "4", "--width", "8", "--n_samples", "200"]
FINAL_KEYS = {"train_loss", "train_acc", "val_loss", "val_acc", "steps_per_s", "device",
              "stopped_reason"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet_viz: error: "), err
    return lines[0]


def test_train_json_has_the_schema_and_aligned_series(tmp_path, capsys):
    out_json, out_model = tmp_path / "run.json", tmp_path / "run.pt"
    code, out, _ = run(capsys, "train", *TINY, "--steps", "20", "--eval-every", "10",
                       "--json", str(out_json), "--save-model", str(out_model), "--quiet")
    assert code == 0 and out.startswith("finished: 20/20 steps")
    doc = json.loads(out_json.read_text())
    assert {"spec", "history", "grad_norms", "response_std", "final"} <= set(doc)
    assert doc["spec"]["depth"] == 4 and doc["spec"]["dataset"] == "moons"
    hist = doc["history"]
    assert hist["step"] == [0, 10, 20]
    assert all(len(hist[k]) == 3 for k in ("train_loss", "train_acc", "val_loss", "val_acc"))
    assert set(doc["final"]) >= FINAL_KEYS and doc["final"]["stopped_reason"] == "finished"
    spec = ExperimentSpec(**doc["spec"])
    net = build_model(spec)
    assert doc["probe_step"] == [0, 10]
    assert len(doc["grad_norms"]) == len(doc["response_std"]) == len(doc["probe_step"])
    assert all(len(row) == len(net.weight_layers()) for row in doc["grad_norms"])
    assert all(len(row) == len(net.response_layers()) for row in doc["response_std"])
    from resnet_viz.train.trainer import model_from_bytes
    model_from_bytes(spec, out_model.read_bytes())  # loads into the same architecture


@pytest.mark.parametrize("argv, message", [
    (["train", "--depth", "0"], "depth must be between 1 and 1000 (got 0)"),
    (["train", "--lr", "-1"], "lr must be between"),
    (["train", "--model", "foo"], "model must be one of mlp, cnn"),
    (["train", "--depth", "abc"], "depth='abc' is not a valid int"),
    (["train", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["train", "--model", "cnn", "--depth", "21"], "CNN needs depth = 6n+2"),
    (["sweep", "--depth", "4,abc"], "depth='abc' is not a valid int"),
    (["sweep", "--shortcut", "none,foo"], "shortcut must be one of"),
    (["shatter", "--model", "cnn", "--dataset", "digits", "--depth", "8"], "needs the MLP"),
    (["shatter", "--points", "4"], "at least 8 points"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert message in assert_one_line_error(code, err)
    assert out == ""


def test_both_spellings_of_underscore_flags(capsys, tmp_path):
    for flag in ("--shortcut_mask", "--shortcut-mask"):
        code, _, err = run(capsys, "train", *TINY, flag, "1012", "--steps", "1")
        assert "shortcut_mask must contain only 0 and 1" in assert_one_line_error(code, err)


def test_missing_output_folder_fails_before_training(capsys, tmp_path):
    code, _, err = run(capsys, "train", *TINY, "--json", str(tmp_path / "nope" / "x.json"))
    assert "does not exist" in assert_one_line_error(code, err)


def test_missing_local_dataset_is_exit_2_with_the_data_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_VIZ_DATA", str(tmp_path))
    with pytest.raises(DataError) as expected:
        load_dataset(ExperimentSpec(dataset="mnist"))
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--steps", "1")
    assert assert_one_line_error(code, err) == f"resnet_viz: error: {expected.value}"


def test_sweep_2x2_writes_4_rows_as_json_and_csv(tmp_path, capsys):
    js, cs = tmp_path / "s.json", tmp_path / "s.csv"
    code, out, _ = run(capsys, "sweep", *TINY[:2], "--width", "8", "--n_samples", "200",
                       "--depth", "2,4", "--shortcut", "none,identity", "--steps", "3",
                       "--json", str(js), "--csv", str(cs))
    assert code == 0 and "4/4 runs done, 0 failed" in out
    rows = json.loads(js.read_text())["rows"]
    assert len(rows) == 4
    assert [(r["depth"], r["shortcut"]) for r in rows] == [
        (2, "none"), (2, "identity"), (4, "none"), (4, "identity")]
    assert all(r["error"] is None and r["step"] == 3 for r in rows)
    assert all(set(cli_train.ROW_METRICS) <= set(r) for r in rows)
    assert rows[0]["device"] == "auto" and rows[0]["device_used"] in ("cpu", "cuda")  # asked vs used
    with cs.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and {"depth", "shortcut", "val_acc", "error"} <= set(table[0])
    assert table[3]["shortcut"] == "identity" and table[3]["depth"] == "4"


def test_sweep_reports_a_bad_combination_per_row(tmp_path, capsys):
    js = tmp_path / "s.json"
    code, out, _ = run(capsys, "sweep", "--model", "cnn", "--dataset", "digits", "--width", "4",
                       "--n_samples", "200", "--depth", "8,9", "--steps", "2", "--json", str(js))
    assert code == 1 and "1 failed" in out
    ok, bad = json.loads(js.read_text())["rows"]
    assert ok["error"] is None and ok["status"] == "finished"
    assert "6n+2" in bad["error"] and bad["depth"] == 9 and bad["val_acc"] is None


def test_shatter_keys_and_study_defaults(tmp_path, capsys):
    js = tmp_path / "sh.json"
    code, out, _ = run(capsys, "shatter", "--depth", "3", "--points", "32", "--json", str(js))
    assert code == 0 and "lag-1 autocorrelation" in out
    doc = json.loads(js.read_text())
    assert {"spec", "x", "gradients", "autocorr", "lag1", "spectrum_slope"} <= set(doc)
    assert (doc["spec"]["model"], doc["spec"]["dataset"], doc["spec"]["width"]) == ("mlp", "grid1d", 200)
    assert len(doc["x"]) == len(doc["gradients"]) == 32 and doc["x"][0] == -2.0
    assert doc["autocorr"][0] == pytest.approx(1.0) and doc["lag1"] == doc["autocorr"][1]


def test_shatter_trained_uses_given_flags(tmp_path, capsys):
    js = tmp_path / "sh.json"
    code, out, _ = run(capsys, "shatter", "--trained", "--depth", "2", "--width", "8",
                       "--steps", "5", "--points", "16", "--lo", "-1", "--hi", "1", "--json", str(js))
    assert code == 0 and "after 5 steps" in out
    doc = json.loads(js.read_text())
    assert doc["trained"] and doc["training"]["step"] == 5 and doc["spec"]["width"] == 8
    assert doc["x"][0] == -1.0 and doc["x"][-1] == 1.0


def test_ctrl_c_still_writes_partial_results(tmp_path, capsys, monkeypatch):
    from resnet_viz.train.trainer import Trainer
    real = Trainer.train_steps
    calls = []

    def interrupted_after_one_chunk(self, n):
        calls.append(n)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(self, n)

    monkeypatch.setattr(Trainer, "train_steps", interrupted_after_one_chunk)
    js = tmp_path / "run.json"
    code, _, _ = run(capsys, "train", *TINY, "--steps", "100", "--json", str(js))
    doc = json.loads(js.read_text())
    assert code == 130 and doc["final"]["stopped_reason"] == "interrupted by user"
    assert doc["step"] == cli_train.CHUNK and doc["status"] == "stopped"


def test_json_has_no_nan(tmp_path):
    path = tmp_path / "x.json"
    options.write_json(str(path), {"a": [1.0, float("nan")], "b": {"c": float("inf")}})
    assert json.loads(path.read_text()) == {"a": [1.0, None], "b": {"c": None}}


def test_version_and_a_new_subcommand_is_one_entry(capsys, monkeypatch):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("resnet_viz ")
    monkeypatch.setitem(cli.COMMANDS, "hello", cli.Command(
        "say hello", lambda p: p.add_argument("--name", default="you"),
        lambda args: print(f"hello {args.name}") or 0))
    assert run(capsys, "hello", "--name", "Kaiming")[:2] == (0, "hello Kaiming\n")


def test_python_m_resnet_viz_exit_codes(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    js = tmp_path / "run.json"
    ok = subprocess.run([sys.executable, "-m", "resnet_viz", "train", *TINY, "--steps", "2",
                         "--json", str(js), "--threads", "1"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(js.read_text())["step"] == 2
    bad = subprocess.run([sys.executable, "-m", "resnet_viz", "train", "--depth", "0"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_an_output_path_that_is_a_folder_fails_before_training(tmp_path, capsys, monkeypatch):
    from resnet_viz.train.trainer import Trainer
    monkeypatch.setattr(Trainer, "train_steps", lambda *a: pytest.fail("trained before checking"))
    code, _, err = run(capsys, "train", *TINY, "--steps", "5", "--json", str(tmp_path))
    assert code == 2 and "is a folder" in err
    assert not list(tmp_path.parent.glob(tmp_path.name + ".part"))


def test_train_init_from_a_cifar_layout_checkpoint(tmp_path, capsys):
    """--init-from PATH keeps a checked copy under its id, and the run starts from it."""
    import torch

    from test_nets_checkpoints import reference

    from resnet_viz.nets.models import build_model
    from resnet_viz.spec import ExperimentSpec
    ckpt = tmp_path / "ref.th"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference().state_dict().items()}}, ckpt)
    js, data = tmp_path / "run.json", tmp_path / "data"
    code, _, err = run(capsys, "train", "--model", "cnn", "--depth", "20", "--width", "16", "--dataset",
                       "digits", "--steps", "1", "--json", str(js), "--init-from", str(ckpt), "--data-dir", str(data))
    assert code == 2 and "stem.conv.weight" in err      # 3-channel CIFAR weights on 1-channel digits
    bad = tmp_path / "bad.th"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "train", *TINY, "--init-from", str(bad), "--data-dir", str(data))
    assert code == 2 and "weights-only" in err
    start = build_model(ExperimentSpec(dataset="moons", depth=4, width=8, seed=5))
    torch.save(start.state_dict(), ckpt)
    saved = tmp_path / "after.pt"
    code, _, err = run(capsys, "train", *TINY, "--steps", "1", "--lr", "0.000001", "--json", str(js),
                       "--init-from", str(ckpt), "--data-dir", str(data), "--save-model", str(saved))
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert len(doc["spec"]["init_from"]) == 16 and (data / "checkpoints" / f"{doc['spec']['init_from']}.pt").exists()
    after = torch.load(saved, weights_only=True)
    assert torch.allclose(after["stem.fc.weight"], start.state_dict()["stem.fc.weight"], atol=1e-4)
