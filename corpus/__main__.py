import sys

from corpus.harness import main

sys.exit(main())
