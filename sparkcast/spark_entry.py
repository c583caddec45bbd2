"""Driver entry point for spark-submit (see spark-submit.sh).

    spark-submit [options] --py-files sparkcast.zip sparkcast/spark_entry.py transcode INPUT ...

`transcode` here means what `sparkcast submit` means (ingest + transcode); `live` runs the
live job. Everything after the job name is parsed by the same CLI as `sparkcast`.
"""

from __future__ import annotations

import sys

from sparkcast.cli import main as cli

JOBS = {"transcode": "submit", "live": "live"}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in JOBS:
        print(f"usage: spark_entry.py {{{'|'.join(JOBS)}}} [arguments]", file=sys.stderr)
        sys.exit(2)
    cli.main(args=[JOBS[argv[0]], *argv[1:]], prog_name=f"spark-submit.sh {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
