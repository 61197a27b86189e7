from . import modcache

modcache.install()  # the bytecode of the modules below, from one file (pysync/modcache.py)

from . import warmup  # noqa: E402

warmup.start()      # the files this run imports, read ahead (pysync/warmup.py)

from .cli import command  # noqa: E402

command()
