"""Ensemble layout arithmetic: who trains which member, and the refused combinations."""
from __future__ import annotations

import pytest

from inqnet.modules.ensemble import EnsembleLayout


def test_groups_when_ranks_outnumber_members() -> None:
    layout = EnsembleLayout.build(world_size=8, members=2)
    assert layout.group_size == 4 and layout.members_per_rank == 1
    assert [layout.local_members(r) for r in range(8)] == [[0]] * 4 + [[1]] * 4
    assert layout.member_ranks(1) == [4, 5, 6, 7] and layout.owner(1) == 4
    assert [layout.rank_in_group(r) for r in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert layout.groups() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_several_members_per_rank() -> None:
    layout = EnsembleLayout.build(world_size=2, members=4)
    assert layout.local_members(0) == [0, 1] and layout.local_members(1) == [2, 3]
    assert layout.owner(3) == 1 and layout.groups() == [[0], [1]]
    single = EnsembleLayout.build(world_size=1, members=3)
    assert single.local_members(0) == [0, 1, 2] and single.groups() == [[0]]


def test_one_member_is_plain_ddp() -> None:
    layout = EnsembleLayout.build(world_size=4, members=1)
    assert layout.groups() == [[0, 1, 2, 3]] and layout.local_members(3) == [0]


@pytest.mark.parametrize("world,members", [(2, 3), (4, 3), (3, 2), (6, 4), (4, 6)])
def test_refused_combinations(world: int, members: int) -> None:
    with pytest.raises(ValueError, match=f"ensemble.members={members} does not fit {world} ranks"):
        EnsembleLayout.build(world, members)
