#!/usr/bin/env bash
# Installs the system packages the tests need, if they are missing (Debian/Ubuntu; root or sudo).
#   - mesa-vulkan-drivers + libvulkan1: Mesa's software Vulkan driver (lavapipe), so the wgpu kernel path
#     is exercised on machines without a GPU.
#   - pkg-config: some -sys crates probe for system libraries with it.
# Then, as the invoking user, the real model and the reference implementation's Python environment:
#   - scripts/fetch-model.sh: SmolLM2-135M-Instruct (GGUF Q4_1) into ~/.cache/tensorproof/models/
#   - scripts/reference-venv.sh: numpy and gguf for scripts/reference_llama.py (tests/real_model.rs)
# Both need python3 with pip and venv (python3-pip, python3-venv are installed when python3 lacks them).
# Safe to run again: it installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
pkgs=(mesa-vulkan-drivers libvulkan1 pkg-config)
# python3 with working pip and venv (a python3 outside apt, e.g. pyenv, already has both).
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  pkgs+=(python3 python3-pip)
fi
if ! command -v python3 >/dev/null || ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  pkgs+=(python3-venv)
fi
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: no system packages to install"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The model and the venv belong to the user who runs the tests, not to root under sudo.
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  sudo -u "$SUDO_USER" -H "$here/fetch-model.sh"
  sudo -u "$SUDO_USER" -H "$here/reference-venv.sh"
else
  "$here/fetch-model.sh"
  "$here/reference-venv.sh"
fi
