"""INQ core: exact power-of-two math, partition and schedules, and the Lightning callback.

Usable from any Lightning project::

    from inqnet.modules.inq import INQCallback
    trainer = Trainer(callbacks=[INQCallback(bits=5, portions=[0.5, 0.75, 0.875, 1.0], epochs_per_stage=2)])
"""
from inqnet.modules.inq.callback import INQCallback
from inqnet.modules.inq.math import (
    exponent_range,
    frozen_target,
    grow_mask,
    in_levels,
    levels,
    partition_scores,
    quantize,
    round_exponent,
    validate_portions,
)
from inqnet.modules.inq.schedule import InqClock, restart_lr
from inqnet.modules.inq.state import (
    LayerReport,
    Target,
    attach_buffers,
    layer_report,
    prepare_state_dict_buffers,
    select_targets,
    tracked_targets,
)

__all__ = [
    "INQCallback", "InqClock", "LayerReport", "Target", "attach_buffers", "exponent_range",
    "frozen_target", "grow_mask", "in_levels", "layer_report", "levels",
    "partition_scores", "prepare_state_dict_buffers", "quantize", "restart_lr", "round_exponent",
    "select_targets", "tracked_targets", "validate_portions",
]
