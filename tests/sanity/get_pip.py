"""Stand-in for get-pip.py, which ansible-test downloads to put pip into its test virtualenvs.

ansible-test fetches that script from ci-files.testing.ansible.com, which this network does not
reach. This one installs the interpreter's own pip (ensurepip) and lets it install what get-pip.py
would have (ansible-test pins the pip version), from the package index that the host's pip uses.
tests/test_sanity.py puts it into ansible-test's cache under the name ansible-test looks for.
"""

import subprocess
import sys

# get-pip.py's own options; the rest are pip install arguments.
ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *ARGS])
