"""PyInstaller entry script: the frozen binary runs exactly what the `hc` console script runs."""

from hc.__main__ import main

main()
