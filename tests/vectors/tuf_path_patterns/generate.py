#!/usr/bin/env python3
"""Writes cases.json: delegation path patterns with the answer python-tuf gives.

The matcher is a verbatim copy of python-tuf's DelegatedRole._is_target_in_pathpattern
(tuf/api/metadata.py): split both strings on "/", require the same number of parts, then
fnmatch.fnmatch each part. Run on POSIX (fnmatch is then case-sensitive):

    python3 tests/vectors/tuf_path_patterns/generate.py > tests/vectors/tuf_path_patterns/cases.json

The output is deterministic for a given Python version (fixed random seed); the file records it.
"""
import fnmatch
import json
import random
import sys


def is_target_in_pathpattern(targetpath: str, pathpattern: str) -> bool:
    target_parts = targetpath.split("/")
    pattern_parts = pathpattern.split("/")
    if len(target_parts) != len(pattern_parts):
        return False
    for target_dir, pattern_dir in zip(target_parts, pattern_parts):
        if not fnmatch.fnmatch(target_dir, pattern_dir):
            return False
    return True


# (pattern, [targets]): chosen to pin down every rule the C++ matcher implements.
HAND = [
    # plain, '*' and '?', and '*' never crossing a '/' (python-tuf's segment split)
    ("foo.tgz", ["foo.tgz", "foo.tgZ", "foo.tgz/", "xfoo.tgz"]),
    ("*", ["", "a", "a/b", ".hidden", "/", "a*b"]),
    ("*.tgz", ["foo.tgz", ".tgz", "targets/foo.tgz", "/foo.tgz", "foo.tgz.sig"]),
    ("targets/*.tgz", ["targets/foo.tgz", "targets/a/foo.tgz", "targets/.tgz", "x/foo.tgz"]),
    ("*/*", ["a/b", "a/", "/b", "/", "a/b/c", "ab"]),
    ("*/bar", ["foo//bar", "foo/bar", "/bar"]),
    ("a/*/c", ["a/b/c", "a//c", "a/b/d/c", "a/b/c/"]),
    ("**", ["", "abc", "a/b"]),
    ("a*b*c", ["abc", "aXbYc", "abbc", "acb", "a/b/c", "abcc", "abcd"]),
    ("*a*a*a*", ["aaa", "aa", "baaab", "ababa"]),
    ("foo-version-?.tgz", ["foo-version-a.tgz", "foo-version-alpha.tgz", "foo-version-.tgz"]),
    ("f?o/bar", ["foo/bar", "fo/bar", "f/o/bar"]),
    ("?", ["", "a", "é", "/", "ab", "\n"]),
    ("??", ["é", "éé", "ab"]),
    # empty segments
    ("", ["", "a", "/"]),
    ("/", ["/", "", "a/", "/a"]),
    ("a/", ["a/", "a", "a/b"]),
    ("/a", ["/a", "a"]),
    ("a//b", ["a//b", "a/b", "a/x/b"]),
    ("a/*/", ["a//", "a/b/", "a/b"]),
    # brackets: sets, negation, '^' as a member, unclosed '['
    ("[", ["[", "", "a"]),
    ("[[]", ["[", "]"]),
    ("[]", ["[]", "]", "", "["]),
    ("[]]", ["]", "]]", "[]]"]),
    ("[]a]", ["]", "a", "b", "]a]"]),
    ("[!]", ["[!]", "!", "a", ""]),
    ("[!]]", ["]", "a", "!"]),
    ("[!]a]", ["]", "a", "b", "!"]),
    ("[!a]", ["a", "b", "!", "^", "é"]),
    ("[!a-c]", ["a", "b", "c", "d", "-", "!"]),
    ("[^a]", ["^", "a", "b"]),
    ("[^]", ["^", "[^]", "]"]),
    ("[!^]", ["^", "a"]),
    ("[a^]", ["^", "a", "b"]),
    ("[a-]", ["a", "-", "b"]),
    ("[-a]", ["a", "-", "b"]),
    ("[!-a]", ["a", "-", "b"]),
    ("[a-c]", ["a", "b", "c", "d", "-"]),
    ("[c-a]", ["a", "b", "c", "-", ""]),
    ("[!c-a]", ["a", "b", "-", "/x", ""]),
    ("[c-ab]", ["a", "b", "c"]),
    ("[a-c-e]", ["a", "b", "-", "d", "e"]),
    ("[--/]", ["-", ".", "/", "0"]),
    ("[a--]", ["a", "-", "b"]),
    ("[]-a]", ["]", "^", "_", "a", "b", "["]),
    ("[a-cx-z]", ["b", "y", "m"]),
    ("[z-ab-d]", ["a", "c", "z"]),
    ("a[bc]d", ["abd", "acd", "ad", "abcd"]),
    ("a[b", ["a[b", "ab"]),
    ("a[b/c]", ["a[b/c]", "ab/c]", "ab"]),
    ("a]", ["a]", "a"]),
    ("[[:alpha:]]", ["a]", "a", ":]", "[]", "x]"]),
    ("[a[b]", ["a", "[", "b", "]"]),
    ("[*]", ["*", "a"]),
    ("[?]", ["?", "a"]),
    ("*[", ["a[", "["]),
    ("[*", ["[x", "[", "a"]),
    ("[é-ë]", ["é", "ê", "ë", "e", "ì"]),
    # backslashes are plain characters (no escapes)
    ("a\\b", ["a\\b", "ab"]),
    ("\\*", ["\\x", "*", "\\*", "\\"]),
    ("[\\]", ["\\", "]", "[\\]"]),
    ("[\\]]", ["\\]", "]"]),
    ("[\\-a]", ["\\", "]", "a", "-"]),
    ("\\[a]", ["\\a", "[a]", "\\[a]"]),
    # regular-expression characters are literals
    (".", [".", "a"]),
    ("a+", ["a+", "aa"]),
    ("(a|b)", ["(a|b)", "a"]),
    ("[&&a]", ["&", "a"]),
    ("[~~a]", ["~", "a"]),
    ("[||a]", ["|", "a"]),
    ("$^", ["$^", ""]),
    ("{a,b}", ["{a,b}", "a"]),
    # NUL and newlines are ordinary characters
    ("a\0*", ["a\0b", "a"]),
    ("*", ["a\nb"]),
    ("a?b", ["a\nb"]),
]

ALPHABET = ["a", "b", "c", "z", "-", "!", "^", "]", "[", "*", "?", "\\", "/", "é"]
TARGET_ALPHABET = ["a", "b", "c", "z", "-", "!", "^", "]", "[", "*", "?", "\\", "/", "é", "y"]


def main() -> None:
    rng = random.Random(20261204)
    cases = []
    for pattern, targets in HAND:
        for target in targets:
            cases.append((pattern, target))
    for _ in range(1000):
        pattern = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 7)))
        target = "".join(rng.choice(TARGET_ALPHABET) for _ in range(rng.randint(0, 5)))
        cases.append((pattern, target))
        # Also a target built from the pattern's characters, so that matches are frequent.
        target2 = "".join(c for c in pattern if c not in "*?[]!") or "a"
        cases.append((pattern, target2))
    out = {
        "generator": "tests/vectors/tuf_path_patterns/generate.py",
        "python": sys.version.split()[0],
    }
    # One case per line, so that a diff shows which answers changed.
    seen = set()
    lines = []
    for p, t in cases:
        if (p, t) in seen:
            continue
        seen.add((p, t))
        case = {"pattern": p, "target": t, "match": is_target_in_pathpattern(t, p)}
        lines.append(json.dumps(case, ensure_ascii=True))
    sys.stdout.write('{"generator": %s, "python": %s, "cases": [\n' % (
        json.dumps(out["generator"]), json.dumps(out["python"])))
    sys.stdout.write(",\n".join(lines))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
