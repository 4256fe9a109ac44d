import pytest

from llaisys.engine import SamplingParams
from llaisys.engine.block_manager import BlockManager
from llaisys.engine.detokenizer import IncrementalDetokenizer
from llaisys.engine.sequence import Request, Sequence
from test.utils.fake_model import FakeTokenizer


def make_seq(tokens: list[int]) -> Sequence:
    req = Request("r", None, tokens, SamplingParams(), 0, frozenset())
    return Sequence(req, 0, IncrementalDetokenizer(FakeTokenizer(), tokens))


def admit(bm: BlockManager, seq: Sequence) -> None:
    """Allocates seq's whole prompt (taking its cached prefix) and marks it computed."""
    cached = bm.cached_prefix(seq)
    bm.allocate(seq, seq.num_tokens, cached)
    seq.num_computed_tokens = seq.num_tokens
    bm.register_computed([seq])


def test_fresh_pool_when_allocating_then_takes_ceil_tokens_over_block_size():
    bm = BlockManager(8, 4)
    seq = make_seq(list(range(10)))
    bm.allocate(seq, 10)
    assert len(seq.block_table) == 3 and len(set(seq.block_table)) == 3
    assert bm.num_free_blocks == 5 and bm.num_used_blocks == 3


def test_too_few_blocks_when_allocating_then_refused_without_change():
    bm = BlockManager(2, 4)
    seq = make_seq(list(range(12)))
    assert not bm.can_allocate(seq, 12)
    with pytest.raises(RuntimeError, match="3 blocks needed"):
        bm.allocate(seq, 12)
    assert seq.block_table == [] and bm.num_free_blocks == 2


def test_shared_prefix_when_second_sequence_arrives_then_full_blocks_hit_and_refcount_2():
    bm = BlockManager(16, 4)
    a = make_seq(list(range(11)))
    admit(bm, a)
    b = make_seq(list(range(10)) + [99, 98])
    cached = bm.cached_prefix(b)
    assert cached == a.block_table[:2]  # [0..3], [4..7]; [8..11] differs
    admit(bm, b)
    assert b.num_cached_tokens == 8 and b.block_table[:2] == a.block_table[:2]
    assert [bm.blocks[i].ref_count for i in a.block_table[:2]] == [2, 2]
    assert bm.prefix_hits == 2 and bm.prefix_queries == 2 + 2


def test_prompt_of_whole_blocks_when_cached_then_last_token_is_left_to_compute():
    bm = BlockManager(16, 4)
    a = make_seq(list(range(8)))
    admit(bm, a)
    assert bm.cached_prefix(make_seq(list(range(8)))) == a.block_table[:1]


def test_freed_sequence_when_same_prompt_returns_then_cached_blocks_are_revived():
    released = []
    bm = BlockManager(4, 4, on_release=lambda seq, ids: released.extend(ids))
    a = make_seq(list(range(9)))
    admit(bm, a)
    table = list(a.block_table)
    bm.free(a)
    assert bm.num_free_blocks == 4 and sorted(released) == sorted(table)
    b = make_seq(list(range(9)))
    admit(bm, b)
    assert b.block_table[:2] == table[:2] and b.num_cached_tokens == 8


def test_cached_block_when_handed_out_again_then_its_hash_is_forgotten():
    bm = BlockManager(3, 4)
    a = make_seq(list(range(9)))
    admit(bm, a)
    bm.free(a)
    admit(bm, make_seq([50 + i for i in range(12)]))  # takes every block, evicting a's
    assert bm.cached_prefix(make_seq(list(range(9)))) == []


def test_different_prefix_when_same_block_content_then_no_hit():
    bm = BlockManager(16, 4)
    admit(bm, make_seq([1, 2, 3, 4, 5, 6, 7, 8, 0]))
    assert bm.cached_prefix(make_seq([9, 9, 9, 9, 5, 6, 7, 8, 0])) == []


def test_prefix_caching_off_when_same_prompt_then_no_hit():
    bm = BlockManager(16, 4, enable_prefix_caching=False)
    admit(bm, make_seq(list(range(9))))
    assert bm.cached_prefix(make_seq(list(range(9)))) == [] and bm.prefix_queries == 0


def test_fork_when_child_shares_blocks_then_refcounts_count_both_and_free_releases_last():
    released = []
    bm = BlockManager(8, 4, on_release=lambda seq, ids: released.append(list(ids)))
    parent = make_seq(list(range(10)))
    admit(bm, parent)
    child = make_seq(list(range(10)))
    bm.fork(parent, child, 2)
    assert child.block_table == parent.block_table[:2] and child.num_computed_tokens == 8
    table = list(parent.block_table)
    assert [bm.blocks[b].ref_count for b in table] == [2, 2, 1]
    bm.free(parent)
    assert released == [[table[2]]]
    bm.free(child)
    assert bm.num_free_blocks == 8 and all(b.ref_count == 0 for b in bm.blocks)


def test_invalid_sizes_when_created_then_value_error():
    with pytest.raises(ValueError, match="num_blocks"):
        BlockManager(0, 16)
    with pytest.raises(ValueError, match="block_size"):
        BlockManager(4, 0)
