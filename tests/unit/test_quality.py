"""The code-quality checks: placeholders, gutted bodies and broken syntax, on real git diffs.

Each row commits `old` in a fresh repository, writes `new`, takes `git diff` and checks it.
`expected` lists (kind, needle): the violation's line is the first line of `new` containing
the needle (None: any line). Rows must produce exactly the expected violations, so every row
is also a false-positive guard.
"""

from __future__ import annotations

import difflib
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from agenthq.gates.diffs import FileChange, parse_diff, workspace_diff
from agenthq.gates.quality import Violation, check_changes, language_for
from agenthq.gates.quality_gate import workspace_reader

Expected = list[tuple[str, str | None]]
Row = tuple[str, str | None, str | None, Expected]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        check=True,
    )


def run_check(root: Path, files: dict[str, tuple[str | None, str | None]]) -> list[Violation]:
    """Commit each file's old text, write its new text (None: absent), check the git diff."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    for name, (old, _) in files.items():
        if old is not None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(old)
    git(root, "add", "-A")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "base")
    for name, (_, new) in files.items():
        if new is None:
            (root / name).unlink()
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(new)
    diff = workspace_diff(root)
    assert diff is not None
    return check_changes(parse_diff(diff), read_file=workspace_reader(root))


def assert_found(found: list[Violation], new: str, expected: Expected) -> None:
    lines = new.splitlines()
    got = sorted((v.kind, v.line) for v in found)
    want_kinds = sorted(kind for kind, _ in expected)
    assert sorted(v.kind for v in found) == want_kinds, found
    for kind, needle in expected:
        if needle is not None:
            line = next(i for i, text in enumerate(lines, 1) if needle in text)
            assert (kind, line) in got, (kind, needle, found)


def d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --- old versions of files, real code in each language ------------------------------------------

PY = d('''
    import os


    class Store:
        """Keeps things."""

        def __init__(self, root):
            self.root = root
            self.items = {}

        def load(self, key):
            path = os.path.join(self.root, key)
            with open(path) as handle:
                data = handle.read()
            self.items[key] = data
            return data

        def save(self, key, data):
            path = os.path.join(self.root, key)
            with open(path, "w") as handle:
                handle.write(data)
''')

JS = d("""
    export function total(items) {
      let sum = 0;
      for (const item of items) {
        sum += item.price * item.count;
      }
      return sum;
    }

    export function label(item) {
      const name = item.name.trim();
      return `${name} (${item.count})`;
    }
""")

TS = d("""
    export class Cart {
      private items: Item[] = [];

      add(item: Item): void {
        this.items.push(item);
        this.changed = true;
      }

      total(): number {
        return this.items.reduce((sum, i) => sum + i.price, 0);
      }
    }
""")

GO = (
    "package cart\n"
    "\n"
    'import "strings"\n'
    "\n"
    "func Total(items []Item) int {\n"
    "\tsum := 0\n"
    "\tfor _, it := range items {\n"
    "\t\tsum += it.Price\n"
    "\t}\n"
    "\treturn sum\n"
    "}\n"
    "\n"
    "func Label(name string) string {\n"
    "\treturn strings.TrimSpace(name)\n"
    "}\n"
)

RS = d("""
    pub struct Cart {
        items: Vec<u32>,
    }

    impl Cart {
        pub fn total(&self) -> u32 {
            let mut sum = 0;
            for item in &self.items {
                sum += item;
            }
            sum
        }

        pub fn len(&self) -> usize {
            self.items.len()
        }
    }
""")

JAVA = d("""
    public class Cart {
        private int count;

        public int total(int price) {
            int sum = price * count;
            return sum;
        }

        public void add() {
            count += 1;
        }
    }
""")

C = d("""
    #include <stdio.h>

    int total(int *items, int n) {
        int sum = 0;
        for (int i = 0; i < n; i++) {
            sum += items[i];
        }
        return sum;
    }

    void show(int n) {
        printf("%d\\n", n);
    }
""")

CPP = d("""
    #include <vector>

    namespace shop {
    int Cart::total() const {
        int sum = 0;
        for (int v : items_) {
            sum += v;
        }
        return sum;
    }
    }
""")

RB = d("""
    class Cart
      def initialize
        @items = []
      end

      def total
        sum = 0
        @items.each { |i| sum += i.price }
        sum
      end

      def add(item)
        @items << item
      end
    end
""")

HTML = d("""
    <html>
      <body>
        <header><h1>Shop</h1></header>
        <main>
          <ul id="items"></ul>
          <p class="total">0</p>
        </main>
      </body>
    </html>
""")


def sub(text: str, old: str, new: str) -> str:
    """`text` with `old` (which must occur) replaced by `new`."""
    assert old in text, old
    return text.replace(old, new, 1)


PY_LOAD_BODY = """\
        path = os.path.join(self.root, key)
        with open(path) as handle:
            data = handle.read()
        self.items[key] = data
        return data
"""
PY_SAVE = """\
    def save(self, key, data):
        path = os.path.join(self.root, key)
        with open(path, "w") as handle:
            handle.write(data)
"""
JS_TOTAL_BODY = """\
  let sum = 0;
  for (const item of items) {
    sum += item.price * item.count;
  }
  return sum;
"""
JS_LABEL = """\
export function label(item) {
  const name = item.name.trim();
  return `${name} (${item.count})`;
}
"""
GO_TOTAL_BODY = "\tsum := 0\n\tfor _, it := range items {\n\t\tsum += it.Price\n\t}\n\treturn sum\n"
RS_TOTAL_BODY = """\
        let mut sum = 0;
        for item in &self.items {
            sum += item;
        }
        sum
"""
RB_TOTAL_BODY = """\
    sum = 0
    @items.each { |i| sum += i.price }
    sum
"""
C_TOTAL_BODY = """\
    int sum = 0;
    for (int i = 0; i < n; i++) {
        sum += items[i];
    }
    return sum;
"""

PLACEHOLDERS: list[Row] = [
    # Python: the classic elision of methods
    ("m.py", PY, sub(PY, PY_SAVE, "    # ... existing code ...\n"), [("placeholder", "# ...")]),
    # Python: "keep the rest as before", in brackets
    ("m.py", PY, sub(PY, PY_SAVE, "    # (keep the rest as before)\n"), [("placeholder", "keep")]),
    # Python: "rest of implementation here" replacing a body's tail
    (
        "m.py",
        PY,
        sub(PY, PY_LOAD_BODY, "        path = self.root\n        # rest of implementation here\n"),
        [("placeholder", "rest of")],
    ),
    # Python: a bare "... existing methods ..." line is both a placeholder and broken syntax
    (
        "m.py",
        PY,
        sub(PY, PY_SAVE, "    ... existing methods ...\n"),
        [("placeholder", "existing methods"), ("syntax", "existing methods")],
    ),
    # Python: "your code here" in a new file
    ("new.py", None, "def solve(x):\n    # your code here\n    return x\n", [("placeholder", "#")]),
    # Python: a generic TODO in a new function
    (
        "new.py",
        None,
        "def solve(x):\n    # TODO: implement\n    return x\n",
        [("placeholder", "#")],
    ),
    # Python: a TODO that stands in for the code it replaced (block removed code, added none)
    (
        "m.py",
        PY,
        sub(PY, PY_LOAD_BODY, "        # TODO: load from disk\n        return None\n"),
        [("placeholder", "TODO")],
    ),
    # JavaScript: "// ... rest of the code" where a function was
    ("a.js", JS, sub(JS, JS_LABEL, "// ... rest of the code\n"), [("placeholder", "//")]),
    # JavaScript: "/* ... (unchanged) */"
    ("a.mjs", JS, sub(JS, JS_LABEL, "/* ... (unchanged) */\n"), [("placeholder", "/*")]),
    # JavaScript: "rest of implementation here"
    (
        "a.cjs",
        JS,
        sub(JS, JS_TOTAL_BODY, "  let sum = 0;\n  // rest of implementation here\n  return sum;\n"),
        [("placeholder", "rest of")],
    ),
    # JavaScript: a lone "..." line cannot be code; the grammar agrees it is broken
    (
        "a.js",
        JS,
        sub(JS, JS_TOTAL_BODY, "  let sum = 0;\n  ...\n  return sum;\n"),
        [("placeholder", "..."), ("syntax", None)],
    ),
    # JSX: a JSX comment eliding markup
    (
        "v.jsx",
        "export const V = () => (\n  <div>\n    <h1>Hi</h1>\n    <p>Text</p>\n  </div>\n);\n",
        "export const V = () => (\n  <div>\n    <h1>Hi</h1>\n    {/* ... */}\n  </div>\n);\n",
        [("placeholder", "{/*")],
    ),
    # TypeScript: elided methods inside a class
    (
        "c.ts",
        TS,
        sub(TS, TS[TS.index("  total()") : TS.rindex("  }\n") + 4], "  // ... other methods ...\n"),
        [("placeholder", "other methods")],
    ),
    # TSX: "existing code unchanged"
    (
        "c.tsx",
        TS,
        sub(TS, "  add(", "  // existing code unchanged\n  add("),
        [("placeholder", "//")],
    ),
    # Go: "// ... existing code ..."
    (
        "c.go",
        GO,
        sub(GO, GO_TOTAL_BODY, "\tsum := 0\n\t// ... existing code ...\n\treturn sum\n"),
        [("placeholder", "// ...")],
    ),
    # Rust: "// ... rest of the impl" where a method was
    (
        "c.rs",
        RS,
        sub(
            RS,
            "    pub fn len(&self) -> usize {\n        self.items.len()\n    }\n",
            "    // ... rest of the impl\n",
        ),
        [("placeholder", "rest of")],
    ),
    # Rust: a block comment "/* same as before */"
    (
        "c.rs",
        RS,
        sub(
            RS,
            RS_TOTAL_BODY,
            "        let mut sum = 0;\n        /* same as before */\n        sum\n",
        ),
        [("placeholder", "same as before")],
    ),
    # Java: "// ... other methods ..."
    (
        "C.java",
        JAVA,
        sub(
            JAVA,
            "    public void add() {\n        count += 1;\n    }\n",
            "    // ... other methods ...\n",
        ),
        [("placeholder", "other methods")],
    ),
    # Java: Javadoc-style continuation line "* ... existing fields ..."
    (
        "C.java",
        JAVA,
        sub(JAVA, "    private int count;\n", "    /*\n     * ... existing fields ...\n     */\n"),
        [("placeholder", "existing fields")],
    ),
    # C: "/* ... rest of the code ... */"
    (
        "c.c",
        C,
        sub(
            C,
            C_TOTAL_BODY,
            "    int sum = 0;\n    /* ... rest of the code ... */\n    return sum;\n",
        ),
        [("placeholder", "/*")],
    ),
    # C header: "// snip"
    ("c.h", "int f(void);\nint g(void);\n", "int f(void);\n// <snip>\n", [("placeholder", "snip")]),
    # C++: "// ... (unchanged)"
    (
        "c.cpp",
        CPP,
        sub(
            CPP,
            "    for (int v : items_) {\n        sum += v;\n    }\n",
            "    // ... (unchanged)\n",
        ),
        [("placeholder", "unchanged")],
    ),
    # Ruby: "# ... existing methods ..."
    (
        "c.rb",
        RB,
        sub(RB, "  def add(item)\n    @items << item\n  end\n", "  # ... existing methods ...\n"),
        [("placeholder", "existing methods")],
    ),
    # Ruby: "# (keep the rest as before)"
    (
        "c.rb",
        RB,
        sub(RB, RB_TOTAL_BODY, "    sum = 0\n    # (keep the rest as before)\n    sum\n"),
        [("placeholder", "keep")],
    ),
    # HTML: "<!-- ... -->" where markup was
    (
        "p.html",
        HTML,
        sub(HTML, '      <ul id="items"></ul>\n', "      <!-- ... -->\n"),
        [("placeholder", "<!--")],
    ),
    # HTML: "<!-- rest of the page unchanged -->"
    (
        "p.htm",
        HTML,
        sub(HTML, "    <main>", "    <!-- rest of the page unchanged -->\n    <main>"),
        [("placeholder", "<!--")],
    ),
    # Vue (no grammar): both the template's HTML comment and the script's // comment count
    (
        "c.vue",
        "<template>\n  <div/>\n</template>\n",
        "<template>\n  <!-- existing markup here -->\n</template>\n<script>\n// ... rest of the script\n</script>\n",
        [("placeholder", "<!--"), ("placeholder", "// ...")],
    ),
    # Markdown: only HTML comments count in prose
    (
        "README.md",
        "# Title\n\nText.\n",
        "# Title\n\n<!-- ... rest of the docs -->\n",
        [("placeholder", "<!--")],
    ),
    # Shell (no grammar): the line-comment fallback
    (
        "run.sh",
        "set -e\nmake all\n",
        "set -e\n# ... rest of the script unchanged\n",
        [("placeholder", "#")],
    ),
    # weak: a lone "// ..." counts where it replaced a function's code
    ("a.js", JS, sub(JS, JS_TOTAL_BODY, "  // ...\n  return 0;\n"), [("placeholder", "// ...")]),
    # weak: a bare "# TODO" counts where it replaced code
    (
        "m.py",
        PY,
        sub(PY, PY_LOAD_BODY, "        # TODO\n        return self.items[key]\n"),
        [("placeholder", "TODO")],
    ),
    # weak: "/* unchanged */" counts where it replaced code
    (
        "c.c",
        C,
        sub(C, C_TOTAL_BODY, "    /* unchanged */\n    return 0;\n"),
        [("placeholder", "unchanged")],
    ),
    # Unicode ellipsis and "for brevity"
    (
        "m.py",
        PY,
        sub(PY, PY_SAVE, "    # … other methods omitted for brevity\n"),
        [("placeholder", "#")],
    ),
]

STUBS: list[Row] = [
    # Python: a real body replaced by `pass`
    ("m.py", PY, sub(PY, PY_LOAD_BODY, "        pass\n"), [("stub", "pass")]),
    # Python: a real body replaced by `...`
    ("m.py", PY, sub(PY, PY_LOAD_BODY, "        ...\n"), [("stub", "        ...")]),
    # Python: a real body replaced by `raise NotImplementedError`
    (
        "m.py",
        PY,
        sub(PY, PY_LOAD_BODY, '        raise NotImplementedError("later")\n'),
        [("stub", "raise")],
    ),
    # Python: a real body replaced by a docstring alone
    ("m.py", PY, sub(PY, PY_LOAD_BODY, '        """Load a key."""\n'), [("stub", '"""Load')]),
    # JavaScript: throw new Error("not implemented")
    (
        "a.js",
        JS,
        sub(JS, JS_TOTAL_BODY, '  throw new Error("not implemented");\n'),
        [("stub", "throw")],
    ),
    # JavaScript: an emptied body
    ("a.js", JS, sub(JS, JS_TOTAL_BODY, ""), [("stub", "export function total")]),
    # TypeScript: a method thrown away for a TODO error
    (
        "c.ts",
        TS,
        sub(
            TS,
            "    this.items.push(item);\n    this.changed = true;\n",
            "    throw new Error('TODO');\n",
        ),
        [("stub", "throw")],
    ),
    # Go: panic("not implemented")
    ("c.go", GO, sub(GO, GO_TOTAL_BODY, '\tpanic("not implemented")\n'), [("stub", "panic")]),
    # Rust: todo!()
    ("c.rs", RS, sub(RS, RS_TOTAL_BODY, "        todo!()\n"), [("stub", "todo!")]),
    # Rust: unimplemented!("...")
    ("c.rs", RS, sub(RS, RS_TOTAL_BODY, '        unimplemented!("soon")\n'), [("stub", "unimpl")]),
    # Java: throw new UnsupportedOperationException()
    (
        "C.java",
        JAVA,
        sub(
            JAVA,
            "        int sum = price * count;\n        return sum;\n",
            "        throw new UnsupportedOperationException();\n",
        ),
        [("stub", "throw")],
    ),
    # C: an emptied function body
    ("c.c", C, sub(C, C_TOTAL_BODY, ""), [("stub", "int total")]),
    # Ruby: raise NotImplementedError
    ("c.rb", RB, sub(RB, RB_TOTAL_BODY, "    raise NotImplementedError\n"), [("stub", "raise")]),
]

SYNTAX: list[Row] = [
    # Python: an unclosed bracket
    (
        "m.py",
        PY,
        sub(PY, "        self.items = {}\n", "        self.items = {\n"),
        [("syntax", None)],
    ),
    # JavaScript: a lost closing brace
    (
        "a.js",
        JS,
        sub(JS, "    sum += item.price * item.count;\n  }\n", "    sum += item.price;\n"),
        [("syntax", None)],
    ),
    # TypeScript: a type annotation with no type
    ("c.ts", TS, sub(TS, "  add(item: Item)", "  add(item: )"), [("syntax", "add(item: )")]),
    # TSX: an unclosed JSX element
    (
        "v.tsx",
        "export const V = () => <div>hi</div>;\n",
        "export const V = () => <div>hi;\n",
        [("syntax", None)],
    ),
    # Go: a statement cut in half
    ("c.go", GO, sub(GO, "\treturn sum\n}", "\treturn sum +\n}"), [("syntax", None)]),
    # Rust: a missing semicolon between statements
    ("c.rs", RS, sub(RS, "let mut sum = 0;", "let mut sum = 0"), [("syntax", None)]),
    # Java: an unterminated method
    (
        "C.java",
        JAVA,
        sub(JAVA, "        count += 1;\n    }\n", "        count += 1;\n"),
        [("syntax", None)],
    ),
    # C: a broken for loop
    (
        "c.c",
        C,
        sub(C, "for (int i = 0; i < n; i++)", "for (int i = 0; i < n; i++"),
        [("syntax", None)],
    ),
    # C++: an unbalanced namespace
    ("c.cpp", CPP, CPP.removesuffix("}\n"), [("syntax", None)]),
    # C++ under .hpp / .cc / .cxx
    ("c.hpp", "struct A { int x; };\n", "struct A { int x; \n", [("syntax", None)]),
    # Ruby: a missing `end`
    (
        "c.rb",
        RB,
        sub(RB, "    @items << item\n  end\n", "    @items << item\n"),
        [("syntax", None)],
    ),
    # Python: an inconsistent dedent (tree-sitter would not mind; no Python accepts it)
    ("new.py", None, "def f():\n        x = 1\n    y = 2\n", [("syntax", "y = 2")]),
    # A new Python file that never parsed
    ("new.py", None, "def f(:\n    return 1\n", [("syntax", "def f(:")]),
]

GUARDS: list[Row] = [
    # A Protocol whose methods are `...`: legitimate Python
    (
        "proto.py",
        "from typing import Protocol\n",
        "from typing import Protocol\n\n\nclass Reader(Protocol):\n    def read(self, n: int) -> bytes: ...\n\n    def close(self) -> None:\n        ...\n",
        [],
    ),
    # A type stub file full of `...`
    (
        "api.pyi",
        None,
        "def load(key: str) -> bytes: ...\nclass A:\n    x: int\n    def f(self) -> None: ...\n",
        [],
    ),
    # A new abstract method raising NotImplementedError: nothing was removed
    (
        "m.py",
        PY,
        sub(PY, PY_SAVE, PY_SAVE + "\n    def close(self):\n        raise NotImplementedError\n"),
        [],
    ),
    # An existing method turned abstract on purpose (@abstractmethod) is not a gutted body
    (
        "m.py",
        "import abc\n\n\nclass A(abc.ABC):\n    def f(self):\n        x = 1\n        return x\n",
        "import abc\n\n\nclass A(abc.ABC):\n    @abc.abstractmethod\n    def f(self):\n        raise NotImplementedError\n",
        [],
    ),
    # A legitimate new `pass` in an `except`
    (
        "m.py",
        PY,
        sub(
            PY,
            "            data = handle.read()\n",
            "            try:\n                data = handle.read()\n            except UnicodeDecodeError:\n                pass\n",
        ),
        [],
    ),
    # A genuine TODO beside real new code
    (
        "m.py",
        PY,
        sub(
            PY,
            "        self.items[key] = data\n",
            "        # TODO: handle concurrent writers later\n        self.items[key] = data.strip()\n",
        ),
        [],
    ),
    # A TODO where code was rewritten, not removed
    (
        "m.py",
        PY,
        sub(
            PY,
            PY_LOAD_BODY,
            "        # TODO: cache this\n        return open(os.path.join(self.root, key)).read()\n",
        ),
        [],
    ),
    # Placeholder text inside Python strings (a test of this very gate)
    (
        "test_x.py",
        "X = 1\n",
        'X = 1\nCASES = [\n    "# ... existing code ...",\n    """\n// rest of the code\n...\n""",\n]\n',
        [],
    ),
    # Placeholder text inside a JS template literal and a Go raw string
    (
        "t.js",
        "const a = 1;\n",
        "const a = 1;\nconst doc = `\n// ... rest of the code\n...\n`;\n",
        [],
    ),
    ("t.go", "package t\n", "package t\n\nconst doc = `\n// ... existing code ...\n`\n", []),
    # A comment after code annotates that code
    (
        "m.py",
        PY,
        sub(PY, "        self.root = root\n", "        self.root = root  # rest unchanged\n"),
        [],
    ),
    # Section titles that merely look like elision words
    (
        "test_y.py",
        "X = 1\n",
        "X = 1\n\n# Other tests\n# Existing behaviour\n# The rest of this module tests parsing.\n",
        [],
    ),
    # Weak patterns in new code are documentation: an example in a comment block, a bare
    # TODO heading a multi-line note, "same as above" explaining the next line
    (
        "m.py",
        PY,
        sub(
            PY,
            PY_SAVE,
            PY_SAVE
            + "\n    # Subclasses look like:\n    #   def save(self, key, data):\n    #       ...\n    # TODO:\n    #   retry on EAGAIN.\n    def exists(self, key):\n        # Same as above.\n        return key in self.items\n",
        ),
        [],
    ),
    # Markdown shows elided code in examples: prose is not code
    ("docs.md", "# D\n", "# D\n\n```js\n// ... rest of the code\n...\n```\n", []),
    # A C variadic parameter on a line of its own
    ("v.c", "int f(void);\n", "int f(void);\nint logf(const char *fmt,\n         ...\n);\n", []),
    # A lone `...` in Python is Ellipsis, and a new function may be a stub
    ("new.py", None, "def later():\n    ...\n", []),
    # A new Rust function with todo!(): nothing was removed from it
    ("c.rs", RS, RS + "\nfn later() -> u32 {\n    todo!()\n}\n", []),
    # A new no-op JS callback
    ("a.js", JS, JS + "\nexport const noop = () => {};\n", []),
    # Deleting a whole function is not stubbing it
    ("m.py", PY, sub(PY, "\n" + PY_SAVE, ""), []),
    # A file that did not parse before is not blamed on this change
    ("old.py", "def f(:\n    return 1\n", "def f(:\n    return 2\n", []),
    # Unknown extensions are not parsed
    ("x.weird", "a b c\n", "a b c {{{\n", []),
    # Deleted files are not checked
    ("m.py", PY, None, []),
    # A real rewrite of a Go body
    ("c.go", GO, sub(GO, GO_TOTAL_BODY, "\treturn len(items)\n"), []),
    # Python 3.11 pattern matching and a walrus: real syntax
    ("n.py", None, "match x:\n    case [a, *_]:\n        pass\n\nif (n := 1):\n    print(n)\n", []),
    # Python 3.12 syntax that this interpreter's `ast` rejects but the language accepts
    (
        "new312.py",
        None,
        "def first[T](xs: list[T]) -> T:\n    return xs[0]\n\ntype Ids = list[int]\n",
        [],
    ),
    # Invalid escape sequences only warn (and warnings are errors in this test run)
    ("e.py", None, 'import re\nPAT = re.compile("\\d+")\n', []),
]


def _ids(rows: list[Row]) -> list[str]:
    return [f"{i}-{row[0]}" for i, row in enumerate(rows)]


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    PLACEHOLDERS + STUBS + SYNTAX + GUARDS,
    ids=_ids(PLACEHOLDERS + STUBS + SYNTAX + GUARDS),
)
def test_table(
    tmp_path: Path, path: str, old: str | None, new: str | None, expected: Expected
) -> None:
    found = run_check(tmp_path, {path: (old, new)})
    assert_found(found, new or "", expected)


# --- behaviour beyond one row -------------------------------------------------------------------


def test_violation_carries_file_line_kind_and_message(tmp_path: Path) -> None:
    found = run_check(tmp_path, {"pkg/m.py": (PY, sub(PY, PY_LOAD_BODY, "        pass\n"))})
    [violation] = found
    assert violation.file == "pkg/m.py"
    assert violation.kind == "stub"
    assert "Store.load" in violation.message
    assert "5 line(s)" in violation.message


def test_stub_matched_by_name_when_its_header_changed(tmp_path: Path) -> None:
    new = sub(
        PY,
        "    def load(self, key):\n" + PY_LOAD_BODY,
        "    def load(self, key, default=None):\n        pass\n",
    )
    [violation] = run_check(tmp_path, {"m.py": (PY, new)})
    assert violation.kind == "stub"


def test_many_files_sorted_by_file_and_line(tmp_path: Path) -> None:
    found = run_check(
        tmp_path,
        {
            "b.py": (PY, sub(PY, PY_SAVE, "    # ... existing code ...\n")),
            "a.rs": (RS, sub(RS, RS_TOTAL_BODY, "        todo!()\n")),
        },
    )
    assert [(v.file, v.kind) for v in found] == [("a.rs", "stub"), ("b.py", "placeholder")]


def test_unreadable_file_still_gets_comment_checks() -> None:
    """Without the text, placeholders are found from the diff's own lines."""
    change = FileChange("gone.py", "gone.py", added=((3, "    # ... existing code ..."),))
    [violation] = check_changes([change], read_file=lambda _: None)
    assert violation.kind == "placeholder"


def test_new_file_that_cannot_be_read_is_rebuilt_from_the_diff() -> None:
    change = FileChange("n.go", None, added=((1, "package n"), (2, "func (")), is_new=True)
    [violation] = check_changes([change], read_file=lambda _: None)
    assert violation.kind == "syntax"


def test_binary_files_are_skipped() -> None:
    change = FileChange("x.py", "x.py", added=((1, "# ..."),), is_binary=True)
    assert check_changes([change], read_file=lambda _: "def (") == []


def test_text_that_moved_on_since_the_diff(tmp_path: Path) -> None:
    """The file no longer matches the diff: no stub guesswork, no crash, syntax still checked."""
    change = FileChange("m.py", "m.py", added=((2, "    pass"),), removed=((2, "    return 1"),))
    assert check_changes([change], read_file=lambda _: "def f():\n    return 2\n") == []
    [broken] = check_changes([change], read_file=lambda _: "def f(:\n")
    assert broken.kind == "syntax"


def test_language_for_extensions() -> None:
    assert language_for("a/b.py") == "python"
    assert language_for("x.mjs") == "javascript"
    assert language_for("x.tsx") == "tsx"
    assert language_for("x.cxx") == "cpp"
    assert language_for("x.h") == "c"
    assert language_for("README") is None


# One function per language, repeated to make files; `{i}` numbers it, `{k}` is what an edit changes.
_TEMPLATES = {
    "py": "def f{i}(x):\n    y = x * {k}\n    return y + {i}\n\n\n",
    "js": "function f{i}(x) {{\n  const y = x * {k};\n  return y + {i};\n}}\n\n",
    "go": "func F{i}(x int) int {{\n\ty := x * {k}\n\treturn y + {i}\n}}\n\n",
    "rs": "fn f{i}(x: u32) -> u32 {{\n    let y = x * {k};\n    y + {i}\n}}\n\n",
    "java": "class C{i} {{\n  int f(int x) {{\n    int y = x * {k};\n    return y + {i};\n  }}\n}}\n",
}


def big_change(diff_lines: int) -> tuple[list[FileChange], dict[str, str]]:
    """Five files, one per language, whose edits make a unified diff of about `diff_lines`
    changed lines (each edit removes one line and adds one)."""
    texts: dict[str, str] = {}
    diff = ""
    per_file = diff_lines // 2 // len(_TEMPLATES)
    for ext, template in _TEMPLATES.items():
        head = "package p\n\n" if ext == "go" else ""
        old = head + "".join(template.format(i=i, k=2) for i in range(per_file))
        new = head + "".join(template.format(i=i, k=3) for i in range(per_file))
        path = f"big.{ext}"
        texts[path] = new
        diff += "".join(
            difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"
            )
        )
    return parse_diff(diff), texts


def test_a_500_line_change_is_checked_quickly() -> None:
    changes, texts = big_change(500)
    assert sum(len(c.added) + len(c.removed) for c in changes) == 500
    assert check_changes(changes, read_file=texts.get) == []  # also loads the grammars
    started = time.perf_counter()
    check_changes(changes, read_file=texts.get)
    assert time.perf_counter() - started < 1.0  # measured ≈ 0.03 s; generous for slow CI
