#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the system peers the
# interop tests need (rsync, openssh-server) when they are missing, installs
# pysync with its test extra, and runs pytest over tests/ and interop/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y "${need[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update >/dev/null
    $SUDO apt-get install -y "${need[@]}" >/dev/null
  }
fi

python3 -m pip install -q -e ".[test]" --config-settings editable_mode=compat
exec python3 -m pytest -q -p no:cacheprovider "$@"
