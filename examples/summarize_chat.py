#!/usr/bin/env python3
"""Summarize a chat transcript through Cocoon — the backend half of a Telegram-style bot or
Mini App ("/summary" over the last messages of a group), using the unmodified OpenAI SDK.

    python examples/summarize_chat.py transcript.txt \
        --base-url http://127.0.0.1:10000/v1 --model test-model

The transcript is plain text, one message per line ("name: text"). The prompt never leaves
the attested Cocoon network; the answer's usage carries what it cost in nanoTON.
Set COCOON_API_KEY when the client demands keys ([[api_keys]] in its config).
"""

import argparse
import os
import sys

from openai import OpenAI

MAX_TRANSCRIPT_CHARS = 60_000  # keep the prompt well inside small models' context


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transcript", help="text file, one 'name: message' per line ('-' = stdin)")
    ap.add_argument("--base-url", default=os.environ.get("COCOON_API_URL", "http://127.0.0.1:10000/v1"))
    ap.add_argument("--model", default=os.environ.get("COCOON_MODEL", "test-model"))
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--stream", action="store_true", help="print the summary as it is generated")
    args = ap.parse_args()

    text = sys.stdin.read() if args.transcript == "-" else open(args.transcript, encoding="utf-8").read()
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        print("the transcript is empty", file=sys.stderr)
        return 2
    transcript = "\n".join(lines)[-MAX_TRANSCRIPT_CHARS:]

    client = OpenAI(base_url=args.base_url, api_key=os.environ.get("COCOON_API_KEY", "unused"))
    messages = [
        {"role": "system", "content": "You summarize group chats: who decided what, open questions, next steps. Be brief."},
        {"role": "user", "content": f"Summarize this chat ({len(lines)} messages):\n\n{transcript}"},
    ]
    if args.stream:
        usage = None
        stream = client.chat.completions.create(
            model=args.model, messages=messages, max_tokens=args.max_tokens,
            stream=True, stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
            if chunk.usage:
                usage = chunk.usage
        print()
    else:
        reply = client.chat.completions.create(model=args.model, messages=messages, max_tokens=args.max_tokens)
        print(reply.choices[0].message.content)
        usage = reply.usage
    if usage is not None:
        cost = (usage.model_extra or {}).get("total_cost")
        print(f"[{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens"
              + (f", cost {cost} nanoTON]" if cost is not None else "]"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
