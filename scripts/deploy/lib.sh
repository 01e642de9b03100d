# shellcheck shell=bash
# Shared by the deploy and delete scripts. Source it; do not run it.

# Prints an error for GitHub Actions (an annotation) and for people, then exits. On
# stderr: look-ups run inside $(...), whose stdout is the value, not the message.
die() {
  printf '::error::%s\n' "$1" >&2
  exit 1
}

warn() {
  printf '::warning::%s\n' "$1" >&2
}

# load_function NAME: sets STACK, LOG_GROUP and TABLE_STACKS (one "stack workflow" pair per
# entry) from routes/functions.json, which firefly-gen writes from the route table. An
# unknown or missing name stops the run with the list of functions.
load_function() {
  local name=${1:-} facts
  facts=$(python3 - "$name" <<'PY'
import json, sys
functions = json.load(open("routes/functions.json"))["functions"]
name = sys.argv[1]
if name not in functions:
    sys.exit("unknown function %r: expected one of %s" % (name, ", ".join(sorted(functions))))
f = functions[name]
print(f["stack"])
print(f["logGroup"])
for t in f["tableStacks"]:
    print(t["stack"], t["workflow"])
PY
  ) || die "$(python3 -c 'import json; print("usage: give the function, one of: " + ", ".join(sorted(json.load(open("routes/functions.json"))["functions"])))')"
  local lines
  mapfile -t lines <<<"$facts"
  # shellcheck disable=SC2034  # used by the scripts that source this file
  STACK=${lines[0]}
  # shellcheck disable=SC2034
  LOG_GROUP=${lines[1]}
  # shellcheck disable=SC2034
  TABLE_STACKS=("${lines[@]:2}")
}

# stack_output STACK KEY WORKFLOW: prints the output KEY of STACK, or stops the run with a
# message naming the workflow to deploy first. An empty value or "None" (what the CLI prints
# for a missing output) is not a value.
stack_output() {
  local stack=$1 key=$2 workflow=$3 value
  if ! value=$(aws cloudformation describe-stacks --stack-name "$stack" \
      --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue | [0]" --output text 2>&1); then
    if [[ $value == *"does not exist"* ]]; then
      die "stack $stack not found: deploy $workflow first (looking up its output $key)"
    fi
    die "could not read stack $stack for its output $key: $value"
  fi
  if [[ -z $value || $value == None || $value == null ]]; then
    die "stack $stack has no output $key: redeploy $workflow (it must export $key)"
  fi
  printf '%s\n' "$value"
}

# stack_exists STACK: true when CloudFormation knows STACK.
stack_exists() {
  aws cloudformation describe-stacks --stack-name "$1" >/dev/null 2>&1
}
