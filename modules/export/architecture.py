"""Architecture records: how an export names the network it fills, as data only.

An export never chooses what code runs: a record names an entry of a fixed in-project table and
gives options that are validated before anything is built. Records (JSON in the export):

  {"kind": "network", "model": {"name": N, ...}, "data_info": {...}}
      a network of the project's model registry (`inqnet.modules.registry`, entry N), its
      options validated by that entry's config class, built as a run builds it
  {"kind": "inq-module", "hparams": {"model", "data_info", "optimizer", "scheduler", ...}}
      an `inq` LightningModule rebuilt from its recipe sections, as `modules.load_model` does
  {"kind": "registered", "name": N, "kwargs": {...}}
      a builder the running program registered with `register_architecture(N)`; the kwargs
      must bind to its signature
  {"kind": "ensemble", "members": [record, ...], "combine": "mean" | "mean_softmax"}

Files written before these records named a builder as {"kind": "import", "target":
"modules.networks.vgg:VGG", "kwargs": ...}. Only the targets in `LEGACY_IMPORT_TARGETS` (the
project's own networks) are understood: each maps onto a "network" record through a fixed
converter; nothing named in a file is ever imported. Anything else is a ValueError naming it.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from inqnet.modules.errors import one_line

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}  # filled by code, never by a file
ARCHITECTURE_ATTR = "inq_architecture"  # the record a network was built from
KIND_KEYS = {"network": {"kind", "model", "data_info"},
             "inq-module": {"kind", "hparams"},
             "registered": {"kind", "name", "kwargs"},
             "ensemble": {"kind", "members", "combine"}}
HPARAM_KEYS = {"model", "data_info", "optimizer", "scheduler", "members", "seed", "recipe"}
COMBINE_RULES = ("mean", "mean_softmax")
MAX_MEMBERS = 64  # members of one ensemble record
MAX_DEPTH = 3  # ensembles nested inside ensembles
MAX_DATA_INFO_KEYS = 32


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a network builder of this program reachable from {"kind": "registered",
    "name": name} (a file can only pick it by name)."""
    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = builder
        return builder
    return wrap


# ----------------------------------------------------------------------------- old records
def _bind(cls: type, kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    try:
        bound = inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"architecture target {target!r}: {err}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def _old_vgg(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    from inqnet.modules.networks.vgg import VGG

    a = _bind(VGG, kwargs, target)
    return {"kind": "network",
            "model": {"name": "vgg", "layers": list(a["layers"]), "width": a["width"],
                      "hidden": list(a["hidden"]), "dropout": a["dropout"],
                      "batch_norm": a["batch_norm"]},
            "data_info": {"num_classes": a["num_classes"], "in_channels": a["in_channels"],
                          "input_size": a["input_size"]}}


def _old_paper_vgg(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    from inqnet.modules.networks.vgg16 import PaperVGG

    a = _bind(PaperVGG, kwargs, target)
    variant = str(a["variant"])
    layers = {"vgg16": 13, "vgg_small8": 8, "vgg_small5": 5}.get(variant.removesuffix("_bn"))
    if layers is None or a["hidden"] is not None:
        raise ValueError(f"architecture target {target!r}: variant {variant!r} with hidden="
                         f"{a['hidden']!r} has no registry entry")
    return {"kind": "network",
            "model": {"name": "vgg16", "conv_layers": layers, "batch_norm": variant.endswith("_bn"),
                      "width": a["width"], "dropout": a["dropout"]},
            "data_info": {"num_classes": a["num_classes"], "in_channels": a["in_channels"],
                          "input_size": a["input_size"]}}


def _old_fcn(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    from inqnet.modules.networks.fcn import ResidualFCN

    a = _bind(ResidualFCN, kwargs, target)
    return {"kind": "network", "model": {"name": "fcn", "width": a["width"], "dropout": a["dropout"]},
            "data_info": {"in_channels": a["in_channels"]}}


def _old_deepspeech(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    from inqnet.modules.networks.deepspeech import DeepSpeech

    a = _bind(DeepSpeech, kwargs, target)
    model = {k: a[k] for k in ("hidden", "context", "rnn_type", "small", "clip", "dropout")}
    return {"kind": "network", "model": {"name": "deepspeech", **model},
            "data_info": {"n_features": a["n_features"], "num_classes": a["n_classes"]}}


# The one table of old "import" targets: the project's own networks, under the names files
# written before the `inqnet` root (`modules.`) and after it (`inqnet.modules.`) used.
_OLD_TARGETS = {"networks.vgg:VGG": _old_vgg, "networks.vgg16:PaperVGG": _old_paper_vgg,
                "networks.fcn:ResidualFCN": _old_fcn, "networks.deepspeech:DeepSpeech": _old_deepspeech}
LEGACY_IMPORT_TARGETS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    f"{root}{name}": convert for name, convert in _OLD_TARGETS.items()
    for root in ("modules.", "inqnet.modules.")}


def upgrade_record(record: Any) -> dict[str, Any]:
    """`record` with an old "import" record (at any depth) replaced by its "network" record."""
    if not isinstance(record, dict):
        raise ValueError(f"architecture record must be a JSON object, got {type(record).__name__}")
    if record.get("kind") == "import":
        target = record.get("target")
        convert = LEGACY_IMPORT_TARGETS.get(target) if isinstance(target, str) else None
        if convert is None or set(record) - {"kind", "target", "kwargs"}:
            raise ValueError(f"architecture target {str(target)[:120]!r} names code, which an export "
                             f"may not; known old targets: {sorted(LEGACY_IMPORT_TARGETS)}")
        return convert(_mapping(record.get("kwargs", {}), "kwargs"), target)
    if record.get("kind") == "ensemble" and isinstance(record.get("members"), list):
        return {**record, "members": [upgrade_record(m) for m in record["members"]]}
    return record


# ----------------------------------------------------------------------------- checking
def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"architecture {where} must be a JSON object with string keys")
    return value


def _check_data_info(value: Any) -> dict[str, Any]:
    info = _mapping(value, "data_info")
    if len(info) > MAX_DATA_INFO_KEYS:
        raise ValueError(f"architecture data_info has {len(info)} keys (at most {MAX_DATA_INFO_KEYS})")
    for key, item in info.items():
        if not isinstance(item, (int, float, str, bool)) or (isinstance(item, str) and len(item) > 200):
            raise ValueError(f"architecture data_info.{key} must be a number or a short string")
    return info


def check_record(record: Any, depth: int = 0, names: bool = True) -> dict[str, Any]:
    """Validate the shape of a record (kinds, keys, sizes) before anything is built; `names`:
    also that a "registered" name is registered in this program (not so when only reading)."""
    record = _mapping(record, "record")
    kind = record.get("kind")
    if kind not in KIND_KEYS:
        raise ValueError(f"unknown architecture kind {str(kind)[:60]!r} (known: {sorted(KIND_KEYS)})")
    extra = set(record) - KIND_KEYS[kind]
    if extra:
        raise ValueError(f"architecture record of kind {kind!r} has unknown keys {sorted(extra)}")
    if kind == "network":
        if _mapping(record.get("model"), "model").get("init_from") is not None:
            raise ValueError("architecture model.init_from: an export carries its own weights")
        _check_data_info(record.get("data_info", {}))
    elif kind == "inq-module":
        hparams = _mapping(record.get("hparams"), "hparams")
        if set(hparams) - HPARAM_KEYS:
            raise ValueError(f"architecture hparams has unknown keys {sorted(set(hparams) - HPARAM_KEYS)}")
        _check_data_info(hparams.get("data_info", {}))
        members = hparams.get("members", 1)
        if not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
            raise ValueError(f"architecture hparams.members must be 1..{MAX_MEMBERS}, got {members!r}")
    elif kind == "registered":
        if not isinstance(record.get("name"), str) or (names and record["name"] not in ARCHITECTURES):
            raise ValueError(f"no registered architecture {str(record.get('name'))[:60]!r} "
                             f"(known: {sorted(ARCHITECTURES)})")
        _mapping(record.get("kwargs", {}), "kwargs")
    else:
        members = record.get("members")
        if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
            raise ValueError(f"architecture ensemble needs 1..{MAX_MEMBERS} members")
        if record.get("combine", "mean") not in COMBINE_RULES:
            raise ValueError(f"unknown ensemble combine rule {str(record.get('combine'))[:40]!r}")
        if depth >= MAX_DEPTH:
            raise ValueError(f"architecture ensembles nested deeper than {MAX_DEPTH}")
        for member in members:
            check_record(member, depth + 1, names)
    return record


# ----------------------------------------------------------------------------- building
def build_architecture(record: dict[str, Any]) -> nn.Module:
    """An untrained network from a record (old "import" records upgraded first), carrying its
    record as `inq_architecture`; ValueError (one line) for anything not allowed."""
    record = check_record(upgrade_record(record))
    try:
        network = _build(record)
    except ValueError as err:  # pydantic's ValidationError and InputError are ValueErrors
        raise ValueError(one_line(str(err))[:400]) from None
    if not hasattr(network, "hparams"):  # an `inq` module describes itself by its hparams
        setattr(network, ARCHITECTURE_ATTR, record)
    return network


def _build(record: dict[str, Any]) -> nn.Module:
    kind = record["kind"]
    if kind == "network":
        from inqnet.modules.registry import model_entry, parse_model_config

        config = parse_model_config(record["model"])
        return model_entry(config.name).build(config, dict(record.get("data_info", {})))
    if kind == "inq-module":
        from inqnet.modules.checkpoints import module_from_hparams

        return module_from_hparams(record["hparams"])
    if kind == "registered":
        builder = ARCHITECTURES[record["name"]]
        try:
            inspect.signature(builder).bind(**record.get("kwargs", {}))
        except TypeError as err:
            raise ValueError(f"architecture {record['name']!r}: {err}") from None
        return builder(**record.get("kwargs", {}))
    from inqnet.modules.export.runtime import QuantizedEnsemble

    return QuantizedEnsemble([build_architecture(m) for m in record["members"]],
                             record.get("combine", "mean"))
