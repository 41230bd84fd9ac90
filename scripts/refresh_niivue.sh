#!/usr/bin/env bash
# Refresh the browser viewer's vendored NiiVue from npm (no CDN is used at run time).
#
#   scripts/refresh_niivue.sh VERSION        e.g. scripts/refresh_niivue.sh 0.69.0
#
# Downloads @niivue/niivue@VERSION with `npm pack` into a temporary folder and copies its
# self-contained browser bundle (dist/niivue.umd.js: one file, global `niivue`, no imports) to
# voxelprompt/server/viewer/vendor/, with its licence and a NIIVUE_VERSION record (version, npm
# integrity, sha256 of the bundle). The npm tarball carries no LICENSE file (package.json says
# "BSD-2-Clause"); the script then keeps vendor/LICENSE-niivue.txt, the BSD 2-Clause text of
# github.com/niivue/niivue, and fails if the package's licence is anything else.
# Needs: npm, tar, sha256sum. Test the viewer afterwards: python -m pytest tests/server/test_viewer.py
set -euo pipefail

version="${1:-}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.]+)?$ ]]; then
    echo "usage: $0 VERSION (e.g. 0.69.0), got '${version}'" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/voxelprompt/server/viewer/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "@niivue/niivue@$version" > pack.txt)
tarball="$work/$(tail -n 1 "$work/pack.txt")"
tar -xzf "$tarball" -C "$work"
package="$work/package"
bundle="$package/dist/niivue.umd.js"
[[ -s "$bundle" ]] || { echo "@niivue/niivue@$version has no dist/niivue.umd.js" >&2; exit 1; }

license="$(node -p "require('$package/package.json').license" 2>/dev/null || sed -n 's/.*"license": *"\([^"]*\)".*/\1/p' "$package/package.json")"
mkdir -p "$vendor"
if [[ -f "$package/LICENSE" ]]; then
    cp "$package/LICENSE" "$vendor/LICENSE-niivue.txt.new"
elif [[ "$license" == "BSD-2-Clause" && -s "$vendor/LICENSE-niivue.txt" ]]; then
    cp "$vendor/LICENSE-niivue.txt" "$vendor/LICENSE-niivue.txt.new"
else
    echo "@niivue/niivue@$version: licence '$license' and no LICENSE file in the package; check it by hand" >&2
    exit 1
fi

# Write next to the targets, then rename: a failed refresh leaves the old files whole.
cp "$bundle" "$vendor/niivue.umd.js.new"
integrity="$(cd "$work" && npm view --silent "@niivue/niivue@$version" dist.integrity 2>/dev/null || echo unknown)"
{
    echo "package: @niivue/niivue"
    echo "version: $version"
    echo "licence: $license"
    echo "file: niivue.umd.js (dist/niivue.umd.js of the npm package)"
    echo "npm integrity: $integrity"
    echo "sha256: $(sha256sum "$bundle" | cut -d' ' -f1)"
} > "$vendor/NIIVUE_VERSION.new"
for name in niivue.umd.js LICENSE-niivue.txt NIIVUE_VERSION; do
    mv "$vendor/$name.new" "$vendor/$name"
done
echo "vendored @niivue/niivue@$version into $vendor"
