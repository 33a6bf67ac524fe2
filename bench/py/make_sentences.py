"""Sentences for the embedder benchmark: the first N prose sentences of 6 to 40 words from a
corpus folder (files in sorted order), one JSON string per line on stdout."""

import argparse
import json
import re
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MARKUP = re.compile(r"[=*`|~^]{3,}|::|\.\. ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    found = 0
    for path in sorted(args.corpus.rglob("*.rst.txt")):
        for paragraph in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            text = " ".join(paragraph.split())
            if MARKUP.search(text):
                continue
            for sentence in SENTENCE_END.split(text):
                if 6 <= len(sentence.split()) <= 40:
                    print(json.dumps(sentence))
                    found += 1
                    if found == args.count:
                        return


if __name__ == "__main__":
    main()
