"""Exports describe architectures as data only: a record naming code is refused everywhere, and
nothing outside the test's folder changes; old records of the project's own networks still load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inqnet.modules.export.architecture import build_architecture, upgrade_record
from inqnet.modules.export.format import QuantizedFormatError
from inqnet.modules.export.runtime import load_quantized
from inqnet.modules.export.writer import export_model
from tests.inq_cli.clirunner import REPO, run_main

VGG_KWARGS = {"layers": [6, "M", 8], "in_channels": 1, "num_classes": 10, "input_size": 8,
              "hidden": [16], "dropout": 0.0}


def _rewrite(src: Path, dst: Path, architecture: object) -> Path:
    """`src` with another architecture record (tensors and checksums unchanged)."""
    with safe_open(str(src), framework="pt") as fh:
        meta = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    header = json.loads(meta["inq_header"])
    header["architecture"] = architecture
    meta["inq_header"] = json.dumps(header)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def plain_export(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    from inqnet.modules.networks.vgg import VGG
    from tests.modules.inq.inq_nets import quantize_all

    torch.manual_seed(0)
    net = quantize_all(VGG(**VGG_KWARGS), 5).eval()
    path = tmp_path_factory.mktemp("plain") / "plain.inq.safetensors"
    export_model(net, path)  # no record: the network is not from a record
    return path, net


def _hostile_records(victim: Path) -> dict[str, object]:
    save = {"tensors": {}, "header": None, "path": str(victim)}
    imported = {"kind": "import", "target": "inqnet.modules.export.format:write_export", "kwargs": save}
    return {
        "own save function": imported,
        "old-root save function": {**imported, "target": "modules.export.format:write_export"},
        "safetensors": {"kind": "import", "target": "safetensors.torch:save_file",
                        "kwargs": {"tensors": {}, "filename": str(victim)}},
        "os.system": {"kind": "import", "target": "os:system", "kwargs": {"command": f"touch {victim}"}},
        "inside an ensemble": {"kind": "ensemble", "members": [imported], "combine": "mean"},
        "a kind naming code": {"kind": "inqnet.modules.export.format:write_export", "kwargs": save},
        "registered save": {"kind": "registered", "name": "write_export", "kwargs": save},
        "extra key": {"kind": "network", "model": {"name": "vgg"}, "data_info": {}, "target": "os:system"},
        "init_from path": {"kind": "network", "model": {"name": "vgg", "init_from": str(victim)},
                           "data_info": {"num_classes": 10, "in_channels": 1, "input_size": 8}},
        "not a mapping": ["inqnet.modules.export.format", "write_export"],
    }


def test_records_naming_code_are_refused_and_nothing_changes(plain_export, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good, _ = plain_export
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious")
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    before, repo_before = _tree(outside), sorted(p.name for p in REPO.iterdir())
    for case, record in _hostile_records(victim).items():
        path = _rewrite(good, crafted / f"{len(list(crafted.iterdir()))}.inq.safetensors", record)
        with pytest.raises(QuantizedFormatError) as info:
            load_quantized(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value), case
        assert run_main(["inspect", str(path), "--histogram", str(crafted / "h.png")]) == 2, case
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {path}: "), (case, err)
        assert "Traceback" not in err[0]
        assert _tree(outside) == before, case  # the victim was neither written nor replaced
        assert not (outside / "victim.txt.tmp").exists() and victim.read_text() == "precious"
    assert sorted(p.name for p in REPO.iterdir()) == repo_before
    assert not (crafted / "h.png").exists()


def test_deeply_nested_header_is_one_line(plain_export, tmp_path: Path) -> None:
    good, _ = plain_export
    nested: object = {"kind": "ensemble", "members": [], "combine": "mean"}
    for _ in range(5):
        nested = {"kind": "ensemble", "members": [nested], "combine": "mean"}
    with pytest.raises(QuantizedFormatError, match="nested deeper than"):
        load_quantized(_rewrite(good, tmp_path / "deep.inq.safetensors", nested))


@pytest.mark.parametrize("root", ["modules.", "inqnet.modules."])
def test_old_import_record_of_the_projects_vgg_loads(plain_export, tmp_path: Path, root: str) -> None:
    good, net = plain_export
    record = {"kind": "import", "target": f"{root}networks.vgg:VGG", "kwargs": VGG_KWARGS}
    loaded = load_quantized(_rewrite(good, tmp_path / "old.inq.safetensors", record))
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    upgraded = loaded.inq_architecture  # re-exported as data: a registry entry and its options
    assert upgraded["kind"] == "network" and upgraded["model"]["name"] == "vgg"
    assert upgraded == upgrade_record(record)


def test_network_records_are_validated_by_the_registry() -> None:
    ok = {"kind": "network", "model": {"name": "vgg", "layers": [4, "M"], "hidden": [6]},
          "data_info": {"num_classes": 3, "in_channels": 1, "input_size": 8}}
    assert type(build_architecture(ok)).__name__ == "VGG"
    with pytest.raises(ValueError, match="layers"):
        build_architecture({**ok, "model": {"name": "vgg", "layers": [-4]}})
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_architecture({**ok, "model": {"name": "nope"}})
    with pytest.raises(ValueError, match="wider"):
        build_architecture({**ok, "model": {"name": "vgg", "wider": 2}})
