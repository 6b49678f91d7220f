"""python -m marketpredictor_train"""

from marketpredictor_train.cli import main

main()
