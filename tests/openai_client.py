"""kb's OpenAI-compatible facade, called with the official `openai` package.

Run by tests/api/openai_client.rs against a kb server whose answers come from the fake chat
engine. Reads KB_BASE_URL (the server), KB_API_KEY, KB_QUESTION, KB_EXPECT (words the answer
must contain) and KB_EXPECT_DOCUMENT (the document it must cite). Exits non-zero with the
reason on the first failed check.
"""

import os
import sys

import openai
from openai import OpenAI


def check(condition, message):
    if not condition:
        sys.exit(f"openai_client.py: {message}")


def main():
    client = OpenAI(
        base_url=os.environ["KB_BASE_URL"] + "/v1",
        api_key=os.environ.get("KB_API_KEY", "none"),
        max_retries=0,
        timeout=60,
    )
    question = os.environ["KB_QUESTION"]
    expect = os.environ["KB_EXPECT"]
    document = os.environ["KB_EXPECT_DOCUMENT"]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": question},
    ]

    models = [m.id for m in client.models.list()]
    check(models == ["kb"], f"models: {models}")

    # Not streamed: the answer, its [1], the Sources list in the content, `sources` beside it.
    completion = client.chat.completions.create(model="kb", messages=messages)
    check(completion.object == "chat.completion", f"object: {completion.object}")
    content = completion.choices[0].message.content
    check(expect in content, f"answer without {expect!r}: {content!r}")
    check("[1]" in content, f"answer without a citation: {content!r}")
    check("\n\nSources:\n[1] " in content, f"content without a Sources list: {content!r}")
    sources = (completion.model_extra or {}).get("sources")
    check(bool(sources), f"no sources field: {completion.model_dump_json()}")
    check(sources[0]["n"] == 1 and sources[0]["document"] == document, f"sources: {sources}")
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
    check(expect in text and "[1]" in text, f"streamed answer: {text!r}")
    check(bool(streamed_sources), "no sources in the stream")
    check(streamed_sources[0]["document"] == document, f"streamed sources: {streamed_sources}")
    check(usage is not None and usage.completion_tokens > 0, f"stream usage: {usage}")

    # An unknown model is an OpenAI-style 404 that the package raises as NotFoundError.
    try:
        client.chat.completions.create(model="gpt-4o", messages=messages)
        check(False, "an unknown model was accepted")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", f"error code: {e.code}")

    print(f"openai {openai.__version__}: models, completion, stream and errors ok")


if __name__ == "__main__":
    main()
