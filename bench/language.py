"""The language corpus: how much of what HR people really type the bot understands.

    python bench/language.py [--corpus tests/language/corpus.json] [--misses] [--group terminate]

Runs every entry of the corpus (tests/language/README.md) through the real chat path
(``Dispatcher.handle``, as every channel does) against the same small company the tests use,
in a temporary SQLite database on a clock frozen at CLOCK_START (2026-03-10 10:00, Asia/Shanghai),
and judges each by what changed in the database (tests/language/judge.py). Prints the rates by
category and by group (understood / asked / missed / wrong) and messages per second; with
``--misses`` also every entry not understood or asked, with the bot's first reply.

Exits 1 when any entry is judged wrong (the bot acted wrongly) or any message was answered with
the apology (抱歉,处理时出错了: a handler raised), else 0. Missed entries do not fail the run:
the rates are the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def main(args: argparse.Namespace) -> int:
    from tests.language.judge import Bench, format_misses, format_table, load_corpus, ok_rate

    entries = load_corpus(Path(args.corpus))
    if args.group:
        entries = [e for e in entries if e.group == args.group]
    bench = Bench()
    try:
        await bench.prepare()
        started = asyncio.get_running_loop().time()
        results = await bench.run(entries)
        seconds = asyncio.get_running_loop().time() - started
    finally:
        await bench.close()
    print(format_table(results))
    print(
        f"{len(results)} messages in {seconds:.1f} s ({len(results) / seconds:.0f} msg/s, "
        f"{bench.worlds} worlds); ok (understood + asked): "
        f"free {ok_rate(results, 'free'):.0%}, documented {ok_rate(results, 'documented'):.0%}"
    )
    wrong = [r for r in results if r.outcome == "wrong"]
    apologies = [r for r in results if r.apology]
    if args.replies:
        for r in results:
            said = " ⏎ ".join(text.replace("\n", " ") for text in r.replies)
            print(f"#{r.entry.index} [{r.outcome}] {r.entry.text!r}\n    → {said}")
    if args.misses:
        print()
        print(format_misses(results))
    else:
        for r in wrong:
            print(f"WRONG #{r.entry.index} {r.entry.text!r}: {r.note}")
    for r in apologies:
        print(f"APOLOGY #{r.entry.index} {r.entry.text!r}")
    return 1 if wrong or apologies else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT / "tests/language/corpus.json"))
    parser.add_argument("--misses", action="store_true", help="list every entry not understood or asked")
    parser.add_argument("--group", help="only the entries of this group")
    parser.add_argument("--replies", action="store_true", help="print every message with the bot's replies")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    sys.exit(asyncio.run(main(parser.parse_args())))
