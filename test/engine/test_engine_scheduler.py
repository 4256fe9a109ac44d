from llaisys.engine import RequestStatus, SamplingParams
from llaisys.engine.block_manager import BlockManager
from llaisys.engine.detokenizer import IncrementalDetokenizer
from llaisys.engine.scheduler import RequestScheduler
from llaisys.engine.sequence import Request, Sequence
from test.utils.fake_model import FakeTokenizer


def make_seq(n_prompt: int, max_tokens: int = 8, first: int = 0) -> Sequence:
    tokens = [(first + i) % 250 for i in range(n_prompt)]
    req = Request(f"r{first}", None, tokens, SamplingParams(max_tokens=max_tokens), 0,
                  frozenset())
    return Sequence(req, 0, IncrementalDetokenizer(FakeTokenizer(), tokens))


def make_scheduler(num_blocks=64, block_size=4, max_num_seqs=4, max_num_batched_tokens=32,
                   max_model_len=128, mixed_batches=False) -> RequestScheduler:
    return RequestScheduler(BlockManager(num_blocks, block_size),
                            max_num_seqs=max_num_seqs,
                            max_num_batched_tokens=max_num_batched_tokens,
                            max_model_len=max_model_len, mixed_batches=mixed_batches)


def run(sched: RequestScheduler):
    """schedule() + what the engine does after a successful step (token 7 sampled)."""
    out = sched.schedule()
    sched.advance(out)
    sched.bm.register_computed(out.seqs)
    for seq in out.seqs:
        if seq.num_computed_tokens == seq.num_tokens:
            seq.token_ids.append(7)
    return out


def test_waiting_prompts_when_scheduled_then_prefill_admits_within_budgets():
    sched = make_scheduler(max_num_seqs=2, max_num_batched_tokens=32)
    seqs = [make_seq(8, first=i * 10) for i in range(3)]
    for s in seqs:
        sched.add(s)
    out = sched.schedule()
    assert out.kind == "prefill" and out.seqs == seqs[:2] and out.num_tokens == [8, 8]
    assert [s.state.status for s in seqs] == [RequestStatus.RUNNING] * 2 + [RequestStatus.WAITING]


def test_running_and_waiting_when_scheduled_then_prefill_comes_before_decode():
    sched = make_scheduler()
    a, b = make_seq(8), make_seq(8, first=50)
    sched.add(a)
    assert run(sched).kind == "prefill"
    sched.add(b)
    out = run(sched)
    assert out.kind == "prefill" and out.seqs == [b]
    out = run(sched)
    assert out.kind == "decode" and out.seqs == [a, b] and out.num_tokens == [1, 1]


def test_mixed_batches_when_a_prompt_arrives_then_decodes_first_and_prompt_fills_the_rest():
    sched = make_scheduler(max_num_batched_tokens=10, mixed_batches=True)
    a, b, c = make_seq(6), make_seq(6, first=40), make_seq(12, first=80)
    sched.add(a)
    sched.add(b)
    out = run(sched)
    assert out.kind == "prefill" and out.num_tokens == [6, 4] and out.num_decodes == 0
    sched.add(c)
    out = run(sched)  # a decodes beside b's last chunk and c's first
    assert out.kind == "prefill" and out.seqs == [a, b, c] and out.num_tokens == [1, 2, 7]
    assert out.num_decodes == 1
    out = run(sched)
    assert out.seqs == [a, b, c] and out.num_tokens == [1, 1, 5] and out.num_decodes == 2
    out = run(sched)
    assert out.kind == "decode" and out.num_tokens == [1, 1, 1] and out.num_decodes == 3


def test_token_budget_when_prompt_is_longer_then_prefill_is_chunked():
    sched = make_scheduler(max_num_batched_tokens=16)
    seq = make_seq(40)
    sched.add(seq)
    assert [run(sched).num_tokens for _ in range(3)] == [[16], [16], [8]]
    assert seq.num_output_tokens == 1
    assert run(sched).kind == "decode"


def test_token_budget_when_admitting_then_last_admission_is_chunked():
    sched = make_scheduler(max_num_batched_tokens=20)
    a, b = make_seq(12), make_seq(12, first=30)
    sched.add(a)
    sched.add(b)
    out = run(sched)
    assert out.seqs == [a, b] and out.num_tokens == [12, 8]
    out = run(sched)
    assert out.kind == "prefill" and out.seqs == [b] and out.num_tokens == [4]


def test_blocks_exhausted_when_decoding_then_newest_is_preempted_to_waiting_head():
    sched = make_scheduler(num_blocks=4, block_size=4, max_model_len=16)
    a, b = make_seq(8, first=0), make_seq(7, first=40)
    sched.add(a)
    sched.add(b)
    run(sched)  # both prefilled: a holds 2 blocks + token, b 2 blocks (7 computed, 8 tokens)
    out = run(sched)  # a needs a third block: b (newest) is preempted
    assert out.kind == "decode" and out.seqs == [a] and out.preempted == [b]
    assert b.state.status is RequestStatus.WAITING and b.block_table == []
    assert sched.waiting[0] is b and b.num_computed_tokens == 0 and b.num_output_tokens == 1
    assert sched.num_preemptions == 1


def test_only_one_running_when_blocks_exhausted_then_it_preempts_itself_and_resumes():
    sched = make_scheduler(num_blocks=2, block_size=4, max_model_len=8)
    seq = make_seq(7, max_tokens=1)
    sched.add(seq)
    run(sched)
    seq.token_ids.append(8)  # pretend the request goes on: needs a third block
    out = sched.schedule()
    assert out.seqs == [] and out.preempted == [seq] and sched.waiting[0] is seq


def test_prompt_plus_max_tokens_over_model_len_when_scheduled_then_aborted_with_reason():
    sched = make_scheduler(max_model_len=16)
    bad, good = make_seq(10, max_tokens=8), make_seq(4, first=20)
    sched.add(bad)
    sched.add(good)
    out = sched.schedule()
    assert out.aborted == [bad] and out.seqs == [good]
    assert bad.state.status is RequestStatus.FINISHED_ABORTED
    assert "max_model_len (16)" in bad.state.reason


def test_more_blocks_than_the_cache_when_scheduled_then_aborted_not_waiting_forever():
    sched = make_scheduler(num_blocks=3, block_size=4, max_model_len=64)
    seq = make_seq(10, max_tokens=4)
    sched.add(seq)
    out = sched.schedule()
    assert out.aborted == [seq] and out.kind == "idle" and not sched.has_unfinished()
    assert "cache has 3" in seq.state.reason


def test_finished_sequence_when_finished_then_leaves_running_and_frees_blocks():
    sched = make_scheduler(num_blocks=8)
    seq = make_seq(8)
    sched.add(seq)
    run(sched)
    seq.state.finish_length()
    sched.finish(seq)
    assert sched.running == [] and sched.bm.num_free_blocks == 8 and not sched.has_unfinished()


def test_max_num_seqs_when_more_running_requested_then_extra_waits():
    sched = make_scheduler(max_num_seqs=1)
    a, b = make_seq(4), make_seq(4, first=9)
    sched.add(a)
    sched.add(b)
    run(sched)
    out = run(sched)
    assert out.kind == "decode" and out.seqs == [a] and list(sched.waiting) == [b]


def test_waiting_sample_holding_blocks_when_the_head_needs_them_then_they_are_released():
    sched = make_scheduler(num_blocks=4, block_size=4)
    head, forked = make_seq(12, max_tokens=4, first=0), make_seq(8, max_tokens=4, first=50)
    sched.bm.allocate(forked, 8)  # as a forked sample waits with its shared prompt blocks
    sched.add(head)
    sched.add(forked)
    out = sched.schedule()
    assert out.seqs == [head] and len(head.block_table) == 3
    assert forked.block_table == [] and forked.num_computed_tokens == 0
    assert list(sched.waiting) == [forked]
