#!/usr/bin/env bash
# Continue the demo campaign (scripts/demo_campaign.py) on a lent CUDA machine for at most
# MINUTES (default 8), then bring its weights back: the device tool's one prepared command.
#
# Here, once (the folders are ignored; wheels as in benchmarks/README.md, the GPU suite's setup,
# less the DICOM/SegVol ones that training does not import):
#   printf '/.whl/\n/.campaign-parts/\n' >> "$(git rev-parse --git-path info/exclude)"
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl monai==1.6.1 nibabel==5.4.2 pydicom==3.0.2 pynrrd==1.1.3 connected-components-3d==4.1.1
#   python scripts/demo_campaign.py pack ~/voxelprompt-campaign .campaign-parts
# Then the device tool's run, with carry [".whl", ".campaign-parts"] and timeout_s 600:
#   bash scripts/gpu_campaign.sh .campaign-parts 8
# The phantoms and supervoxels are made again there from their seeds (16 cores, ~2 min); the
# width-16 weights travel as float16 (~48 MB: with the wheels, inside the tool's 64 MiB), so the
# GPU leg starts fresh AdamW moments. Back here, with the reply's files_at:
#   python scripts/demo_campaign.py run ~/voxelprompt-campaign --from-packed FILES_AT/parts
set -euo pipefail
parts=${1:?usage: gpu_campaign.sh PARTS_DIR [MINUTES]}
minutes=${2:-8}
out=${OUT:-/tmp/campaign-out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
mkdir -p "$out/parts"
work=/tmp/campaign
# The data step calls the `voxelprompt` console script, which needs `pip install -e .` (not
# possible there): a stand-in runs the same entry point.
mkdir -p /tmp/bin
cat >/tmp/bin/voxelprompt <<'SH'
#!/bin/sh
exec python3 -c 'import sys; from voxelprompt.cli import main; sys.argv[0] = "voxelprompt"; main()' "$@"
SH
chmod +x /tmp/bin/voxelprompt
export PATH=/tmp/bin:$PATH
python3 scripts/demo_campaign.py run "$work" --device cuda --minutes "$minutes" \
    --from-packed "$parts" --pack-to "$out/parts" 2>&1 | tee "$out/campaign.log"
