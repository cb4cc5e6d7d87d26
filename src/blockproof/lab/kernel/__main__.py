"""``python -m blockproof.lab.kernel ROLE ...``: one server process of a kernel lab run."""

import sys

from blockproof.lab.kernel.daemon import main

sys.exit(main())
