"""How much code a Python file holds, counted so that its messages do not count.

    python benchmarks/code_size.py a3c_core/checks.py
    python benchmarks/code_size.py e591a9a:a3c_core/checks.py HEAD:a3c_core/checks.py   # as committed

For each file (a path, or ``REVISION:path`` read from git), one row:

- statements: the statements of its syntax tree (logical lines: an ``if`` with its body counts each);
- if: its ``if`` statements, the hand-written branches;
- code tokens: its Python tokens outside string literals, plus the tokens of string literals that are
  Python expressions themselves (code kept in strings and evaluated, such as a rule's test);
- message strings: the other string literals (the sentences a user reads) and docstrings, in literals;
- lines: all of them.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

#: Tokens that carry no code: layout, comments and the end; and the ends of an f-string (Python 3.12+).
FSTRING_START, FSTRING_END = (getattr(tokenize, name, -1) for name in ("FSTRING_START", "FSTRING_END"))
LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER, tokenize.COMMENT}


def expression_tokens(text: str) -> int | None:
    """The number of tokens of ``text`` if it is a Python expression (more than one name), else None."""
    if not isinstance(text, str) or text.isidentifier():
        return None
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    return sum(tok.type not in LAYOUT for tok in tokenize.generate_tokens(io.StringIO(text).readline))


def measure(source: str) -> dict[str, int]:
    """The counts of the module docstring's list for one file's ``source``."""
    tree = ast.parse(source)
    counts = {"statements": sum(isinstance(node, ast.stmt) for node in ast.walk(tree)),
              "if": sum(isinstance(node, ast.If) for node in ast.walk(tree)),
              "code tokens": 0, "message strings": 0, "lines": len(source.splitlines())}
    in_fstring = 0  # Python 3.12+ splits an f-string into tokens: it counts as one string, as before 3.12
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == FSTRING_START:
            in_fstring += 1
        elif tok.type == FSTRING_END:
            in_fstring -= 1
            counts["message strings"] += in_fstring == 0
        elif tok.type in LAYOUT or in_fstring:
            continue
        elif tok.type != tokenize.STRING:
            counts["code tokens"] += 1
        else:
            try:
                inner = expression_tokens(ast.literal_eval(tok.string))
            except ValueError:  # an f-string, before Python 3.12
                inner = None
            counts["code tokens" if inner else "message strings"] += inner or 1
    return counts


def read(spec: str) -> str:
    """The text of a path, or of ``REVISION:path`` as git has it."""
    if Path(spec).is_file():
        return Path(spec).read_text()
    shown = subprocess.run(["git", "show", spec], capture_output=True, text=True) if ":" in spec else None
    if shown is None or shown.returncode:
        raise FileNotFoundError(f"{spec} is neither a file nor a REVISION:path that git knows")
    return shown.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a path, or REVISION:path (e.g. HEAD:a3c_core/checks.py)")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.files:
        try:
            rows.append((spec, measure(read(spec))))
        except FileNotFoundError as error:
            print(f"code_size: {error}", file=sys.stderr)
            return 2
        except (SyntaxError, ValueError, tokenize.TokenError) as error:
            print(f"code_size: {spec} is not Python that parses ({error})", file=sys.stderr)
            return 2
    names = list(rows[0][1])
    print("| file | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for spec, counts in rows:
        print(f"| {spec} | " + " | ".join(f"{counts[name]:,}" for name in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
