#!/usr/bin/env bash
# The whole product on real releases: six ICE FY2025 detention-statistics workbooks,
# committed in publication order into a throwaway archive, then inspected.
# Offline; uses only files in this repository. Output archive: demo/out/archive.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$PWD/tests/data/ice-fy25"
OUT="$PWD/demo/out"
rm -rf "$OUT" && mkdir -p "$OUT"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-atdarchive demo}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@localhost}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
A="atdarchive -C $OUT/archive"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Create an archive" atdarchive init "$OUT/archive"
step "Declare the dataset" $A dataset add ice-detention-stats \
  --title "ICE Detention Statistics FY2025" --agency "U.S. Immigration and Customs Enforcement" \
  --source-url "https://www.ice.gov/detain/detention-management"

for f in "$DATA"/v0*.xlsx; do
  name=$(basename "$f"); day=$(echo "$name" | cut -d_ -f2)
  step "Commit the release captured $day" $A commit ice-detention-stats "$f" \
    --published "$day" --archivist "demo" \
    --source-url "https://www.ice.gov/doclib/detention/FY25_detentionStats.xlsx"
done

step "History, newest first" $A log ice-detention-stats --oneline
step "One release in full" $A log ice-detention-stats -n 1
step "What was extracted from the latest release" $A tables ice-detention-stats@latest
step "Tag the release a paper used" $A tag ice-detention-stats@2025-08-20 paper-draft
step "Export a table from that tag" $A export ice-detention-stats@paper-draft \
  --table detention__ice_initial_book_ins_by_arresting_agency_and_month -o "$OUT/book_ins.csv"
head -5 "$OUT/book_ins.csv"
# --- Remotes, pinning and citation (a local-directory remote: no network) ---
step "Add a shared data remote (config committed, no credentials)" $A remote add shared "$OUT/remote-store" --default
step "Push every snapshot's data to it" $A push ice-detention-stats
step "A second machine: clone the ledger, pull one snapshot (hash-checked)" \
  atdarchive clone "$OUT/archive" "$OUT/clone" --pull ice-detention-stats@latest
step "Pin the snapshot a paper used" $A pin ice-detention-stats@paper-draft --lock "$OUT/atdarchive.lock"
step "Load exactly the pinned bytes (every file re-hashed)" python -c "import atdarchive; s = atdarchive.load('ice-detention-stats', lock='$OUT/atdarchive.lock'); print(s.ref, s.published, len(s.table_names), 'tables')"
step "Cite it" $A cite ice-detention-stats@paper-draft --format bibtex
# blame: which release gave each number its value (row view, then one cell)
$A blame ice-detention-stats@latest --table detention__ice_initial_book_ins_by_arresting_agency_and_month
$A blame ice-detention-stats@latest --table detention__ice_initial_book_ins_by_arresting_agency_and_month --row Agency=Total --column Nov --cells
# history: the November total in every release (21129 -> 21128 -> 21127 -> 21123)
$A history ice-detention-stats --table detention__ice_initial_book_ins_by_arresting_agency_and_month --row Agency=Total --column Nov
