#!/usr/bin/env bash
# (Re)build the repository's own archive: datasets/ice-detention-stats holds the six
# FY2025 releases as snapshots (ledger and .dvc pointers in git), and their data sits in
# the bundled DVC remote datasets/.remote (also in git), so that a fresh clone can
# `atdarchive pull` offline and `atdarchive verify` passes. Run from a clean work tree;
# it makes one git commit per step, like any archive.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -z "$(git status --porcelain -- datasets .dvc)" ] || { echo "datasets/ or .dvc/ has uncommitted changes" >&2; exit 1; }
DS=ice-detention-stats
if [ -d "datasets/$DS" ] || [ -d datasets/.remote ]; then
  git rm -rq --ignore-unmatch "datasets/$DS" datasets/.remote
  rm -rf "datasets/$DS" datasets/.remote .dvc/cache .atdarchive
  git commit -qm "datasets: drop $DS to rebuild it" || true
fi
atdarchive init .
# DVC walks the tree to find .dvc files: keep it out of the venv, caches and fixtures
if ! grep -q '^/.venv/' .dvcignore; then
  printf '/.venv/\n/demo/out/\n/bench/.cache/\n/tests/\n/atdarchive/\n' >> .dvcignore
  git add .dvcignore && git commit -qm "datasets: keep DVC out of code, venv and caches"
fi
if ! grep -q 'remote "bundled"' .dvc/config; then
  # relative to .dvc/, so every clone uses its own copy of the bundled remote
  python - <<'PY'
from pathlib import Path
cfg = Path(".dvc/config")
text = cfg.read_text()
text = text.replace("[core]\n", "[core]\n    remote = bundled\n", 1)
text += "['remote \"bundled\"']\n    url = ../datasets/.remote\n"
cfg.write_text(text)
PY
  git add .dvc/config && git commit -qm "datasets: bundled DVC remote in datasets/.remote"
fi
atdarchive dataset add $DS --title "ICE Detention Statistics FY2025" \
  --agency "U.S. Immigration and Customs Enforcement" \
  --source-url "https://www.ice.gov/detain/detention-management" \
  --description "Six successive releases of ICE's FY2025 detention-statistics workbook, as captured from ice.gov (public domain)." \
  --key "facilities__ice_enforcement_and_removal_operations_data=Name,City,State"
for f in tests/data/ice-fy25/v0*.xlsx; do
  day=$(basename "$f" | cut -d_ -f2)
  atdarchive commit $DS "$f" --published "$day" --retrieved-at "$day" --archivist "atdarchive maintainers" \
    --source-url "https://www.ice.gov/detain/detention-management" -m "captured from ice.gov on $day"
done
atdarchive push $DS --remote bundled
git add -f datasets/.remote
git commit -qm "datasets: $DS data in the bundled remote"
atdarchive verify $DS
