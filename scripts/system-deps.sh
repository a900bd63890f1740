#!/usr/bin/env bash
# Debian packages r1agent needs outside Python: Tesseract OCR (English + Simplified Chinese) for images,
# a CJK font, and espeak-ng + sox, which the tests use to make real speech and audio files; PostgreSQL
# (the server's checkpointer, tested for real) and Chromium + chromedriver (the handoff console's browser test).
# As root (CI, containers) they are installed; otherwise the missing ones are named, and what needs
# them reports a clear error at run time (tests skip with that reason outside CI).
set -euo pipefail
packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim fonts-wqy-zenhei espeak-ng sox
  postgresql chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: missing system packages for images/voice: ${missing[*]}" >&2
  echo "      install them with: sudo apt-get install ${missing[*]}" >&2
fi
