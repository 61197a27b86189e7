from . import warmup

warmup.start()      # the files this run imports, read ahead (pysync/warmup.py)

from .cli import command  # noqa: E402

command()
