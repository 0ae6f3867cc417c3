"""`inq export`, `inq inspect` and bad export files: one line naming the file, exit code 2."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.inq_cli.clirunner import run_main

from inqnet.modules.export.runtime import load_quantized
from inqnet.modules.export.writer import export_model
from inqnet.modules.export.format import QuantizedFormatError
from tests.modules.inq.inq_nets import add_inq_state, trained_tiny

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def export_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "tiny.inq.safetensors"
    export_model(trained_tiny(5), path)
    return path


def _rewrite(src: Path, dst: Path, edit_meta=None, edit_header=None) -> Path:
    """Copy an export with edited metadata (tensors and checksums unchanged)."""
    with safe_open(str(src), framework="pt") as fh:
        meta = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if edit_header:
        header = json.loads(meta["inq_header"])
        edit_header(header)
        meta["inq_header"] = json.dumps(header)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def _flip_last_data_byte(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[-1] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def _bad_files(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    truncated = tmp / "truncated.inq.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    pickled = tmp / "pickle.inq.safetensors"
    torch.save({"w": torch.ones(2)}, pickled)

    def wrong_shape(h):
        h["quantized"]["head.0.weight"]["shape"] = [12, 17]

    def wrong_bits(h):
        h["quantized"]["head.0.weight"]["bits"] = 10

    return {
        "truncated": (truncated, "truncated"),
        "tampered": (_flip_last_data_byte(good, tmp / "tampered.inq.safetensors"),
                     "checksum mismatch"),
        "magic": (_rewrite(good, tmp / "magic.inq.safetensors",
                           edit_meta=lambda m: m.update(inq_magic="something-else")),
                  "not an inq quantized model"),
        "version": (_rewrite(good, tmp / "version.inq.safetensors",
                             edit_meta=lambda m: m.update(inq_format_version="7")),
                    "unsupported format version '7'"),
        "shape": (_rewrite(good, tmp / "shape.inq.safetensors", edit_header=wrong_shape),
                  "layer head.0.weight: 144 bytes of codes, shape [12, 17] at 5 bits needs 192"),
        "bits": (_rewrite(good, tmp / "bits.inq.safetensors", edit_header=wrong_bits),
                 "layer head.0.weight: bits must be <= 9 (got 10)"),  # packing.bits_problem
        "pickle": (pickled, "not a safetensors file"),
        "missing": (tmp / "nope.inq.safetensors", "no such file"),
    }


@pytest.mark.slow
def test_bad_files_one_line_exit_2(export_file: Path, tmp_path: Path) -> None:
    for case, (path, problem) in _bad_files(export_file, tmp_path).items():
        result = run_cli("inspect", str(path))
        assert result.returncode == 2, (case, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), (case, result.stderr)
        assert problem in lines[0], (case, lines[0])
        assert "Traceback" not in result.stderr


def test_load_quantized_raises_on_bad_files(export_file: Path, tmp_path: Path) -> None:
    for case, (path, problem) in _bad_files(export_file, tmp_path).items():
        with pytest.raises(QuantizedFormatError, match=re.escape(problem)):
            load_quantized(path, network=trained_tiny(5))


def test_invalid_code_values_are_rejected(export_file: Path, tmp_path: Path) -> None:
    """Codes rewritten to an index above 2^(b-2), checksum updated: still refused."""
    from inqnet.modules.export.format import sha256, tensor_bytes

    with safe_open(str(export_file), framework="pt") as fh:
        meta = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    data = tensors["head.0.weight.inq_codes"].clone()
    data[:4] = 0xFF  # v = 15 > m = 8 for 5-bit codes
    tensors["head.0.weight.inq_codes"] = data
    header = json.loads(meta["inq_header"])
    header["quantized"]["head.0.weight"]["sha256"] = sha256(tensor_bytes(data))
    meta["inq_header"] = json.dumps(header)
    bad = tmp_path / "codes.inq.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(QuantizedFormatError, match="codes outside the 5-bit code set"):
        load_quantized(bad, network=trained_tiny(5))


def test_inspect_prints_table_and_writes_histogram(export_file: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "codes.png"
    assert run_main(["inspect", str(export_file), "--histogram", str(png)]) == 0
    out = capsys.readouterr().out
    assert "head.0.weight" in out and "zero fraction" in out and "reduction" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SECTIONS = {"model": {"name": "vgg", "layers": [6, "M", 8], "hidden": [16]},
            "data_info": {"num_classes": 10, "in_channels": 1, "input_size": 8},
            "optimizer": {"name": "sgd", "lr": 0.1}}


def make_checkpoint(path: Path, bits: int = 4, partial: bool = False, members: int = 1) -> Path:
    """A run checkpoint as `inq train` writes it: recipe sections + state dict with INQ buffers."""
    from inqnet.modules.tasks.classification import ClassificationModule
    from inqnet.modules.ensemble import EnsembleModule
    from inqnet.modules.inq import select_targets

    torch.manual_seed(0)
    module = (EnsembleModule(**SECTIONS, members=members) if members > 1
              else ClassificationModule(**SECTIONS))
    targets = select_targets(module)
    for i, t in enumerate(targets):
        add_inq_state(t.module, t.attr, bits, frozen=0.5 if partial and i == 0 else 1.0)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def test_export_cli_then_load_quantized_equals_load_model(tmp_path: Path, capsys) -> None:
    from inqnet.modules import load_model

    ckpt = make_checkpoint(tmp_path / "run.ckpt", bits=4)
    x = torch.randn(3, 1, 8, 8)
    expected = load_model(ckpt)(x)
    exact = tmp_path / "exact.inq.safetensors"
    assert run_main(["export", str(ckpt), "-o", str(exact)]) == 0
    printed = capsys.readouterr().out
    assert "4-bit codes" in printed and "reduction" in printed and "net.features.0.weight" in printed
    loaded = load_quantized(exact)  # rebuilt from the recipe sections the export carries
    assert type(loaded).__name__ == "ClassificationModule"
    torch.testing.assert_close(loaded(x), expected, rtol=1e-6, atol=1e-6)

    small = tmp_path / "small.inq.safetensors"
    assert run_main(["export", str(ckpt), "-o", str(small), "--float-dtype", "float16",
                     "--zstd"]) == 0
    assert "bits per weight" in capsys.readouterr().out
    torch.testing.assert_close(load_quantized(small)(x), expected, rtol=5e-3, atol=5e-3)


def test_ensemble_checkpoint_exports_and_loads_as_an_ensemble(tmp_path: Path, capsys) -> None:
    from inqnet.modules import load_model
    from inqnet.modules.ensemble import EnsembleModule
    from inqnet.modules.export.runtime import QuantLinear
    from inqnet.modules.export.format import read_export

    ckpt = make_checkpoint(tmp_path / "ens.ckpt", bits=5, members=3)
    out = tmp_path / "ens.inq.safetensors"
    assert run_main(["export", str(ckpt), "-o", str(out)]) == 0
    assert "net.features.0.weight" in capsys.readouterr().out
    header = read_export(out).header
    assert header.members == ["members.0.", "members.1.", "members.2."]
    assert header.combine == "mean_softmax"
    loaded = load_quantized(out)
    assert isinstance(loaded, EnsembleModule) and loaded.num_members == 3
    assert all(isinstance(m.net.classifier[-1], QuantLinear) for m in loaded.members)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(loaded(x), load_model(ckpt)(x), rtol=1e-6, atol=1e-6)


def test_export_cli_refuses_partial_unless_allowed(tmp_path: Path, capsys) -> None:
    ckpt = make_checkpoint(tmp_path / "run.ckpt", bits=5, partial=True)
    out = tmp_path / "partial.inq.safetensors"
    assert run_main(["export", str(ckpt), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {ckpt}: 1 of ") and "--allow-partial" in err[0]
    assert not out.exists()
    assert run_main(["export", str(ckpt), "-o", str(out), "--allow-partial"]) == 0
    assert "kept in float" in capsys.readouterr().out
    x = torch.randn(2, 1, 8, 8)
    from inqnet.modules import load_model
    torch.testing.assert_close(load_quantized(out)(x), load_model(ckpt)(x), rtol=1e-6, atol=1e-6)


def test_export_cli_bad_arguments(tmp_path: Path, capsys) -> None:
    assert run_main(["export", str(tmp_path / "none.ckpt"), "-o", str(tmp_path / "x")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    ckpt = make_checkpoint(tmp_path / "run.ckpt")
    assert run_main(["export", str(ckpt), "-o", str(tmp_path / "x"),
                     "--float-dtype", "bfloat16"]) == 2
    assert "--float-dtype" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert run_main(["export", str(bad), "-o", str(tmp_path / "x")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_old_import_record_loads_under_the_new_root(tmp_path: Path) -> None:
    """Exports written before the `inqnet` root name builders `modules.<pkg>.<mod>:<fn>`: they map
    onto the project's own module; a name outside the project's networks is refused."""
    from inqnet.modules import load_model

    net = load_model(make_checkpoint(tmp_path / "run.ckpt", bits=5)).net
    plain = tmp_path / "plain.inq.safetensors"
    export_model(net, plain)
    kwargs = {"layers": [6, "M", 8], "in_channels": 1, "num_classes": 10, "input_size": 8,
              "hidden": [16], "dropout": 0.0}

    def old_record(target: str):  # type: ignore[no-untyped-def]
        return lambda h: h.update(architecture={"kind": "import", "target": target, "kwargs": kwargs})

    old = _rewrite(plain, tmp_path / "old.inq.safetensors", edit_header=old_record("modules.networks.vgg:VGG"))
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(load_quantized(old)(x), net(x), rtol=1e-6, atol=1e-6)
    evil = _rewrite(plain, tmp_path / "evil.inq.safetensors", edit_header=old_record("modules.checkpoints:torch"))
    with pytest.raises(QuantizedFormatError, match="architecture record refused: architecture target"):
        load_quantized(evil)
