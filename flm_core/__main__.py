import sys

from flm_core.cli import main

sys.exit(main())
