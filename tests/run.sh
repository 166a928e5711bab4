#!/usr/bin/env bash
# The whole test set-up and suite on a fresh Debian/Ubuntu machine, GUI tests in a real napari
# viewer under Xvfb: system packages the viewer needs (when missing; as root or with sudo), the
# package with its test extra, then pytest. Extra arguments go to pytest.
#     bash tests/run.sh [-k widgets ...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Xvfb, Mesa's OpenGL and the xcb libraries Qt's platform plugin loads
PACKAGES=(xvfb xauth libgl1 libglx-mesa0 libegl1 libgl1-mesa-dri
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
  libdbus-1-3 libfontconfig1 libxi6 libxrender1 libxext6 libx11-xcb1)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
elif ! command -v xvfb-run >/dev/null 2>&1; then
  echo "tests/run.sh: not a Debian/Ubuntu machine and xvfb-run is missing: install Xvfb, Mesa (OpenGL) and Qt's xcb libraries, then rerun" >&2
  exit 1
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo)
  else
    echo "tests/run.sh: cannot install system packages (not root, no sudo): install them, then rerun: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing system packages for the GUI tests: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ImageJ 1.x (Debian's imagej), which the tests use to open our ROI sets: installed when possible;
# without it those checks are skipped (and say so)
if ! command -v imagej >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagej; } >/dev/null 2>&1 || echo "tests/run.sh: ImageJ not installed: its checks are skipped" >&2
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagej; } >/dev/null 2>&1 || echo "tests/run.sh: ImageJ not installed: its checks are skipped" >&2
  fi
fi

export PIP_ROOT_USER_ACTION=ignore PYTHONUNBUFFERED=1
python3 -m pip install -q ".[test]"
exec xvfb-run -a -s "-screen 0 1280x1024x24" python3 -m pytest -q tests "$@"
