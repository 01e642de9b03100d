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

# load_function NAME: sets STACK, LOG_GROUP, AUTHORIZER (true when a route of the function
# is behind the JWT authorizer), KIND (api, or s3 for a function S3 invokes), TABLE_STACKS (one "stack workflow" pair per entry) and
# FROM_STACKS (one "parameter stack output workflow variable kind" per bucket or CloudFront
# distribution the function uses, whose name or ID another stack's output holds), SETTINGS
# (one "parameter variable default allowed,values" per deployment setting it reads),
# RESERVED_CONCURRENCY and ALARMS (the route table's, or scripts/deploy/settings.json's) from
# routes/functions.json, which firefly-gen writes from the route table. An
# unknown or missing name stops the run with the list of functions.
load_function() {
  local name=${1:-} facts
  facts=$(python3 - "$name" <<'PY'
import json, os, sys
functions = json.load(open("routes/functions.json"))["functions"]
name = sys.argv[1]
if name not in functions:
    sys.exit("unknown function %r: expected one of %s" % (name, ", ".join(sorted(functions))))
f = functions[name]
print(f["stack"])
print(f["logGroup"])
print("true" if f["authorizer"] else "false")
print(f.get("kind", "api"))
for t in f["tableStacks"]:
    print("table", t["stack"], t["workflow"])
for b in f.get("fromStacks", []):
    print("from-stack", b["parameter"], b["stack"], b["output"], b["workflow"], b["env"], b["kind"])
for s in f.get("settings", []):
    print("setting", s["parameter"], s["env"], s["default"], ",".join(s["allowed"]))
settings = dict(f["deploy"])
# FIREFLY_DEPLOY_SETTINGS_FILE: the deployment tests' own copy; operators edit the default.
path = os.environ.get("FIREFLY_DEPLOY_SETTINGS_FILE") or "scripts/deploy/settings.json"
override = json.load(open(path)).get("functions", {}).get(name, {})
unknown = sorted(set(override) - set(settings))
def refuse(why):
    print("%s: %s: %s" % (path, name, why), file=sys.stderr)
    sys.exit(3)
if unknown:
    refuse("unknown setting %s (expected %s)" % (", ".join(unknown), ", ".join(sorted(settings))))
settings.update(override)
cap, alarms = settings["ReservedConcurrency"], settings["Alarms"]
if type(cap) is not int or cap < -1 or type(alarms) is not bool:
    refuse("ReservedConcurrency must be an integer of -1 or more, Alarms true or false")
print("deploy", cap, "true" if alarms else "false")
PY
  ) || {
    [[ $? == 3 ]] && die "not deploying with an invalid scripts/deploy/settings.json (above)"
    die "$(python3 -c 'import json; print("usage: give the function, one of: " + ", ".join(sorted(json.load(open("routes/functions.json"))["functions"])))')"
  }
  local lines
  mapfile -t lines <<<"$facts"
  # shellcheck disable=SC2034  # used by the scripts that source this file
  STACK=${lines[0]}
  # shellcheck disable=SC2034
  LOG_GROUP=${lines[1]}
  # shellcheck disable=SC2034
  AUTHORIZER=${lines[2]}
  # shellcheck disable=SC2034
  KIND=${lines[3]}
  TABLE_STACKS=()
  FROM_STACKS=()
  SETTINGS=()
  local line
  for line in "${lines[@]:4}"; do
    case $line in
      "table "*) TABLE_STACKS+=("${line#table }") ;;
      "from-stack "*) FROM_STACKS+=("${line#from-stack }") ;;
      "setting "*) SETTINGS+=("${line#setting }") ;;
      "deploy "*) read -r _ RESERVED_CONCURRENCY ALARMS <<<"$line" ;;
    esac
  done
  # shellcheck disable=SC2034
  : "${TABLE_STACKS[@]}" "${FROM_STACKS[@]}" "${SETTINGS[@]}" "$RESERVED_CONCURRENCY" "$ALARMS"
}

# aws_error TEXT: a one-line reason for a failed aws CLI call, naming what it means.
aws_error() {
  local text=$1
  case $text in
    *AccessDenied*|*"not authorized"*|*UnauthorizedOperation*)
      printf 'access denied (the deploy role lacks a permission): %s' "$(tail -n 1 <<<"$text")" ;;
    *Throttling*|*"Rate exceeded"*|*TooManyRequests*)
      printf 'throttled by AWS, try again: %s' "$(tail -n 1 <<<"$text")" ;;
    *ExpiredToken*|*InvalidClientTokenId*|*"Unable to locate credentials"*)
      printf 'no valid AWS credentials: %s' "$(tail -n 1 <<<"$text")" ;;
    *) printf '%s' "$(tail -n 1 <<<"$text")" ;;
  esac
}

# stack_output STACK KEY WORKFLOW: prints the output KEY of STACK (only the value: the CLI's
# warnings go to stderr, which is kept apart), or stops the run with a message: a missing
# stack names the workflow to deploy first; access denied, throttling and missing
# credentials are reported as such. An empty value or "None" (what the CLI prints for a
# missing output) is not a value.
stack_output() {
  local stack=$1 key=$2 workflow=$3 value err
  err=$(mktemp)
  if ! value=$(aws cloudformation describe-stacks --stack-name "$stack" \
      --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue | [0]" --output text 2>"$err"); then
    local text
    text=$(cat "$err")
    rm -f "$err"
    if [[ $text == *"does not exist"* ]]; then
      die "stack $stack not found: deploy $workflow first (looking up its output $key)"
    fi
    die "could not read stack $stack for its output $key: $(aws_error "$text")"
  fi
  rm -f "$err"
  value=$(tail -n 1 <<<"$value")
  if [[ -z $value || $value == None || $value == null ]]; then
    die "stack $stack has no output $key: redeploy $workflow (it must export $key)"
  fi
  printf '%s\n' "$value"
}

# stack_exists STACK: true when CloudFormation knows STACK; false when it does not; stops
# the run when the question cannot be answered (access denied, throttled).
stack_exists() {
  local text
  if text=$(aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackName' --output text 2>&1 >/dev/null); then
    return 0
  fi
  [[ $text == *"does not exist"* ]] && return 1
  die "could not read stack $1: $(aws_error "$text")"
}

# stack_status STACK: the stack's status, or NONE when there is no such stack. Only stdout
# is the value: a CLI warning on stderr never becomes a status.
stack_status() {
  local out err text
  err=$(mktemp)
  if out=$(aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackStatus' --output text 2>"$err"); then
    rm -f "$err"
    tail -n 1 <<<"$out"
    return 0
  fi
  text=$(cat "$err")
  rm -f "$err"
  if [[ $text == *"does not exist"* ]]; then
    echo NONE
  else
    die "could not read stack $1: $(aws_error "$text")"
  fi
}

# check_log_group: the function's log group must be the stack's own, or not exist yet. One
# left by an earlier deployment (or created by Lambda from a function outside the stack)
# makes the first deploy fail with "already exists" and leaves the stack in
# ROLLBACK_COMPLETE, so stop before sam deploy and say what to do.
check_log_group() {
  local found owned status err
  err=$(mktemp)
  # Only stdout is the answer: a CLI warning on stderr never becomes a log group's name.
  if ! found=$(aws logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" \
      --query "logGroups[?logGroupName=='$LOG_GROUP'].logGroupName | [0]" --output text 2>"$err"); then
    local text
    text=$(cat "$err")
    rm -f "$err"
    die "could not look up log group $LOG_GROUP: $(aws_error "$text")"
  fi
  rm -f "$err"
  status=$(stack_status "$STACK")
  if [[ $status == ROLLBACK_COMPLETE ]]; then
    die "stack $STACK is in ROLLBACK_COMPLETE (a failed first deploy) and cannot be updated: delete it with scripts/deploy/delete $STACK (or the delete workflow), then deploy again"
  fi
  found=$(tail -n 1 <<<"$found")
  [[ -z $found || $found == None ]] && return 0
  owned=None
  if [[ $status != NONE ]]; then
    err=$(mktemp)
    # A failed look-up is reported as what it is, never as "outside the stack".
    if ! owned=$(aws cloudformation describe-stack-resources --stack-name "$STACK" \
        --query "StackResources[?ResourceType=='AWS::Logs::LogGroup' && PhysicalResourceId=='$LOG_GROUP'].LogicalResourceId | [0]" \
        --output text 2>"$err"); then
      local text
      text=$(cat "$err")
      rm -f "$err"
      die "could not read the resources of stack $STACK: $(aws_error "$text")"
    fi
    rm -f "$err"
    owned=$(tail -n 1 <<<"$owned")
  fi
  if [[ -z $owned || $owned == None ]]; then
    die "log group $LOG_GROUP already exists outside stack $STACK (left by an earlier deployment, or created by Lambda); sam deploy would fail with 'already exists' and leave the stack in ROLLBACK_COMPLETE. Delete it (aws logs delete-log-group --log-group-name $LOG_GROUP; its log events go with it), or export what you need first, then deploy again"
  fi
}
