#!/usr/bin/env python3
"""Fails when a crate declares a dependency its code never names (the check cargo-machete
makes): every [dependencies], [dev-dependencies] and [build-dependencies] entry of every
workspace member must appear as `name::`, `use name` or `name!` in the sources that can use
it. A dependency kept on purpose without being named says so with `# used-without-naming`
on its line."""
import pathlib
import re
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
failures = []
for member in members:
    crate = root / member
    manifest_text = (crate / "Cargo.toml").read_text()
    manifest = tomllib.loads(manifest_text)
    sources = {"dependencies": [], "dev-dependencies": [], "build-dependencies": []}
    lib_files = [p for p in (crate / "src").rglob("*.rs")] if (crate / "src").exists() else []
    test_files = [crate / t["path"] for t in manifest.get("test", []) if "path" in t]
    test_files += [p for d in ("tests", "benches", "examples") for p in (crate / d).rglob("*.rs")]
    # Test support modules the test files include.
    for t in list(test_files):
        support = t.parent / "support"
        if support.exists():
            test_files += list(support.rglob("*.rs"))
    build = [crate / "build.rs"] if (crate / "build.rs").exists() else []
    sources["dependencies"] = lib_files + build
    sources["dev-dependencies"] = lib_files + test_files
    sources["build-dependencies"] = build
    for section, files in sources.items():
        text = "\n".join(f.read_text() for f in set(files) if f.exists())
        for name, spec in manifest.get(section, {}).items():
            if isinstance(spec, dict) and "package" in spec:
                ident = name
            else:
                ident = name
            ident = ident.replace("-", "_")
            line = next((l for l in manifest_text.splitlines() if l.strip().startswith(name)), "")
            if "used-without-naming" in line:
                continue
            if not re.search(rf"\b{re.escape(ident)}(::|!|\s*;|\s+as\b)|use\s+{re.escape(ident)}\b", text):
                failures.append(f"{member}: [{section}] {name} is never named in its code")
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"unused dependencies: none in {len(members)} crates")
