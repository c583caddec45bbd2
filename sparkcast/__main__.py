"""`python -m sparkcast ...`: the same CLI as the `sparkcast` command (used by child
processes that must run under this very interpreter)."""

from sparkcast.cli import main

main(prog_name="sparkcast")
