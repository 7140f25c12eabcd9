#!/usr/bin/env bash
# End-to-end proof of the test control plane (scripts/testenv.sh) and tmdbsync-node-agent:
# Indexed Jobs complete / fail through a podFailurePolicy, secret env vars resolve (a missing secret is a
# CreateContainerConfigError until it appears), a Deployment's pod gets a working service-account
# kubeconfig, deletion kills processes, and the garbage collector removes a deleted Job's pods.
#
#   scripts/testenv-smoke.sh [PATH/TO/tmdbsync-node-agent]
#
# Without an argument the agent is taken from ${CARGO_TARGET_DIR:-target}/debug (built if missing).
# Brings the control plane up if needed and down again if it started it (KEEP_TESTENV=1 keeps it).
# Exits non-zero when any check fails; ends with an "N passed, M failed" line.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESTENV="$ROOT/scripts/testenv.sh"
AGENT="${1:-}"
if [ -z "$AGENT" ]; then
  AGENT="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tmdbsync-node-agent"
  if [ ! -x "$AGENT" ]; then
    echo "[smoke] building tmdbsync-node-agent" >&2
    (cd "$ROOT" && cargo build -q --workspace --bin tmdbsync-node-agent) || { echo "[smoke] build failed" >&2; exit 1; }
  fi
fi
[ -x "$AGENT" ] || { echo "[smoke] no agent binary at $AGENT" >&2; exit 1; }

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "[smoke] PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "[smoke] FAIL: $*"; }

started_testenv=0
if ! "$TESTENV" status >/dev/null 2>&1; then started_testenv=1; fi
"$TESTENV" up || exit 1
eval "$("$TESTENV" env)"

NS="smoke-$$"
WORK="$(mktemp -d /tmp/tmdbsync-smoke.XXXXXX)"
LOGS="$WORK/logs"
AGENT_PID=""

cleanup() {
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
  sleep 1
  if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null
  fi
  if [ "$started_testenv" = 1 ] && [ "${KEEP_TESTENV:-0}" != 1 ]; then "$TESTENV" down; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# until_ok SECONDS COMMAND...: retries COMMAND every 0.5 s until it succeeds or SECONDS pass.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
jsonpath() { kubectl -n "$NS" get "$1" -o "jsonpath=$2" 2>/dev/null; }
field_is() { [ "$(jsonpath "$1" "$2")" = "$3" ]; }
log_has() { grep -q -- "$2" "$LOGS/${NS}_$1.log" 2>/dev/null; }
job_log_has() { cat "$LOGS/${NS}_$1"-*.log 2>/dev/null | grep -q -- "$2"; }

kubectl create namespace "$NS" >/dev/null
until_ok 30 kubectl -n "$NS" get serviceaccount default || { fail "default ServiceAccount in $NS"; exit 1; }

"$AGENT" --node-name tmdbsync-local --image-map busybox=/bin/sh --log-dir "$LOGS" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
node_ready() {
  [ "$(kubectl get node tmdbsync-local -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
if until_ok 30 node_ready; then pass "node tmdbsync-local registered and Ready"; else fail "node not Ready"; fi

job() { # job NAME SCRIPT
  cat <<EOF | kubectl -n "$NS" apply -f - >/dev/null || fail "creating Job $1"
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
  completionMode: Indexed
  completions: 2
  parallelism: 2
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [3]}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox:1.36
        args: ["-c", "$2"]
EOF
}
# shellcheck disable=SC2016 # expanded by the container's shell
job job-ok 'echo index=$JOB_COMPLETION_INDEX; exit 0'
job job-fail 'echo failing; exit 3'

cat <<EOF | kubectl -n "$NS" apply -f - >/dev/null || fail "creating the pods, RBAC and Deployment"
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {url: postgres://smoke}
---
apiVersion: v1
kind: Pod
metadata: {name: secret-env}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    args: ["-c", "echo DB=\$DB_URL"]
    env:
    - name: DB_URL
      valueFrom: {secretKeyRef: {name: db, key: url}}
---
apiVersion: v1
kind: Pod
metadata: {name: secret-missing}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    args: ["-c", "echo LATE=\$LATE"]
    env:
    - name: LATE
      valueFrom: {secretKeyRef: {name: late, key: value}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator-cm-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: operator, namespace: $NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: operator}
spec:
  replicas: 1
  selector: {matchLabels: {app: operator}}
  template:
    metadata: {labels: {app: operator}}
    spec:
      serviceAccountName: operator
      containers:
      - name: operator
        image: busybox
        args: ["-c", "kubectl auth whoami; kubectl get configmap kube-root-ca.crt -o name; echo get-rc=\$?; exec sleep 600"]
EOF

if until_ok 60 field_is job/job-ok '{.status.conditions[?(@.type=="Complete")].status}' True \
  && job_log_has job-ok-0 "index=0" && job_log_has job-ok-1 "index=1"; then
  pass "Indexed Job (completions 2, parallelism 2) Complete; pods saw JOB_COMPLETION_INDEX 0 and 1"
else
  fail "job-ok did not complete: $(jsonpath job/job-ok '{.status}')"
fi

if until_ok 60 field_is job/job-fail '{.status.conditions[?(@.type=="Failed")].reason}' PodFailurePolicy; then
  pass "Job with exit code 3 Failed by the podFailurePolicy (reason PodFailurePolicy)"
else
  fail "job-fail not failed by PodFailurePolicy: $(jsonpath job/job-fail '{.status.conditions}')"
fi
exit_code=$(kubectl -n "$NS" get pods -l job-name=job-fail \
  -o 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}' 2>/dev/null)
if [ "$exit_code" = 3 ]; then pass "failed pod reports state.terminated.exitCode 3"; else fail "exitCode '$exit_code'"; fi

if until_ok 30 field_is pod/secret-env '{.status.phase}' Succeeded && log_has secret-env "DB=postgres://smoke"; then
  pass "secretKeyRef env resolved (pod Succeeded, saw the secret value)"
else
  fail "secret-env: $(jsonpath pod/secret-env '{.status.phase}')"
fi

if until_ok 30 field_is pod/secret-missing '{.status.containerStatuses[0].state.waiting.reason}' CreateContainerConfigError \
  && [ ! -e "$LOGS/${NS}_secret-missing.log" ]; then
  pass "missing secret -> CreateContainerConfigError, process not started"
else
  fail "secret-missing: $(jsonpath pod/secret-missing '{.status}')"
fi
kubectl -n "$NS" create secret generic late --from-literal=value=arrived >/dev/null
if until_ok 30 field_is pod/secret-missing '{.status.phase}' Succeeded && log_has secret-missing "LATE=arrived"; then
  pass "the pod starts once the missing secret is created (kubelet-like retry)"
else
  fail "secret-missing did not recover: $(jsonpath pod/secret-missing '{.status.phase}')"
fi

if until_ok 60 field_is deployment/operator '{.status.availableReplicas}' 1; then
  pass "Deployment with 1 replica available (pod Running and Ready)"
else
  fail "deployment not available: $(jsonpath deployment/operator '{.status}')"
fi
op_log() { cat "$LOGS/${NS}"_operator-*.log 2>/dev/null; }
op_has() { op_log | grep -q -- "$1"; }
if until_ok 20 op_has "system:serviceaccount:$NS:operator" && until_ok 10 op_has "get-rc=0"; then
  pass "Deployment pod's KUBECONFIG token authenticates as its ServiceAccount and can read what RBAC allows"
else
  fail "operator pod log: $(op_log)"
fi

op_pod=$(kubectl -n "$NS" get pods -l app=operator -o 'jsonpath={.items[0].metadata.name}')
kubectl -n "$NS" delete deployment operator --wait=false >/dev/null
op_gone() { ! kubectl -n "$NS" get pod "$op_pod" >/dev/null 2>&1; }
no_sleep() { ! pgrep -x -f "sleep 600" >/dev/null; }
if until_ok 30 op_gone && no_sleep; then
  pass "deleting the Deployment killed its process and completed the pod deletion"
else
  fail "operator pod $op_pod still there or its process runs"
fi

kubectl -n "$NS" delete job job-ok --wait=false >/dev/null
job_pods_gone() { [ -z "$(kubectl -n "$NS" get pods -l job-name=job-ok -o name 2>/dev/null)" ]; }
if until_ok 30 job_pods_gone; then
  pass "garbage collector deleted the deleted Job's pods"
else
  fail "job-ok pods remain: $(kubectl -n "$NS" get pods -l job-name=job-ok -o name)"
fi

if [ "$FAILED" -gt 0 ]; then
  echo "[smoke] ---- agent log (tail) ----"
  tail -n 40 "$WORK/agent.log"
fi
echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
