"""BlockManager: the KV block pool, reference counts and automatic prefix caching.

Each sequence owns a block table (block ids covering its positions in order). A full,
computed block is registered under the chained hash of (previous block's hash, its token
ids); a later sequence whose prompt starts with the same tokens reuses those blocks
instead of recomputing them. Blocks whose count drops to 0 go back to the free pool in
release order but keep their cached contents until they are handed out again, so a
freed prefix can still be hit; allocation takes the least recently released block first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from .sequence import Sequence


class Block:
    __slots__ = ("block_id", "ref_count", "hash", "token_ids")

    def __init__(self, block_id: int):
        self.block_id = block_id
        self.ref_count = 0
        self.hash: int | None = None
        self.token_ids: tuple[int, ...] = ()


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, *, enable_prefix_caching: bool = True,
                 on_release: Callable[[Sequence, list[int]], None] | None = None):
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"BlockManager needs num_blocks >= 1 and block_size >= 1, got "
                             f"{num_blocks} and {block_size}")
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self._on_release = on_release
        self.blocks = [Block(i) for i in range(num_blocks)]
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._cached: dict[int, int] = {}  # chained hash -> block id
        self.prefix_hits = 0  # blocks reused from the cache
        self.prefix_queries = 0  # full prompt blocks looked up

    @property
    def num_free_blocks(self) -> int:
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def cached_prefix(self, seq: Sequence) -> list[int]:
        """Blocks holding seq's longest cached prefix of full blocks; at least the last token
        is left to compute, so that it produces logits. Does not change any state."""
        if not self.enable_prefix_caching:
            return []
        hits: list[int] = []
        h = None
        for i in range((seq.num_tokens - 1) // self.block_size):
            tokens = tuple(seq.token_ids[i * self.block_size:(i + 1) * self.block_size])
            h = hash((h, tokens))
            block_id = self._cached.get(h)
            if block_id is None or self.blocks[block_id].token_ids != tokens:
                break
            hits.append(block_id)
        return hits

    def can_allocate(self, seq: Sequence, num_tokens: int, cached: list[int] = ()) -> bool:
        """Whether seq's table can cover num_tokens positions after reusing `cached`."""
        table = len(seq.block_table) or len(cached)
        revived = sum(1 for b in cached if self.blocks[b].ref_count == 0)
        return self.blocks_for(num_tokens) - table <= len(self._free) - revived

    def allocate(self, seq: Sequence, num_tokens: int, cached: list[int] = ()) -> None:
        """Grows seq's table to cover num_tokens positions; a fresh sequence first takes the
        `cached` prefix blocks (from cached_prefix) and counts them as computed."""
        if not self.can_allocate(seq, num_tokens, cached):
            raise RuntimeError(f"allocate: {self.blocks_for(num_tokens)} blocks needed, "
                               f"{len(self._free)} free")
        if cached:
            assert not seq.block_table, "a cached prefix only starts a fresh block table"
            self.prefix_queries += (seq.num_tokens - 1) // self.block_size
            self.prefix_hits += len(cached)
            for b in cached:
                self._ref(b)
            seq.block_table = list(cached)
            seq.num_hashed_blocks = len(cached)
            seq.num_computed_tokens = seq.num_cached_tokens = len(cached) * self.block_size
            seq.last_block_hash = self.blocks[cached[-1]].hash
        elif not seq.block_table and self.enable_prefix_caching:
            self.prefix_queries += (seq.num_tokens - 1) // self.block_size
        while len(seq.block_table) < self.blocks_for(num_tokens):
            block_id, _ = self._free.popitem(last=False)
            block = self.blocks[block_id]
            if block.hash is not None and self._cached.get(block.hash) == block_id:
                del self._cached[block.hash]
            block.hash, block.token_ids = None, ()
            block.ref_count = 1
            seq.block_table.append(block_id)

    def fork(self, parent: Sequence, child: Sequence, num_blocks: int) -> None:
        """child shares parent's first num_blocks (full, computed) blocks."""
        assert not child.block_table and num_blocks * self.block_size <= \
            parent.num_computed_tokens
        child.block_table = list(parent.block_table[:num_blocks])
        for b in child.block_table:
            self._ref(b)
        child.num_computed_tokens = num_blocks * self.block_size
        child.num_hashed_blocks = min(num_blocks, parent.num_hashed_blocks)
        child.last_block_hash = (self.blocks[child.block_table[child.num_hashed_blocks - 1]].hash
                                 if child.num_hashed_blocks else None)

    def register_computed(self, seqs: Iterable[Sequence]) -> None:
        """Publishes the sequences' newly completed full blocks in the prefix cache (all of a
        step's sequences in one call: most have completed none)."""
        if not self.enable_prefix_caching:
            return
        bs = self.block_size
        for seq in seqs:
            while (seq.num_hashed_blocks + 1) * bs <= seq.num_computed_tokens:
                i = seq.num_hashed_blocks
                tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
                h = hash((seq.last_block_hash, tokens))
                block = self.blocks[seq.block_table[i]]
                if block.hash is None:
                    block.hash, block.token_ids = h, tokens
                    self._cached.setdefault(h, block.block_id)
                seq.last_block_hash = h
                seq.num_hashed_blocks += 1

    def free(self, seq: Sequence) -> None:
        """Drops seq's references; blocks reaching 0 return to the pool (its last block
        first, so prefixes outlive their tails) and on_release(seq, those blocks) runs."""
        if not seq.block_table:
            return
        released = []
        for b in reversed(seq.block_table):
            block = self.blocks[b]
            block.ref_count -= 1
            if block.ref_count == 0:
                self._free[b] = None
                released.append(b)
        seq.block_table = []
        seq.num_computed_tokens = seq.num_hashed_blocks = 0
        seq.last_block_hash = None
        if self._on_release is not None:
            self._on_release(seq, released)

    def _ref(self, block_id: int) -> None:
        block = self.blocks[block_id]
        if block.ref_count == 0:
            del self._free[block_id]
        block.ref_count += 1
