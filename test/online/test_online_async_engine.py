"""AsyncLLMEngine against the fake engine: stream ordering, late readers, cancellation,
step failures and admission, all through the one loop thread."""

from __future__ import annotations

import asyncio
import threading
import time

from llaisys.engine import SamplingParams, StreamChunk
from llaisys.server.async_engine import AsyncLLMEngine, RequestFinished
from test.online.fake_engine import FakeEngine, FakeTokenizer

PROMPT = FakeTokenizer().encode("hello")


def greedy(**kw: object) -> SamplingParams:
    return SamplingParams(temperature=0, **kw)  # type: ignore[arg-type]


async def drain(stream_iter) -> list[StreamChunk | RequestFinished]:
    return [item async for item in stream_iter]


def run(coro):
    return asyncio.run(coro)


def with_engine(fake: FakeEngine):
    """An async context manager running an AsyncLLMEngine over ``fake``."""

    class _Ctx:
        async def __aenter__(self) -> AsyncLLMEngine:
            self.engine = AsyncLLMEngine(fake)
            self.engine.start()
            return self.engine

        async def __aexit__(self, *exc: object) -> None:
            self.engine.shutdown()

    return _Ctx()


async def wait_until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_stream_read_late_when_request_finished_then_no_token_is_lost():
    fake = FakeEngine()

    async def main() -> None:
        async with with_engine(fake) as engine:
            alone = await drain(engine.generate(PROMPT, greedy(max_tokens=40)))
            stream = engine.add_request(PROMPT, greedy(max_tokens=40), "late")
            await wait_until(lambda: fake.stats().running == 0 and not fake._requests)
            await asyncio.sleep(0.05)  # the loop's deliveries land on this event loop
            late = []
            while not (late and isinstance(late[-1], RequestFinished)):
                late.append(await stream.get())
            text = "".join(c.text for c in late[:-1])
            assert text == "".join(c.text for c in alone[:-1])
            assert text.startswith("You said")

    run(main())


def test_stream_when_request_finishes_then_terminal_item_comes_once_after_last_chunk():
    async def main() -> None:
        async with with_engine(FakeEngine()) as engine:
            items = await drain(engine.generate(PROMPT, greedy(max_tokens=12, n=2)))
            assert isinstance(items[-1], RequestFinished)
            assert all(isinstance(i, StreamChunk) for i in items[:-1])
            finished = items[-1]
            assert finished.error is None
            assert finished.finish_reasons == {0: "length", 1: "length"}
            for index in (0, 1):
                mine = [c for c in items[:-1] if c.index == index]
                assert sum(len(c.token_ids) for c in mine) == 12
                assert mine[-1].finish_reason == "length"
                assert all(c.finish_reason is None for c in mine[:-1])

    run(main())


def test_engine_calls_when_many_concurrent_requests_then_all_come_from_one_thread():
    fake = FakeEngine(max_num_seqs=4)

    async def main() -> None:
        async with with_engine(fake) as engine:
            results = await asyncio.gather(*[
                drain(engine.generate(FakeTokenizer().encode(f"prompt {i}"),
                                      greedy(max_tokens=8))) for i in range(12)])
        assert all(r[-1].error is None for r in results)
        assert fake.owner is not None and fake.owner is not threading.current_thread()
        for r in results:  # max_tokens=8: the first 8 bytes of each scripted reply
            assert "".join(c.text for c in r[:-1]) == "You said"

    run(main())


def test_abort_when_request_is_running_then_it_ends_within_one_step_and_frees_kv():
    fake = FakeEngine(step_delay=0.02)

    async def main() -> None:
        async with with_engine(fake) as engine:
            it = engine.generate(PROMPT, greedy(max_tokens=400, ignore_eos=True), "victim")
            first = await anext(it)
            assert isinstance(first, StreamChunk)
            steps_at_abort = fake.steps
            assert engine.abort("victim")
            rest = [item async for item in it]
            assert isinstance(rest[-1], RequestFinished)
            assert rest[-1].finish_reasons == {0: "abort"}
            assert rest[-1].error is None
            assert fake.steps - steps_at_abort <= 2  # the step in flight, at most one more
            await wait_until(lambda: engine.stats().kv_blocks_used == 0)
            assert not engine.abort("victim")  # no longer in flight

    run(main())


def test_consumer_when_it_stops_reading_early_then_request_is_aborted():
    fake = FakeEngine(step_delay=0.01)

    async def main() -> None:
        async with with_engine(fake) as engine:
            it = engine.generate(PROMPT, greedy(max_tokens=400, ignore_eos=True))
            await anext(it)
            await it.aclose()  # what a client disconnect does to the server's iterator
            await wait_until(lambda: engine.stats().running == 0
                             and engine.stats().kv_blocks_used == 0)

    run(main())


def test_step_when_it_raises_then_inflight_requests_fail_and_later_requests_succeed():
    fake = FakeEngine(step_delay=0.01)

    async def main() -> None:
        async with with_engine(fake) as engine:
            fake.fail_next_steps = 1
            failed = await drain(engine.generate(PROMPT, greedy(max_tokens=5)))
            assert failed[-1].error_kind == "internal"
            assert "injected step failure" in (failed[-1].error or "")
            await wait_until(lambda: engine.stats().kv_blocks_used == 0)
            ok = await drain(engine.generate(PROMPT, greedy(max_tokens=5)))
            assert ok[-1].error is None
            assert "".join(c.text for c in ok[:-1]) == "You s"
            assert engine.is_alive

    run(main())


def test_waiting_queue_when_full_then_submit_is_refused_as_overloaded():
    fake = FakeEngine(step_delay=0.05, max_num_seqs=1, max_waiting_requests=1)

    async def main() -> None:
        async with with_engine(fake) as engine:
            params = greedy(max_tokens=200, ignore_eos=True)
            running = engine.generate(PROMPT, params, "running")
            assert isinstance(await anext(running), StreamChunk)
            waiting = engine.generate(PROMPT, params, "waiting")
            refused = await drain(engine.generate(PROMPT, params, "refused"))
            assert len(refused) == 1 and refused[0].error_kind == "overloaded"
            engine.abort("running")
            engine.abort("waiting")
            assert (await drain(running))[-1].finish_reasons == {0: "abort"}
            assert (await drain(waiting))[-1].finish_reasons == {0: "abort"}

    run(main())


def test_submit_when_engine_rejects_the_prompt_then_stream_ends_with_invalid_error():
    async def main() -> None:
        async with with_engine(FakeEngine()) as engine:
            items = await drain(engine.generate([], greedy()))
            assert len(items) == 1
            assert items[0].error_kind == "invalid" and "empty" in items[0].error

    run(main())
