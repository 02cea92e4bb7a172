import sys

from benchmarks.runtime.run import main

sys.exit(main())
