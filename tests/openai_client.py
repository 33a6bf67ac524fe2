"""kb's OpenAI-compatible facade, called with the official `openai` package.

Run by tests/api/openai_client.rs against a kb server whose answers come from the fake chat
engine. Reads KB_BASE_URL (the server), KB_API_KEY, KB_QUESTION and KB_EXPECT_N (the one
source number the answer must cite, when several sources are retrieved). Exits non-zero with
the reason on the first failed check; on success prints `cited: {...}` (JSON: for the
completion and the stream, the cited document, its title and the answer text) for the caller to
check against what the engine was shown, then a line ending `ok`.
"""

import json
import os
import re
import sys

import openai
from openai import OpenAI


def check(condition, message):
    if not condition:
        sys.exit(f"openai_client.py: {message}")


def check_cites_only(answer, sources, n, where):
    """The answer's markers, and its sources, name source n only; the answer quotes it."""
    markers = re.findall(r"\[(\d+)\]", answer)
    check(markers and all(int(m) == n for m in markers), f"{where}: markers {markers}: {answer!r}")
    check(
        len(sources) == 1 and sources[0]["n"] == n,
        f"{where}: sources other than [{n}]: {json.dumps(sources)}",
    )
    quote = answer.removesuffix(f" [{n}]")
    snippet = " ".join(sources[0]["snippet"].split())
    check(quote in snippet, f"{where}: {quote!r} is not from the cited source {snippet!r}")


def split_footer(content, where):
    """The answer and the lines of its `Sources:` list."""
    answer, sep, footer = content.partition("\n\nSources:\n")
    check(sep, f"{where}: content without a Sources list: {content!r}")
    return answer, footer.split("\n")


def main():
    client = OpenAI(
        base_url=os.environ["KB_BASE_URL"] + "/v1",
        api_key=os.environ.get("KB_API_KEY", "none"),
        max_retries=0,
        timeout=60,
    )
    question = os.environ["KB_QUESTION"]
    n = int(os.environ["KB_EXPECT_N"])
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": question},
    ]

    models = [m.id for m in client.models.list()]
    check(models == ["kb"], f"models: {models}")

    # Not streamed: the answer and its [n], the Sources list of that one source in the content,
    # and `sources` beside it.
    completion = client.chat.completions.create(model="kb", messages=messages)
    check(completion.object == "chat.completion", f"object: {completion.object}")
    content = completion.choices[0].message.content
    sources = (completion.model_extra or {}).get("sources")
    check(sources is not None, f"no sources field: {completion.model_dump_json()}")
    answer, footer = split_footer(content, "completion")
    check_cites_only(answer, sources, n, "completion")
    source = sources[0]
    check(
        len(footer) == 1 and footer[0].startswith(f"[{n}] {source['title']} ({source['document']}"),
        f"completion: Sources list {footer}",
    )
    check(completion.usage.completion_tokens > 0, f"usage: {completion.usage}")

    # Streamed: chunks of text, then the sources, then usage, then [DONE] (ends the iterator).
    stream = client.chat.completions.create(
        model="kb", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, pieces, streamed_sources, usage = "", 0, None, None
    for chunk in stream:
        check(chunk.object == "chat.completion.chunk", f"chunk object: {chunk.object}")
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            pieces += 1
        extra = chunk.model_extra or {}
        if "sources" in extra:
            streamed_sources = extra["sources"]
        if chunk.usage:
            usage = chunk.usage
    check(pieces > 2, f"the answer came in {pieces} pieces: {text!r}")
    check(streamed_sources is not None, "no sources in the stream")
    streamed_answer, streamed_footer = split_footer(text, "stream")
    check_cites_only(streamed_answer, streamed_sources, n, "stream")
    check(streamed_footer == footer, f"stream: Sources list {streamed_footer}, not {footer}")
    check(usage is not None and usage.completion_tokens > 0, f"stream usage: {usage}")

    # An unknown model is an OpenAI-style 404 that the package raises as NotFoundError.
    try:
        client.chat.completions.create(model="gpt-4o", messages=messages)
        check(False, "an unknown model was accepted")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", f"error code: {e.code}")

    cited = {
        kind: {"document": s[0]["document"], "title": s[0]["title"], "answer": a}
        for kind, s, a in [
            ("completion", sources, answer),
            ("stream", streamed_sources, streamed_answer),
        ]
    }
    print("cited: " + json.dumps(cited))
    print(f"openai {openai.__version__}: models, completion, stream and errors ok")


if __name__ == "__main__":
    main()
