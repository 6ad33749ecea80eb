"""``python -m noisyseg`` (and ``torchrun -m noisyseg``): the command line."""

from noisyseg.cli.main import main

if __name__ == "__main__":
    main()
