"""Which rank trains which ensemble member: pure arithmetic on (world size W, members K).

- W >= K and K divides W: the ranks split into K groups of W/K; each group trains one member under
  DDP inside its own process group (gradients are all-reduced only within the group).
- W < K and W divides K: each rank trains K/W members on its own.
- Anything else is refused before training starts.
"""
from __future__ import annotations

from dataclasses import dataclass


def member_seed(seed: int, member: int) -> int:
    """Seed of member ``member``'s initialisation and data order (member 0 keeps the recipe seed)."""
    return seed + 1_000 * member


@dataclass(frozen=True)
class EnsembleLayout:
    """The assignment of K members to W ranks."""

    world_size: int
    members: int

    @classmethod
    def build(cls, world_size: int, members: int) -> EnsembleLayout:
        if members < 1 or world_size < 1:
            raise ValueError(f"ensemble.members must be >= 1 (got {members}) and the world size >= 1 (got {world_size})")
        if world_size >= members and world_size % members == 0:
            return cls(world_size, members)
        if world_size < members and members % world_size == 0:
            return cls(world_size, members)
        raise ValueError(
            f"ensemble.members={members} does not fit {world_size} ranks (trainer.devices x trainer.num_nodes): "
            f"the rank count must be a multiple of the members, or the members a multiple of the rank count")

    @property
    def group_size(self) -> int:
        """Ranks that train one member together (DDP replicas)."""
        return max(1, self.world_size // self.members)

    @property
    def members_per_rank(self) -> int:
        return max(1, self.members // self.world_size)

    def local_members(self, rank: int) -> list[int]:
        """The members rank ``rank`` trains."""
        if self.world_size >= self.members:
            return [rank // self.group_size]
        start = rank * self.members_per_rank
        return list(range(start, start + self.members_per_rank))

    def member_ranks(self, member: int) -> list[int]:
        """The ranks that train member ``member`` (its process group)."""
        if self.world_size >= self.members:
            return list(range(member * self.group_size, (member + 1) * self.group_size))
        return [member // self.members_per_rank]

    def owner(self, member: int) -> int:
        """The rank whose copy of ``member`` is authoritative (first rank of its group)."""
        return self.member_ranks(member)[0]

    def rank_in_group(self, rank: int) -> int:
        return rank % self.group_size if self.world_size >= self.members else 0

    def groups(self) -> list[list[int]]:
        """Every rank's process group, one entry per distinct group, in member order."""
        seen: list[list[int]] = []
        for m in range(self.members):
            ranks = self.member_ranks(m)
            if ranks not in seen:
                seen.append(ranks)
        return seen
