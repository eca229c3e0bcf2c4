"""`python tools/simlab ...`: run the simlab CLI from a checkout."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simlab.cli import main

sys.exit(main())
