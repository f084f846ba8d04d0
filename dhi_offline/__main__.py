"""``python -m dhi_offline``."""

from dhi_offline.cli.main import run

if __name__ == "__main__":
    run()
