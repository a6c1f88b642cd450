import sys

from exp_compat.cli import main

sys.exit(main())
