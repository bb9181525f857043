"""`python -m atdarchive.limits`: README's bounds table, from the registry itself."""

from atdarchive.limits import human, table


def markdown() -> str:
    rows = ["| bound | default | what it bounds | raise or lower it |", "|---|---|---|---|"]
    rows += [f"| `{b.name}` | {human(b.default, b.unit)} | {b.what} | `{b.env}` |"
             for b in table()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
