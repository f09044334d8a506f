#!/usr/bin/env bash
# Installs the system packages the tests need, if they are missing (Debian/Ubuntu; root or sudo).
#   - mesa-vulkan-drivers + libvulkan1: Mesa's software Vulkan driver (lavapipe), so the wgpu kernel path
#     is exercised on machines without a GPU.
#   - pkg-config: some -sys crates probe for system libraries with it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
need=()
for pkg in mesa-vulkan-drivers libvulkan1 pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: nothing to install"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
