"""Allow `python -m plantwatch`."""

from plantwatch.cli import main

raise SystemExit(main())
