"""`python -m clipbench` is the same as the `clipbench` command."""

import sys

from clipbench.cli import main

sys.exit(main())
