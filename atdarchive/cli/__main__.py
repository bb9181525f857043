"""`python -m atdarchive.cli ...` runs the command line (handy with `-X importtime`)."""

from atdarchive.cli import main

main()
