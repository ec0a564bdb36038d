import sys

from stacklo.cli import main

sys.exit(main())
