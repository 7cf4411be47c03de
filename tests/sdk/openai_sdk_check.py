#!/usr/bin/env python3
"""Drives a Cocoon client API with the official, unmodified OpenAI Python SDK.

Usage: openai_sdk_check.py BASE_URL MODEL
   or: COCOON_API_URL=http://127.0.0.1:10000/v1 COCOON_MODEL=... openai_sdk_check.py

Checks chat completions (plain and streamed with usage), legacy completions, the model
list, and that an unknown model raises `openai.NotFoundError`. Every check runs; the
script prints one line per check and exits non-zero if any failed. Run by
crates/cocoon/tests/openai_sdk.rs against an in-process devnet (install the SDK with
./scripts/setup.sh, which puts it in .venv-sdk/).
"""

import sys
import os
import traceback

import openai
from openai import OpenAI

MESSAGES = [{"role": "user", "content": "hello there cocoon"}]


class CheckFailed(Exception):
    pass


def require(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_usage(usage, where):
    """Token counts, and the cost fields Cocoon adds to the usage object."""
    require(usage is not None, f"{where}: no usage object")
    require(
        isinstance(usage.prompt_tokens, int) and usage.prompt_tokens > 0,
        f"{where}: usage.prompt_tokens = {usage.prompt_tokens!r}, want > 0",
    )
    require(
        isinstance(usage.completion_tokens, int) and usage.completion_tokens > 0,
        f"{where}: usage.completion_tokens = {usage.completion_tokens!r}, want > 0",
    )
    extra = usage.model_extra or {}
    cost = extra.get("total_cost")
    require(
        isinstance(cost, int) and cost > 0,
        f"{where}: usage.total_cost = {cost!r} (extra fields {extra!r}), want an integer > 0",
    )
    return (
        f"prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens}"
        f" total_cost={cost}"
    )


def chat(client, model):
    resp = client.chat.completions.create(model=model, messages=MESSAGES)
    require(resp.object == "chat.completion", f"object = {resp.object!r}")
    require(len(resp.choices) >= 1, f"no choices: {resp!r}")
    content = resp.choices[0].message.content
    require(isinstance(content, str) and content, f"empty content: {resp!r}")
    return f"{len(content)} chars, " + check_usage(resp.usage, "chat")


def chat_stream(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = []
    chunks = 0
    usage_chunks = []
    for chunk in stream:
        chunks += 1
        require(chunk.object == "chat.completion.chunk", f"chunk object = {chunk.object!r}")
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
        if chunk.usage is not None:
            usage_chunks.append(chunk)
    require(text, f"no content deltas in {chunks} chunks")
    require(len(usage_chunks) == 1, f"{len(usage_chunks)} chunks carry usage, want 1")
    final = usage_chunks[0]
    require(final.choices == [], f"usage chunk has choices: {final!r}")
    summary = check_usage(final.usage, "streamed chat")
    return f"{chunks} chunks, {len(''.join(text))} chars, {summary}"


def completion(client, model):
    resp = client.completions.create(model=model, prompt="say something", max_tokens=4)
    require(resp.object == "text_completion", f"object = {resp.object!r}")
    require(len(resp.choices) >= 1, f"no choices: {resp!r}")
    text = resp.choices[0].text
    require(isinstance(text, str) and text, f"empty text: {resp!r}")
    require(
        resp.usage is not None and 0 < resp.usage.completion_tokens <= 4,
        f"usage = {resp.usage!r}, want 1..=4 completion tokens",
    )
    return f"{len(text)} chars, finish_reason={resp.choices[0].finish_reason}, " + check_usage(
        resp.usage, "completion"
    )


def models(client, model):
    ids = [m.id for m in client.models.list()]
    require(model in ids, f"{model!r} not among listed models {ids!r}")
    return f"models: {ids}"


def unknown_model(client, _model):
    try:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    except openai.NotFoundError as e:
        require(e.status_code == 404, f"status {e.status_code}")
        require(e.code == "model_not_found", f"error code {e.code!r}, body {e.body!r}")
        return f"NotFoundError: {e.message}"
    raise CheckFailed("no exception for an unknown model")


CHECKS = [
    ("chat.completions.create", chat),
    ("chat.completions.create(stream=True)", chat_stream),
    ("completions.create", completion),
    ("models.list", models),
    ("unknown model -> NotFoundError", unknown_model),
]


def main():
    args = sys.argv[1:]
    base_url = args[0] if len(args) > 0 else os.environ.get("COCOON_API_URL")
    model = args[1] if len(args) > 1 else os.environ.get("COCOON_MODEL")
    if not base_url or not model:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"openai {openai.__version__} against {base_url}, model {model}")
    # No retries: a failure shows at once instead of after the SDK's backoff.
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=20.0)
    failed = []
    for name, check in CHECKS:
        try:
            print(f"ok   {name}: {check(client, model)}")
        except CheckFailed as e:
            failed.append(name)
            print(f"FAIL {name}: {e}")
        except openai.APIStatusError as e:  # an HTTP error status the check did not expect
            failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: HTTP {e.status_code}, body {e.response.text!r}")
        except openai.APIConnectionError as e:
            failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e} ({e.__cause__!r})")
        except Exception as e:  # e.g. the SDK could not parse a response: show where
            failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
    if failed:
        print(f"{len(failed)} of {len(CHECKS)} SDK checks failed: {', '.join(failed)}")
        return 1
    print(f"all {len(CHECKS)} SDK checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
