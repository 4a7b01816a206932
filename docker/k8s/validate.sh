#!/usr/bin/env bash
# Check the manifests in this folder without a cluster:
#   1. every file parses as YAML (PyYAML), each document has apiVersion, kind, metadata.name;
#   2. every document validates against Kubernetes' OpenAPI schemas in strict mode (unknown
#      fields are errors) with kubernetes-validate, for the oldest and newest versions below;
#   3. (a warning only) the flags given to `isolab serve` exist in a built binary, if any.
# It does not apply anything to a cluster: what a kubelet, containerd or ingress-nginx then
# does with the manifests is not checked here.
#
# Usage: docker/k8s/validate.sh   (exit status non-zero when a check fails)
# kubernetes-validate is installed from PyPI into a venv (ISOLAB_K8S_VENV, default
# /tmp/isolab-k8s-venv) the first time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
venv=${ISOLAB_K8S_VENV:-/tmp/isolab-k8s-venv}
validator_version=1.37.0
# 1.30: the first with securityContext.appArmorProfile. 1.37: the newest schemas of the tool.
k8s_versions=(1.30.0 1.37.0)

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$validator_version"; then
  echo "installing kubernetes-validate $validator_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$validator_version" pyyaml
fi

files=("$here"/*.yaml)

echo "== YAML"
"$venv/bin/python" - "${files[@]}" <<'PY'
import sys
import yaml

failed = False
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    names = []
    for d in docs:
        if not isinstance(d, dict) or not {"apiVersion", "kind", "metadata"} <= d.keys() \
                or "name" not in d["metadata"]:
            print(f"{path}: a document without apiVersion, kind or metadata.name")
            failed = True
            continue
        names.append(f"{d['kind']}/{d['metadata']['name']}")
    print(f"{path}: {len(docs)} documents: {', '.join(names)}")
sys.exit(1 if failed else 0)
PY

for v in "${k8s_versions[@]}"; do
  echo "== Kubernetes $v schemas, strict"
  "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$v" "${files[@]}"
done

# The flags the DaemonSet passes to `isolab serve`, against the built binary's --help.
bin="$here/../../target/release/isolab"
[ -x "$bin" ] || bin="$here/../../target/debug/isolab"
if [ -x "$bin" ]; then
  echo "== isolab serve flags ($bin)"
  help=$("$bin" serve --help)
  for flag in $(grep -oE '^ *- --[a-z-]+' "$here/isolab.yaml" | sed 's/^ *- //' | sort -u); do
    if grep -qE -- "^ +$flag[ ,=]" <<<"$help"; then
      echo "ok: $flag"
    else
      echo "WARNING: $flag is not a flag of this isolab serve (an older build?)"
    fi
  done
fi
echo "all checks passed"
