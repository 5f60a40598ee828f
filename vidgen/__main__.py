"""`python -m vidgen <command>`: see vidgen.cli."""

from .cli import main

raise SystemExit(main())
