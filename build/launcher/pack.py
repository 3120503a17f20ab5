"""Make the single-file `hc` binary: build/launcher/launcher.c followed by a bundle.

    python build/launcher/pack.py ONEDIR LAUNCHER OUTPUT [--manifest build/spec/bundle.toml]

ONEDIR is PyInstaller's onedir build of build/spec/hc.spec (`hc` and `_internal/`). The bundle
is that tree plus the part of the build machine's glibc it needs (the loader, libc and the
libraries they pull in, found by asking the loader itself), so the file runs in an empty
`FROM scratch` image. The bootloader gets a long placeholder ELF interpreter, which the launcher
overwrites with the bundled loader's path when it unpacks, and RUNPATH `$ORIGIN/_internal`.

The build fails (exit 1, one line) when a native library in the bundle is not listed, with its
reason, in the manifest, when a listed one is gone, or when they grow past the manifest's budget:
every byte of the bundle is unpacked once per container and mapped by every probe.

Runs in the build venv (PyInstaller's archive reader); standard library otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader

LIBDIR = "_internal"
"""PyInstaller's contents directory; the bundled glibc goes there too (its LD_LIBRARY_PATH)."""
PROGRAM = "hc"
LOADER = "ld-linux-x86-64.so.2"
HOST_LOADER = "/lib64/ld-linux-x86-64.so.2"
EXTRA_LIBRARIES = ("libgcc_s.so.1",)
"""Loaded by glibc at run time, not linked: libgcc_s unwinds a thread that ends by pthread_exit
(CPython does so for daemon threads at shutdown); without it glibc aborts the process."""
INTERP_CAPACITY = 512
"""Bytes kept for the loader path the launcher writes: $TMPDIR/hc-<uid>-<id>/_internal/<loader>."""
TRAILER = struct.Struct("<QQQ32s8s")
MAGIC = b"hcbundle"
FORMAT = 1
ELF_MAGIC = b"\x7fELF"


class PackError(Exception):
    """The bundle cannot be made as asked; the message is one line."""


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def resolved_dependencies(loader: str, elf: Path, libdir: Path) -> dict[str, str]:
    """soname -> path the given loader would map for `elf`, searching `libdir` first."""
    listing = subprocess.run(
        [loader, "--inhibit-cache", "--library-path", str(libdir), "--list", str(elf)],
        capture_output=True, text=True, check=False)
    found: dict[str, str] = {}
    for line in listing.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if not arrow:
            continue
        if rest.startswith("not found"):
            raise PackError(f"{elf.name} needs {name}, which the build machine does not have")
        found[name] = rest.split(" (", 1)[0]
    if listing.returncode != 0 and not found:
        raise PackError(f"{loader} --list {elf} failed: {listing.stderr.strip()}")
    return found


def add_c_library(tree: Path) -> list[str]:
    """Copy every library the tree's ELF files need from the build machine into the tree's
    LIBDIR, until nothing is missing; returns the names added."""
    libdir = tree / LIBDIR
    added = [LOADER]
    shutil.copy(os.path.realpath(HOST_LOADER), libdir / LOADER)
    for name in EXTRA_LIBRARIES:
        shutil.copy(_host_library(name), libdir / name)
        added.append(name)
    while True:
        missing: dict[str, str] = {}
        for elf in filter(is_elf, _files(tree)):
            for name, where in resolved_dependencies(HOST_LOADER, elf, libdir).items():
                if not Path(where).resolve().is_relative_to(tree.resolve()):
                    missing[name] = where
        if not missing:
            return added
        again = sorted(set(missing) & set(added))
        if again:  # copied once and still resolved elsewhere: copying more would never end
            raise PackError(f"{', '.join(again)} still resolve outside the bundle once copied "
                            "into it (an absolute RPATH?)")
        for name, where in missing.items():
            shutil.copy(os.path.realpath(where), libdir / name)
            added.append(name)


def _host_library(name: str) -> str:
    for directory in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return os.path.realpath(path)
    raise PackError(f"{name} is not on the build machine")


def check_self_contained(tree: Path) -> None:
    """Every ELF file resolves every library inside the tree, with the bundled loader."""
    loader = str(tree / LIBDIR / LOADER)
    for elf in filter(is_elf, _files(tree)):
        for name, where in resolved_dependencies(loader, elf, tree / LIBDIR).items():
            if not Path(where).resolve().is_relative_to(tree.resolve()):
                raise PackError(f"{elf.relative_to(tree)} would load {name} from {where}")


def patch_program(program: Path) -> tuple[int, int]:
    """Give the bootloader a placeholder interpreter and RUNPATH $ORIGIN/LIBDIR; returns the
    (offset, size) of its PT_INTERP segment. PyInstaller's archive lives in the bootloader's
    `pydata` section and is found by searching back from the file's end, so patchelf may move
    it; reading the archive back proves it is intact."""
    placeholder = "/" + "_" * (INTERP_CAPACITY - 2)
    subprocess.run(["patchelf", "--set-interpreter", placeholder, "--set-rpath",
                    f"$ORIGIN/{LIBDIR}", str(program)], check=True)
    CArchiveReader(str(program))  # raises when the archive cannot be found
    return interp_segment(program.read_bytes(), placeholder)


def interp_segment(elf: bytes, expected: str) -> tuple[int, int]:
    """(file offset, size) of the PT_INTERP segment of a 64-bit little-endian ELF file."""
    if elf[:4] != ELF_MAGIC or elf[4] != 2 or elf[5] != 1:
        raise PackError("the bootloader is not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for number in range(phnum):
        kind, _, offset, _, _, size, _, _ = struct.unpack_from("<IIQQQQQQ", elf,
                                                              phoff + number * phentsize)
        if kind == 3:  # PT_INTERP
            if elf[offset:offset + size].rstrip(b"\0").decode() != expected:
                raise PackError("patchelf did not set the placeholder interpreter")
            return offset, size
    raise PackError("the bootloader has no PT_INTERP segment")


def check_manifest(tree: Path, manifest: dict[str, object]) -> None:
    """Every native library listed with a reason, none listed that is gone, within budget."""
    listed = manifest.get("libraries")
    budget = manifest.get("budget_mib")
    if not isinstance(listed, dict) or not isinstance(budget, int | float):
        raise PackError("manifest needs budget_mib and a [libraries] table")
    present = {str(p.relative_to(tree)): p.stat().st_size for p in _files(tree) if is_elf(p)}
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise PackError(f"native libraries not in the manifest (add each with its reason, or "
                        f"exclude it in hc.spec): {', '.join(unlisted)}")
    gone = sorted(set(listed) - set(present))
    if gone:
        raise PackError(f"manifest lists libraries the bundle no longer has (remove them): "
                        f"{', '.join(gone)}")
    total = sum(present.values())
    if total > budget * 2**20:
        raise PackError(f"native libraries take {total / 2**20:.1f} MiB, over the budget of "
                        f"{budget} MiB")


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink())


def write_binary(tree: Path, launcher: Path, output: Path, interp: tuple[int, int]) -> str:
    """launcher + files + index + trailer; returns the bundle id."""
    head = launcher.read_bytes()
    lines = [f"hc-bundle {FORMAT}", f"program {PROGRAM}", f"loader {LIBDIR}/{LOADER}",
             f"interp {interp[0]} {interp[1]}"]
    digest = hashlib.sha256()
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(head)
        payload_start = out.tell()
        for path in sorted(tree.rglob("*")):
            relative = path.relative_to(tree).as_posix()
            if any(c.isspace() for c in relative) or path.is_symlink():
                raise PackError(f"cannot bundle {relative}: a link or a name with spaces")
            if path.is_dir():
                lines.append(f"d {relative}")
                digest.update(f"d {relative}\n".encode())
                continue
            data = path.read_bytes()
            mode = path.stat().st_mode & 0o777
            lines.append(f"f {mode:o} {len(data)} {out.tell()} {relative}")
            digest.update(f"f {mode:o} {len(data)} {relative}\n".encode())
            digest.update(data)
            out.write(data)
        index = ("\n".join(lines) + "\n").encode()
        digest.update(index)
        bundle_id = digest.hexdigest()[:32]
        index_offset = out.tell()
        out.write(index)
        out.write(TRAILER.pack(index_offset, len(index), payload_start, bundle_id.encode(),
                               MAGIC))
    tmp.chmod(0o755)
    tmp.replace(output)
    return bundle_id


def pack(onedir: Path, launcher: Path, output: Path, manifest_path: Path) -> str:
    """Build `output` from the onedir build; returns a one-line summary."""
    with manifest_path.open("rb") as handle:
        manifest = tomllib.load(handle)
    tree = output.parent / "bundle"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(onedir, tree, symlinks=True)
    added = add_c_library(tree)
    interp = patch_program(tree / PROGRAM)
    check_self_contained(tree)
    check_manifest(tree, manifest)
    bundle_id = write_binary(tree, launcher, output, interp)
    size = sum(p.stat().st_size for p in _files(tree))
    return (f"bundle {bundle_id}: {len(_files(tree))} files, {size / 2**20:.1f} MiB "
            f"(added from the build machine: {', '.join(added)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onedir", type=Path)
    parser.add_argument("launcher", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--manifest", type=Path,
                        default=Path(__file__).resolve().parent.parent / "spec" / "bundle.toml")
    args = parser.parse_args()
    try:
        print(f"pack: {pack(args.onedir, args.launcher, args.output, args.manifest)}")
    except (PackError, OSError, subprocess.CalledProcessError) as exc:
        print(f"pack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
