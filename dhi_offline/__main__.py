"""``python -m dhi_offline``."""

from dhi_offline._entry import run

if __name__ == "__main__":
    run()
