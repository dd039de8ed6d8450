#!/usr/bin/env bash
# make-kubeconfig.sh: turns one member cluster's fedgate-reader ServiceAccount
# (deploy/member-rbac) into the kubeconfig fedgate uses for that cluster: one cluster,
# one user with the ServiceAccount's token, one context, all named after the member.
# Needs only kubectl. Checks the new kubeconfig by reading what fedgate reads before
# writing it.
set -euo pipefail

me=$(basename "$0")

usage() {
  cat <<EOF
usage: $me [OPTIONS] CONTEXT CLUSTER OUTPUT

  CONTEXT   your kubectl context for the member cluster (kubectl config get-contexts)
  CLUSTER   the member's name in fedgate's configuration (clusters[].name): a DNS
            label such as alpha; names the kubeconfig's cluster, user and context
  OUTPUT    the kubeconfig to write (mode 0600), e.g. clusters/alpha.kubeconfig;
            - writes it to standard output

Apply the ServiceAccount, its token Secret and its roles first:
  kubectl --context CONTEXT apply -k deploy/member-rbac

Options:
  -n, --namespace NS   the ServiceAccount's namespace (default: fedgate-reader)
  -s, --secret NAME    its token Secret (default: fedgate-reader-token)
      --server URL     the API server address fedgate should use, when it differs
                       from CONTEXT's (default: CONTEXT's server)
      --wait SECONDS   how long to wait for Kubernetes to fill in the token
                       (default: 30)
      --no-verify      do not check the new kubeconfig against the API server
  -h, --help           this text

The CA is CONTEXT's (what your kubectl trusts for that server), else the cluster CA
from the token Secret. Exit codes: 0 written, 1 failed, 2 usage error.
EOF
}

die() {
  echo "$me: $*" >&2
  exit 1
}
usage_error() {
  echo "$me: $*" >&2
  echo "(see $me --help)" >&2
  exit 2
}

namespace=fedgate-reader
secret=fedgate-reader-token
server=
wait_seconds=30
verify=yes
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    -n | --namespace | -s | --secret | --server | --wait)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case "$1" in
        -n | --namespace) namespace=$2 ;;
        -s | --secret) secret=$2 ;;
        --server) server=$2 ;;
        --wait) wait_seconds=$2 ;;
      esac
      shift 2
      ;;
    --namespace=*) namespace=${1#*=} && shift ;;
    --secret=*) secret=${1#*=} && shift ;;
    --server=*) server=${1#*=} && shift ;;
    --wait=*) wait_seconds=${1#*=} && shift ;;
    --no-verify) verify=no && shift ;;
    --)
      shift
      args+=("$@")
      break
      ;;
    -?*) usage_error "unknown option $1" ;;
    *) args+=("$1") && shift ;;
  esac
done
[ ${#args[@]} -eq 3 ] || usage_error "expected CONTEXT CLUSTER OUTPUT, got ${#args[@]} argument(s)"
context=${args[0]}
cluster=${args[1]}
output=${args[2]}

# The same rule as fedgate's clusters[].name; it also keeps the YAML below plain.
[[ $cluster =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
  usage_error "CLUSTER must be a DNS label (lower-case letters, digits and -, at most 63): '$cluster'"
[[ $wait_seconds =~ ^[0-9]+$ ]] || usage_error "--wait takes whole seconds, not '$wait_seconds'"
if [ "$output" != - ] && [ -d "$output" ]; then
  usage_error "OUTPUT is a directory: $output (give a file, e.g. $output/$cluster.kubeconfig)"
fi

command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"

# ---- the cluster: server and CA, from the context as kubectl sees it
if ! kubectl config get-contexts "$context" >/dev/null 2>&1; then
  die "no context '$context' in your kubeconfig (${KUBECONFIG:-~/.kube/config}); kubectl config get-contexts lists them"
fi
view() {
  # --flatten embeds a CA given as a file path, so the output stands alone.
  kubectl config view --raw --minify --flatten --context "$context" -o "jsonpath=$1"
}
context_server=$(view '{.clusters[0].cluster.server}')
server=${server:-$context_server}
[ -n "$server" ] || die "context '$context' names no API server"
url_re='^https://[^[:space:]"\\]+$'
[[ $server =~ $url_re ]] ||
  die "the API server must be an https:// URL without spaces or quotes, not '$server'"
ca=$(view '{.clusters[0].cluster.certificate-authority-data}')

# ---- the token, once the token controller has filled it in
work=$(mktemp -d "${TMPDIR:-/tmp}/$me.XXXXXX")
tmp=
trap 'rm -rf "$work"; [ -z "$tmp" ] || rm -f "$tmp"' EXIT
secret_field() {
  kubectl --context "$context" --namespace "$namespace" get secret "$secret" \
    --request-timeout=20s -o "go-template=$1"
}
if ! type=$(secret_field '{{.type}}' 2>"$work/err"); then
  why=$(tr '\n' ' ' <"$work/err")
  if [[ $why == *NotFound* || $why == *"not found"* ]]; then
    die "no Secret $namespace/$secret in context '$context': apply deploy/member-rbac there first ($why)"
  fi
  die "cannot read Secret $namespace/$secret in context '$context': $why"
fi
[ "$type" = kubernetes.io/service-account-token ] ||
  die "Secret $namespace/$secret is of type '$type', not kubernetes.io/service-account-token"

account=$(secret_field '{{with .metadata.annotations}}{{with index . "kubernetes.io/service-account.name"}}{{.}}{{end}}{{end}}')
[ -n "$account" ] ||
  die "Secret $namespace/$secret names no ServiceAccount (annotation kubernetes.io/service-account.name)"

token=
deadline=$((SECONDS + wait_seconds))
while :; do
  token=$(secret_field '{{with .data}}{{with .token}}{{. | base64decode}}{{end}}{{end}}') ||
    die "cannot read Secret $namespace/$secret in context '$context'"
  [ -n "$token" ] && break
  if [ $SECONDS -ge "$deadline" ]; then
    die "Secret $namespace/$secret has no token after ${wait_seconds}s: does ServiceAccount $namespace/$account exist? (the token controller fills in only Secrets whose account exists)"
  fi
  sleep 1
done
[[ $token =~ ^[A-Za-z0-9._-]+$ ]] || die "the token in Secret $namespace/$secret does not look like a ServiceAccount token"

if [ -z "$ca" ]; then
  if [ "$(view '{.clusters[0].cluster.insecure-skip-tls-verify}')" = true ]; then
    echo "$me: context '$context' skips TLS verification; using the cluster CA from the Secret instead" >&2
  fi
  ca=$(secret_field '{{with .data}}{{with index . "ca.crt"}}{{.}}{{end}}{{end}}') ||
    die "cannot read Secret $namespace/$secret in context '$context'"
  [ -n "$ca" ] || die "neither context '$context' nor Secret $namespace/$secret has a CA certificate for $server"
fi
[[ $ca =~ ^[A-Za-z0-9+/=]+$ ]] || die "the CA certificate is not base64"

# ---- the kubeconfig: written owner-only beside OUTPUT (then renamed into place),
# never with the token on a command line
umask 077
if [ "$output" = - ]; then
  tmp=$work/kubeconfig
else
  mkdir -p "$(dirname "$output")"
  tmp=$(mktemp "$(dirname "$output")/.$cluster.kubeconfig.XXXXXX")
fi
cat >"$tmp" <<EOF
# fedgate's kubeconfig for member cluster $cluster: ServiceAccount
# $namespace/$account (its roles: deploy/member-rbac), made by $me.
apiVersion: v1
kind: Config
clusters:
  - name: $cluster
    cluster:
      server: "$server"
      certificate-authority-data: $ca
users:
  - name: $cluster-fedgate-reader
    user:
      token: "$token"
contexts:
  - name: $cluster
    context:
      cluster: $cluster
      user: $cluster-fedgate-reader
current-context: $cluster
EOF

# ---- check it: one list of each resource fedgate reads, as fedgate lists them
if [ "$verify" = yes ]; then
  for path in /api/v1/services /api/v1/nodes /apis/discovery.k8s.io/v1/endpointslices \
    /apis/multicluster.x-k8s.io/v1alpha1/serviceexports; do
    if ! out=$(kubectl --kubeconfig "$tmp" get --raw "$path?limit=1" --request-timeout=20s 2>&1 >/dev/null); then
      if [[ $path == */serviceexports && $out == *NotFound* ]]; then
        echo "$me: $cluster serves no ServiceExport (MCS CRD not installed): services join with the fedgate.io/federate annotation there" >&2
        continue
      fi
      die "the new kubeconfig cannot list $path on $server: $out (rerun with --no-verify to write it anyway)"
    fi
  done
fi

if [ "$output" = - ]; then
  cat "$tmp"
else
  chmod 600 "$tmp"
  mv -f "$tmp" "$output"
  tmp=
  echo "$me: wrote $output (cluster $cluster, server $server)" >&2
fi
