"""``python -m gluonbert.ops``: build the kernel library if needed (setup.sh runs it)."""
import subprocess
import sys

from . import LIBRARY, build

try:
    if build():
        print(f'gluonbert.ops: built {LIBRARY}')
except (OSError, subprocess.CalledProcessError) as error:
    # No compiler, or a failed build: gluonbert still works, on MXNet's own operators
    print(f'gluonbert.ops: not built ({error}); gluonbert falls back to MXNet operators',
          file=sys.stderr)
